//! Which strategy a trainer runs, on how many threads, and what it chose:
//! the policy behind the Python binding, as plain Rust that `cargo test` reaches.

use ndarray::{Array2, ArrayView2};
use rayon::ThreadPool;

use crate::data::Epoch;
use crate::kernels::isa::Isa;
use crate::kernels::team::{FusedParallel, Rest, BALANCED_TASK_KIND, BARRIER_KIND, SPLIT_KIND, TASK_KIND, TEAM_KERNEL};
use crate::kernels::vector::{Lane, SUBNORMALS};
use crate::kernels::{Fused, Kernel};
use crate::openblas;
use crate::port::{batched, parallel, Network};

pub const STRATEGIES: [&str; 5] = ["port", "batched", "rayon", "fused", "fused-parallel"];

/// How a trainer is asked to run: `threads` the rayon pool's size for rayon,
/// the team's for fused-parallel (at most `parts`), and OpenBLAS's thread
/// count for the others; `isa` None picks the widest the CPU supports;
/// `gemm_from_batch` and `parts` are the fused kernels' (see `Fused::new`,
/// `FusedParallel::new`); `rest` the team's (`Rest`), None for its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub threads: usize,
    pub isa: Option<Isa>,
    pub gemm_from_batch: Option<usize>,
    pub parts: Option<usize>,
    pub rest: Option<Rest>,
}

impl Settings {
    /// Checked, with the instruction set by its name (`Isa::name`).
    pub fn new(threads: usize, isa: Option<&str>, gemm_from_batch: Option<usize>, parts: Option<usize>) -> Result<Self, String> {
        if threads == 0 {
            return Err("threads must be at least 1".into());
        }
        let isa = match isa {
            None => None,
            Some(name) => Some(Isa::from_name(name).ok_or_else(|| {
                let names: Vec<_> = Isa::ALL.iter().map(|i| i.name()).collect();
                format!("unknown instruction set {name:?}; one of {names:?}")
            })?),
        };
        Ok(Settings { threads, isa, gemm_from_batch, parts, rest: None })
    }

    /// With the team's rest by its name (`Rest::name`).
    pub fn with_rest(self, rest: Option<&str>) -> Result<Self, String> {
        let Some(name) = rest else { return Ok(self) };
        let rest = Rest::from_name(name).ok_or_else(|| {
            let names: Vec<_> = Rest::ALL.iter().map(|r| r.name()).collect();
            format!("unknown rest {name:?}; one of {names:?}")
        })?;
        Ok(Settings { rest: Some(rest), ..self })
    }
}

/// The threads a trainer runs on: its own (rayon's pool, the team) and
/// OpenBLAS's while it trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    pub threads: usize,
    pub blas: usize,
}

/// What a fused trainer chose for a batch size, as `choices()` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choices {
    pub isa: Isa,
    /// Elements per vector register.
    pub lanes: usize,
    /// sweep, tiles or gemm.
    pub kernel: &'static str,
    /// The single-thread kernel's: from which batch size it runs GEMMs.
    pub gemm_from_batch: Option<usize>,
    /// Samples per block where a mini-batch is cut into blocks; None in one pass.
    pub block_samples: Option<usize>,
    /// The team's.
    pub team: Option<TeamChoices>,
    /// What becomes of subnormal numbers.
    pub subnormals: &'static str,
}

/// The team's choices: its threads, the split of the first layer and its parts, the barrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamChoices {
    pub threads: usize,
    pub split: &'static str,
    pub parts: usize,
    pub features_per_part: Vec<usize>,
    pub tasks: &'static str,
    pub barrier: &'static str,
    /// Who does what follows the first layer's sums (`Rest::name`).
    pub rest: &'static str,
}

enum Strategy<T> {
    Port(Network<T>),
    Batched(Network<T>),
    Rayon(Network<T>, ThreadPool),
    Fused(Fused<T>),
    FusedParallel(FusedParallel<T>),
}

/// One strategy in one element type, with its threads.
pub struct Trainer<T> {
    strategy: Strategy<T>,
    pub sizes: Vec<usize>,
    pub threads: Threads,
}

impl<T: Lane> Trainer<T> {
    /// Strategy `name` (one of `STRATEGIES`) from the book's layout: weights
    /// (n_out, n_in), biases (n_out, 1).
    pub fn new(name: &str, weights: Vec<Array2<T>>, biases: Vec<Array2<T>>, settings: Settings) -> Result<Self, String> {
        let Settings { threads, isa, gemm_from_batch, parts, rest } = settings;
        let strategy = match name {
            "port" => Strategy::Port(Network::new(weights, biases)?),
            "batched" => Strategy::Batched(Network::new(weights, biases)?),
            "rayon" => Strategy::Rayon(Network::new(weights, biases)?, parallel::pool(threads)?),
            "fused" => Strategy::Fused(Fused::new(&views(&weights), &views(&biases), isa, gemm_from_batch)?),
            "fused-parallel" => {
                let mut team = FusedParallel::new(&views(&weights), &views(&biases), isa, threads, parts)?;
                team.set_rest(rest);
                Strategy::FusedParallel(team)
            }
            other => return Err(format!("unknown strategy {other:?}; one of {STRATEGIES:?}")),
        };
        let sizes = match &strategy {
            Strategy::Port(n) | Strategy::Batched(n) | Strategy::Rayon(n, _) => n.sizes.clone(),
            Strategy::Fused(f) => f.sizes.clone(),
            Strategy::FusedParallel(f) => f.sizes().to_vec(),
        };
        let threads = thread_policy(&strategy, threads);
        Ok(Trainer { strategy, sizes, threads })
    }

    /// One epoch, with OpenBLAS on `threads.blas` threads meanwhile.
    pub fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        openblas::with_threads(self.threads.blas, || match &mut self.strategy {
            Strategy::Port(net) => net.train_epoch(data, batch_size, eta),
            Strategy::Batched(net) => batched::train_epoch(net, data, batch_size, eta),
            Strategy::Rayon(net, pool) => parallel::train_epoch(net, data, batch_size, eta, pool),
            Strategy::Fused(f) => f.train_epoch(data, batch_size, eta),
            Strategy::FusedParallel(f) => f.train_epoch(data, batch_size, eta),
        })
    }

    /// Copies of the weights (n_out, n_in) and biases (n_out, 1).
    pub fn params(&self) -> (Vec<Array2<T>>, Vec<Array2<T>>) {
        match &self.strategy {
            Strategy::Port(n) | Strategy::Batched(n) | Strategy::Rayon(n, _) => (n.weights.clone(), n.biases.clone()),
            Strategy::Fused(f) => owned_params(&f.weights(), f.biases()),
            Strategy::FusedParallel(f) => owned_params(&f.weights(), f.biases()),
        }
    }

    /// From which batch size the fused kernel runs its products as BLAS GEMMs.
    pub fn set_gemm_from_batch(&mut self, batch_size: usize) -> Result<(), String> {
        match &mut self.strategy {
            Strategy::Fused(f) => f.gemm_from_batch = batch_size,
            _ => return Err("only the fused strategy has a GEMM kernel".into()),
        }
        Ok(())
    }

    /// Runs the fused strategy's `kernel` (sweep, tiles or gemm) at every batch size.
    pub fn set_kernel(&mut self, kernel: &str) -> Result<(), String> {
        let chosen = Kernel::from_name(kernel).ok_or_else(|| {
            let names: Vec<_> = Kernel::ALL.iter().map(|k| k.name()).collect();
            format!("unknown kernel {kernel:?}; one of {names:?}")
        })?;
        match &mut self.strategy {
            Strategy::Fused(f) => f.set_kernel(chosen),
            _ => return Err("only the fused strategy has a choice of kernels".into()),
        }
        Ok(())
    }

    /// The fused kernels' choices for `batch_size`; None for the port's strategies.
    pub fn choices(&self, batch_size: usize) -> Option<Choices> {
        let subnormals = SUBNORMALS;
        match &self.strategy {
            Strategy::Fused(f) => Some(Choices {
                isa: f.isa,
                lanes: f.isa.lanes::<T>(),
                kernel: f.kernel_for(batch_size).name(),
                gemm_from_batch: Some(f.gemm_from_batch),
                block_samples: f.block_samples(batch_size),
                team: None,
                subnormals,
            }),
            Strategy::FusedParallel(f) => Some(Choices {
                isa: f.isa(),
                lanes: f.isa().lanes::<T>(),
                kernel: TEAM_KERNEL,
                gemm_from_batch: None,
                block_samples: f.block_samples(batch_size),
                team: Some(TeamChoices {
                    threads: f.threads(),
                    split: SPLIT_KIND,
                    parts: f.parts(),
                    features_per_part: f.features_per_part(),
                    tasks: if f.rest_for(batch_size) == Rest::Balanced { BALANCED_TASK_KIND } else { TASK_KIND },
                    barrier: BARRIER_KIND,
                    rest: f.rest_for(batch_size).name(),
                }),
                subnormals,
            }),
            _ => None,
        }
    }
}

/// The threads a strategy asked for `asked` runs on. rayon's workers each run
/// the port's small BLAS calls, and the team calls no BLAS: OpenBLAS stays on
/// one thread there, and on `asked` for the others; the team runs at most one
/// thread per part.
fn thread_policy<T: Lane>(strategy: &Strategy<T>, asked: usize) -> Threads {
    match strategy {
        Strategy::Rayon(..) => Threads { threads: asked, blas: 1 },
        Strategy::FusedParallel(f) => Threads { threads: f.threads(), blas: 1 },
        Strategy::Port(_) | Strategy::Batched(_) | Strategy::Fused(_) => Threads { threads: asked, blas: asked },
    }
}

fn views<T>(arrays: &[Array2<T>]) -> Vec<ArrayView2<'_, T>> {
    arrays.iter().map(|a| a.view()).collect()
}

/// Weights (n_out, n_in) and biases as columns (n_out, 1), copied.
fn owned_params<T: Copy>(weights: &[ArrayView2<T>], biases: &[Vec<T>]) -> (Vec<Array2<T>>, Vec<Array2<T>>) {
    (
        weights.iter().map(|w| w.to_owned()).collect(),
        biases.iter().map(|b| Array2::from_shape_fn((b.len(), 1), |(i, _)| b[i])).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [64, 5, 3] network of float64.
    fn trainer(name: &str, threads: usize, parts: Option<usize>) -> Result<Trainer<f64>, String> {
        let sizes = [64, 5, 3];
        let weights = sizes.windows(2).map(|p| Array2::from_elem((p[1], p[0]), 0.01)).collect();
        let biases = sizes[1..].iter().map(|&n| Array2::zeros((n, 1))).collect();
        Trainer::new(name, weights, biases, Settings::new(threads, None, None, parts)?)
    }

    fn threads(name: &str, asked: usize, parts: Option<usize>) -> Threads {
        trainer(name, asked, parts).expect("a valid trainer").threads
    }

    #[test]
    fn openblas_runs_the_threads_asked_only_where_the_strategy_calls_it_alone() {
        for name in ["port", "batched", "fused"] {
            assert_eq!(threads(name, 3, None), Threads { threads: 3, blas: 3 }, "{name}");
        }
        assert_eq!(threads("rayon", 3, None), Threads { threads: 3, blas: 1 });
        assert_eq!(threads("fused-parallel", 2, None), Threads { threads: 2, blas: 1 });
    }

    #[test]
    fn the_team_runs_at_most_one_thread_per_part() {
        assert_eq!(threads("fused-parallel", 4, Some(2)).threads, 2);
        assert_eq!(threads("fused-parallel", 2, Some(4)).threads, 2);
        // parts are capped by the cache lines of W1T's 64 rows (64 with 8 lanes, 8 with one),
        // and the threads by the parts
        let team = trainer("fused-parallel", 100, None).unwrap();
        let parts = team.choices(10).unwrap().team.unwrap().parts;
        assert!((8..=64).contains(&parts), "{parts} parts");
        assert_eq!(team.threads.threads, parts);
    }

    #[test]
    fn settings_and_names_are_checked() {
        assert_eq!(Settings::new(0, None, None, None).unwrap_err(), "threads must be at least 1");
        assert!(Settings::new(1, Some("sse9"), None, None).unwrap_err().contains("\"avx2+fma\""));
        assert_eq!(Settings::new(2, Some("x86-64"), None, None).unwrap().isa, Some(Isa::Baseline));
        let settings = Settings::new(2, None, None, None).unwrap();
        assert_eq!(settings.rest, None);
        assert_eq!(settings.with_rest(Some("by-samples")).unwrap().rest, Some(Rest::BySamples));
        assert_eq!(settings.with_rest(None).unwrap().rest, None);
        assert!(settings.with_rest(Some("halves")).unwrap_err().contains("[\"whole\", \"by-samples\", \"balanced\"]"));
        assert!(trainer("numpy", 1, None).err().unwrap().contains("unknown strategy"));
        let mut port = trainer("port", 1, None).unwrap();
        assert!(port.set_kernel("tiles").unwrap_err().contains("only the fused strategy"));
        assert!(port.set_kernel("fast").unwrap_err().contains("unknown kernel"));
        assert!(port.set_gemm_from_batch(8).is_err());
        assert_eq!(port.choices(10), None);
    }

    #[test]
    fn the_fused_choices_follow_the_batch_size_and_the_kernel_set() {
        let mut fused = trainer("fused", 1, None).unwrap();
        fused.set_gemm_from_batch(32).unwrap();
        let small = fused.choices(10).unwrap();
        assert_eq!((small.kernel, small.gemm_from_batch, small.team), ("sweep", Some(32), None));
        assert_eq!(small.lanes, small.isa.lanes::<f64>());
        assert_eq!(fused.choices(32).unwrap().kernel, "gemm");
        fused.set_kernel("tiles").unwrap();
        assert_eq!(fused.choices(1000).unwrap().kernel, "tiles");
        let team = trainer("fused-parallel", 2, Some(4)).unwrap().choices(10).unwrap();
        assert_eq!(team.kernel, TEAM_KERNEL);
        assert_eq!(team.team.unwrap().features_per_part.iter().sum::<usize>(), 64);
    }
}
