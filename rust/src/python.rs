//! The extension module `nndl_bench_rust`: converts NumPy arrays to ndarray
//! views (no copies of X, labels or order), checks them, and runs each epoch
//! with the GIL released. Bad input is a TypeError or ValueError; a panic is
//! caught and raised as RuntimeError rather than aborting the interpreter.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{Array2, ArrayView2};
use numpy::{Element, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::ThreadPool;

use crate::data::Epoch;
use crate::kernels::isa::Isa;
use crate::kernels::team::{FusedParallel, BARRIER_KIND, SPLIT_KIND, TASK_KIND, TEAM_KERNEL};
use crate::kernels::vector::{Lane, SUBNORMALS};
use crate::kernels::{Fused, Kernel};
use crate::port::{batched, parallel, Network};
use crate::openblas;

pub const STRATEGIES: [&str; 5] = ["port", "batched", "rayon", "fused", "fused-parallel"];

enum Strategy<T> {
    Port(Network<T>),
    Batched(Network<T>),
    Rayon(Network<T>, ThreadPool),
    Fused(Fused<T>),
    FusedParallel(FusedParallel<T>),
}

impl<T: Lane> Strategy<T> {
    fn new(
        name: &str,
        weights: Vec<Array2<T>>,
        biases: Vec<Array2<T>>,
        threads: usize,
        isa: Option<Isa>,
        gemm_from_batch: Option<usize>,
        parts: Option<usize>,
    ) -> Result<Self, String> {
        Ok(match name {
            "port" => Strategy::Port(Network::new(weights, biases)?),
            "batched" => Strategy::Batched(Network::new(weights, biases)?),
            "rayon" => Strategy::Rayon(Network::new(weights, biases)?, parallel::pool(threads)?),
            "fused" => {
                let w: Vec<ArrayView2<T>> = weights.iter().map(|w| w.view()).collect();
                let b: Vec<ArrayView2<T>> = biases.iter().map(|b| b.view()).collect();
                Strategy::Fused(Fused::new(&w, &b, isa, gemm_from_batch)?)
            }
            "fused-parallel" => {
                let w: Vec<ArrayView2<T>> = weights.iter().map(|w| w.view()).collect();
                let b: Vec<ArrayView2<T>> = biases.iter().map(|b| b.view()).collect();
                Strategy::FusedParallel(FusedParallel::new(&w, &b, isa, threads, parts)?)
            }
            other => return Err(format!("unknown strategy {other:?}; one of {STRATEGIES:?}")),
        })
    }

    fn sizes(&self) -> Vec<usize> {
        match self {
            Strategy::Port(n) | Strategy::Batched(n) | Strategy::Rayon(n, _) => n.sizes.clone(),
            Strategy::Fused(f) => f.sizes.clone(),
            Strategy::FusedParallel(f) => f.sizes().to_vec(),
        }
    }

    fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        match self {
            Strategy::Port(net) => net.train_epoch(data, batch_size, eta),
            Strategy::Batched(net) => batched::train_epoch(net, data, batch_size, eta),
            Strategy::Rayon(net, pool) => parallel::train_epoch(net, data, batch_size, eta, pool),
            Strategy::Fused(f) => f.train_epoch(data, batch_size, eta),
            Strategy::FusedParallel(f) => f.train_epoch(data, batch_size, eta),
        }
    }

    /// Copies of the weights (n_out, n_in) and biases (n_out, 1).
    fn params(&self) -> (Vec<Array2<T>>, Vec<Array2<T>>) {
        match self {
            Strategy::Port(n) | Strategy::Batched(n) | Strategy::Rayon(n, _) => {
                (n.weights.clone(), n.biases.clone())
            }
            Strategy::Fused(f) => owned_params(&f.weights(), f.biases()),
            Strategy::FusedParallel(f) => owned_params(&f.weights(), f.biases()),
        }
    }
}

/// Weights (n_out, n_in) and biases as columns (n_out, 1), copied.
fn owned_params<T: Copy>(weights: &[ArrayView2<T>], biases: &[Vec<T>]) -> (Vec<Array2<T>>, Vec<Array2<T>>) {
    (
        weights.iter().map(|w| w.to_owned()).collect(),
        biases.iter().map(|b| Array2::from_shape_fn((b.len(), 1), |(i, _)| b[i])).collect(),
    )
}

enum Typed {
    F64(Strategy<f64>),
    F32(Strategy<f32>),
}

/// `$body` with `$s` bound to the strategy, whichever its dtype.
macro_rules! each_dtype {
    ($typed:expr, $s:ident => $body:expr) => {
        match $typed {
            Typed::F64($s) => $body,
            Typed::F32($s) => $body,
        }
    };
}

/// One trainer of one strategy in one dtype.
#[pyclass(module = "nndl_bench_rust")]
struct Trainer {
    inner: Typed,
    #[pyo3(get)]
    strategy: String,
    #[pyo3(get)]
    dtype: String,
    /// OpenBLAS threads while training (rayon's pool has its own count).
    #[pyo3(get)]
    blas_threads: usize,
    #[pyo3(get)]
    threads: usize,
    sizes: Vec<usize>,
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    match (obj.getattr("ndim"), obj.getattr("dtype")) {
        (Ok(ndim), Ok(dtype)) => format!("a {ndim}-D {dtype} array"),
        _ => format!("a {}", obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()),
    }
}

fn array2<'py, T: Element>(obj: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<PyReadonlyArray2<'py, T>> {
    obj.extract::<PyReadonlyArray2<'py, T>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a 2-D {dtype} NumPy array; got {}", describe(obj)))
    })
}

fn indices<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let array = obj.extract::<PyReadonlyArray1<'py, i64>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a 1-D int64 NumPy array; got {}", describe(obj)))
    })?;
    if !array.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{what} must be contiguous: pass np.ascontiguousarray({what})")));
    }
    Ok(array)
}

fn owned<T: Element + Copy>(list: &[Bound<'_, PyAny>], what: &str, dtype: &str) -> PyResult<Vec<Array2<T>>> {
    list.iter()
        .enumerate()
        .map(|(l, a)| Ok(array2::<T>(a, &format!("{what}[{l}]"), dtype)?.as_array().to_owned()))
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// One epoch's arguments as Python passed them, and the trainer's settings.
struct EpochCall<'a, 'py> {
    x: &'a Bound<'py, PyAny>,
    y: &'a Bound<'py, PyAny>,
    order: &'a Bound<'py, PyAny>,
    batch_size: usize,
    eta: f64,
    sizes: &'a [usize],
    blas_threads: usize,
    dtype: &'a str,
}

fn train<T: Lane + Element>(py: Python<'_>, strategy: &mut Strategy<T>, call: EpochCall) -> PyResult<()> {
    let EpochCall { x, y, order, batch_size, eta, sizes, blas_threads, dtype } = call;
    let x = array2::<T>(x, "X", dtype)?;
    let (y, order) = (indices(y, "y")?, indices(order, "order")?);
    let (ys, os) = (y.as_slice().unwrap_or(&[]), order.as_slice().unwrap_or(&[]));
    let data = Epoch::new(x.as_array(), ys, os, sizes, batch_size).map_err(PyValueError::new_err)?;
    let outcome = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            openblas::with_threads(blas_threads, || strategy.train_epoch(&data, batch_size, eta))
        }))
    });
    outcome.map_err(|payload| {
        PyRuntimeError::new_err(format!(
            "the Rust kernel panicked ({}); the trainer's parameters are no longer defined",
            panic_message(payload.as_ref())
        ))
    })
}

fn to_python<'py, T: Element>(py: Python<'py>, arrays: Vec<Array2<T>>) -> Vec<Bound<'py, PyAny>> {
    arrays.into_iter().map(|a| PyArray2::from_owned_array(py, a).into_any()).collect()
}

#[pymethods]
impl Trainer {
    /// `strategy` one of port, batched, rayon, fused, fused-parallel; `threads`
    /// the rayon pool's size for rayon, the team's for fused-parallel (at most
    /// `parts`), and OpenBLAS's thread count for the others. `parts` (the
    /// team's only, default `threads`) fixes how the team groups the first
    /// layer's sums, and with it the result.
    #[new]
    #[pyo3(signature = (strategy, dtype, weights, biases, threads=1, isa=None, gemm_from_batch=None, parts=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        strategy: &str,
        dtype: &str,
        weights: Vec<Bound<'_, PyAny>>,
        biases: Vec<Bound<'_, PyAny>>,
        threads: usize,
        isa: Option<&str>,
        gemm_from_batch: Option<usize>,
        parts: Option<usize>,
    ) -> PyResult<Self> {
        if threads == 0 {
            return Err(PyValueError::new_err("threads must be at least 1"));
        }
        let isa = match isa {
            None => None,
            Some(name) => Some(Isa::from_name(name).ok_or_else(|| {
                let names: Vec<_> = Isa::ALL.iter().map(|i| i.name()).collect();
                PyValueError::new_err(format!("unknown instruction set {name:?}; one of {names:?}"))
            })?),
        };
        let build = |e: String| PyValueError::new_err(e);
        let inner = match dtype {
            "float64" => Typed::F64(
                Strategy::new(strategy, owned(&weights, "weights", dtype)?, owned(&biases, "biases", dtype)?, threads, isa, gemm_from_batch, parts)
                    .map_err(build)?,
            ),
            "float32" => Typed::F32(
                Strategy::new(strategy, owned(&weights, "weights", dtype)?, owned(&biases, "biases", dtype)?, threads, isa, gemm_from_batch, parts)
                    .map_err(build)?,
            ),
            other => return Err(PyValueError::new_err(format!("dtype {other:?}: float64 or float32"))),
        };
        let sizes = each_dtype!(&inner, s => s.sizes());
        // rayon's workers each run the port's small BLAS calls, and the team calls no BLAS:
        // OpenBLAS stays on one thread there.
        let blas_threads = if strategy == "rayon" || strategy == "fused-parallel" { 1 } else { threads };
        let threads = match &inner {
            Typed::F64(Strategy::FusedParallel(f)) => f.threads(),
            Typed::F32(Strategy::FusedParallel(f)) => f.threads(),
            _ => threads,
        };
        Ok(Trainer { inner, strategy: strategy.into(), dtype: dtype.into(), blas_threads, threads, sizes })
    }

    fn train_epoch(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        order: &Bound<'_, PyAny>,
        batch_size: usize,
        eta: f64,
    ) -> PyResult<()> {
        let call = EpochCall {
            x, y, order, batch_size, eta,
            sizes: &self.sizes, blas_threads: self.blas_threads, dtype: &self.dtype,
        };
        each_dtype!(&mut self.inner, s => train(py, s, call))
    }

    /// (weights, biases) as new NumPy arrays in the book's layout.
    fn params<'py>(&self, py: Python<'py>) -> (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>) {
        each_dtype!(&self.inner, s => {
            let (w, b) = s.params();
            (to_python(py, w), to_python(py, b))
        })
    }

    /// From which batch size the fused kernel runs its products as BLAS GEMMs.
    fn set_gemm_from_batch(&mut self, batch_size: usize) -> PyResult<()> {
        match &mut self.inner {
            Typed::F64(Strategy::Fused(f)) => f.gemm_from_batch = batch_size,
            Typed::F32(Strategy::Fused(f)) => f.gemm_from_batch = batch_size,
            _ => return Err(PyValueError::new_err("only the fused strategy has a GEMM kernel")),
        }
        Ok(())
    }

    /// Runs the fused strategy's `kernel` (sweep, tiles or gemm) at every batch size.
    fn set_kernel(&mut self, kernel: &str) -> PyResult<()> {
        let chosen = Kernel::from_name(kernel).ok_or_else(|| {
            let names: Vec<_> = Kernel::ALL.iter().map(|k| k.name()).collect();
            PyValueError::new_err(format!("unknown kernel {kernel:?}; one of {names:?}"))
        })?;
        match &mut self.inner {
            Typed::F64(Strategy::Fused(f)) => f.set_kernel(chosen),
            Typed::F32(Strategy::Fused(f)) => f.set_kernel(chosen),
            _ => return Err(PyValueError::new_err("only the fused strategy has a choice of kernels")),
        }
        Ok(())
    }

    /// The fused kernel's choices: instruction set, lanes, and the kernel for a batch size.
    fn choices(&self, py: Python<'_>, batch_size: usize) -> PyResult<Option<Py<PyDict>>> {
        let (isa, kernel, gemm_from, lanes) = match &self.inner {
            Typed::F64(Strategy::Fused(f)) => (f.isa, f.kernel_for(batch_size), f.gemm_from_batch, f.isa.lanes::<f64>()),
            Typed::F32(Strategy::Fused(f)) => (f.isa, f.kernel_for(batch_size), f.gemm_from_batch, f.isa.lanes::<f32>()),
            Typed::F64(Strategy::FusedParallel(f)) => return team_choices(py, f, f.isa().lanes::<f64>()),
            Typed::F32(Strategy::FusedParallel(f)) => return team_choices(py, f, f.isa().lanes::<f32>()),
            _ => return Ok(None),
        };
        let d = PyDict::new(py);
        d.set_item("isa", isa.name())?;
        d.set_item("lanes", lanes)?;
        d.set_item("kernel", kernel.name())?;
        d.set_item("gemm_from_batch", gemm_from)?;
        d.set_item("subnormals", SUBNORMALS)?;
        Ok(Some(d.unbind()))
    }
}

/// The team's choices: instruction set, lanes, threads, the split and its parts, barrier.
fn team_choices<T: Lane>(py: Python<'_>, team: &FusedParallel<T>, lanes: usize) -> PyResult<Option<Py<PyDict>>> {
    let d = PyDict::new(py);
    d.set_item("isa", team.isa().name())?;
    d.set_item("lanes", lanes)?;
    d.set_item("kernel", TEAM_KERNEL)?;
    d.set_item("threads", team.threads())?;
    d.set_item("split", SPLIT_KIND)?;
    d.set_item("parts", team.parts())?;
    d.set_item("features_per_part", team.features_per_part())?;
    d.set_item("tasks", TASK_KIND)?;
    d.set_item("barrier", BARRIER_KIND)?;
    d.set_item("subnormals", SUBNORMALS)?;
    Ok(Some(d.unbind()))
}

/// What the extension was built with and runs on: for the run's metadata.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rustc", env!("NNDL_RUSTC_VERSION"))?;
    d.set_item("target", env!("NNDL_BUILD_TARGET"))?;
    d.set_item("profile", env!("NNDL_BUILD_PROFILE"))?;
    d.set_item("opt_level", env!("NNDL_BUILD_OPT_LEVEL"))?;
    d.set_item("debug_symbols", env!("NNDL_BUILD_DEBUG"))?;
    let crates = PyDict::new(py);
    for item in env!("NNDL_CRATE_VERSIONS").split(',').filter(|s| !s.is_empty()) {
        if let Some((name, version)) = item.split_once(' ') {
            crates.set_item(name, version)?;
        }
    }
    d.set_item("crates", crates)?;
    d.set_item("openblas_config", openblas::config())?;
    d.set_item("openblas_corename", openblas::corename())?;
    d.set_item("openblas_threads", openblas::threads())?;
    d.set_item("openblas_version", openblas::version())?;
    // The file the loader mapped, and the one build.rs linked (and where it found it):
    // NumPy's, so the two are one file and NumPy's BLAS is this one.
    d.set_item("openblas_library", openblas::library())?;
    d.set_item("openblas_linked", openblas::LINKED_PATH)?;
    d.set_item("openblas_linked_from", openblas::LINKED_FROM)?;
    let supported: Vec<&str> = Isa::ALL.iter().filter(|i| i.supported()).map(|i| i.name()).collect();
    d.set_item("isa_supported", supported)?;
    d.set_item("isa_selected", Isa::detect().name())?;
    Ok(d.unbind())
}

/// The thread count of the OpenBLAS the extension links (NumPy's: one pool for both).
#[pyfunction]
fn blas_threads() -> usize {
    openblas::threads()
}

#[pymodule]
fn nndl_bench_rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Trainer>()?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add_function(wrap_pyfunction!(blas_threads, m)?)?;
    m.add("STRATEGIES", STRATEGIES.to_vec())?;
    Ok(())
}
