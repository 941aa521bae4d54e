//! Rust written for the machine rather than ported: the whole epoch in one call,
//! nothing allocated inside it, every inner loop vectorised for the running CPU.
//!
//! Samples are rows. Per mini-batch: forward pass, output error (BP1, scaled by
//! eta/m so the gradients come out ready to subtract: backprop is linear in
//! delta), backprop (BP2, with the weights before their update), update. Three
//! ways to do the first layer's products, chosen by batch size:
//!
//! - sweep: five samples per sweep over two weight rows at a time (`sweep`),
//!   so each weight loaded feeds five multiply-adds and each input two.
//! - tiles: the first layer as register tiles over W1 held transposed for
//!   the epoch (`tiles`): no sums across lanes, fewer loads per multiply-add,
//!   and W1 read and written once per 64 samples rather than once per sweep.
//!   A mini-batch whose rows of X outgrow L2 runs in blocks of samples, each
//!   forward, back and into the update before the next is read.
//!
//! Under the sweep and the tiles, the layers after the first run their forward
//! pass and update as register tiles over their own weights transposed
//! (`outer`, `sweep::Deeper`) and their backprop as a sweep; under the GEMMs,
//! every product is a GEMM.
//! - gemm: the batch's rows gathered into one matrix and every product one
//!   BLAS GEMM into buffers made before the epoch (`W -= delta^T A` straight
//!   into the weights, with beta = 1). Whether a tuned GEMM beats the sweep
//!   depends on the batch and on the kernels the linked OpenBLAS picked for
//!   the CPU, so the Python side times the three (`backends/rust_fused.py`).
//!
//! The modules, each importing only those listed before it:
//! - [`isa`]: the instruction sets, which the CPU runs, and the one dispatch macro;
//! - [`vector`]: the registers (AVX-512, AVX2, scalar), exp, the flush-to-zero guard;
//! - [`layout`]: matrices and buffers on cache lines, batches padded to sweeps;
//! - [`outer`]: register tiles of outer products over a matrix held transposed;
//! - [`sweep`]: the sweep kernel, and the layers after the first for it and the tiles;
//! - [`tiles`]: the first layer as register tiles over W1ᵀ;
//! - [`gemm`]: every product a BLAS GEMM;
//! - this module: [`Fused`], the single-thread trainer that picks one of the three;
//! - [`team`]: the tiles on a team of threads, built on [`Fused`].

pub mod gemm;
pub mod isa;
pub mod layout;
pub mod outer;
pub mod sweep;
pub mod team;
pub mod tiles;
pub mod vector;

use ndarray::ArrayView2;

use self::isa::{dispatch, Isa};
use self::layout::{Buffers, Matrix, State, CACHE_LINE};
use self::sweep::Deeper;
use self::vector::{FlushSubnormals, Lane};
use crate::data::{check_layers, Epoch};

/// The batch size from which `Kernel::Gemm` is the default.
pub const GEMM_FROM_BATCH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Sweep,
    Tiles,
    Gemm,
}

impl Kernel {
    pub const ALL: [Kernel; 3] = [Kernel::Sweep, Kernel::Tiles, Kernel::Gemm];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Sweep => "sweep",
            Kernel::Tiles => "tiles",
            Kernel::Gemm => "gemm",
        }
    }

    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }
}

pub struct Fused<T> {
    pub sizes: Vec<usize>,
    weights: Vec<Matrix<T>>,
    biases: Vec<Vec<T>>,
    buffers: Buffers<T>,
    /// The layers after the first, transposed while an epoch trains.
    deeper: Deeper<T>,
    pub isa: Isa,
    pub gemm_from_batch: usize,
    /// The kernel for batches below `gemm_from_batch`: the sweep or the tiles.
    pub below_gemm: Kernel,
}

impl<T: Lane> Fused<T> {
    /// From the book's layout; `isa` None picks the widest the CPU supports.
    pub fn new(
        weights: &[ArrayView2<T>],
        biases: &[ArrayView2<T>],
        isa: Option<Isa>,
        gemm_from_batch: Option<usize>,
    ) -> Result<Self, String> {
        let owned_w: Vec<_> = weights.iter().map(|w| w.to_owned()).collect();
        let owned_b: Vec<_> = biases.iter().map(|b| b.to_owned()).collect();
        let sizes = check_layers(&owned_w, &owned_b)?;
        let isa = isa.unwrap_or_else(Isa::detect);
        if !isa.supported() {
            return Err(format!("this CPU cannot run the {} kernels", isa.name()));
        }
        Ok(Fused {
            sizes,
            weights: weights.iter().map(|w| Matrix::new(w.view())).collect(),
            biases: owned_b.iter().map(|b| b.iter().copied().collect()).collect(),
            buffers: Buffers::default(),
            deeper: Deeper::default(),
            isa,
            gemm_from_batch: gemm_from_batch.unwrap_or(GEMM_FROM_BATCH),
            below_gemm: Kernel::Sweep,
        })
    }

    pub fn kernel_for(&self, batch_size: usize) -> Kernel {
        if batch_size >= self.gemm_from_batch {
            Kernel::Gemm
        } else {
            self.below_gemm
        }
    }

    /// The samples per block of a mini-batch of `batch_size` (`tiles::block_samples`),
    /// None where it runs in one pass: always but with the tiles. An epoch
    /// shorter than `batch_size` is cut by its own length.
    pub fn block_samples(&self, batch_size: usize) -> Option<usize> {
        let tiles = self.kernel_for(batch_size) == Kernel::Tiles;
        tiles.then(|| tiles::block_samples::<T>(&self.sizes, layout::padded(batch_size))).flatten()
    }

    /// Runs `kernel` at every batch size.
    pub fn set_kernel(&mut self, kernel: Kernel) {
        if kernel == Kernel::Gemm {
            self.gemm_from_batch = 1;
        } else {
            self.gemm_from_batch = usize::MAX;
            self.below_gemm = kernel;
        }
    }

    pub fn weights(&self) -> Vec<ArrayView2<'_, T>> {
        self.weights.iter().map(Matrix::view).collect()
    }

    pub fn biases(&self) -> &[Vec<T>] {
        &self.biases
    }

    /// Every layer's weights and biases, to be trained in place.
    pub(crate) fn layers_mut(&mut self) -> (&mut [Matrix<T>], &mut [Vec<T>]) {
        (&mut self.weights, &mut self.biases)
    }

    pub fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        let _flush = FlushSubnormals::new();
        let kernel = self.kernel_for(batch_size);
        self.buffers.reserve(&self.sizes, batch_size);
        match kernel {
            Kernel::Gemm => self.buffers.reserve_gathered(self.sizes[0]),
            Kernel::Tiles => self.buffers.reserve_tiles(&self.sizes, self.isa.lanes::<T>()),
            Kernel::Sweep => {}
        }
        let head = self.align_first_layer(data.x_slice());
        let mut state = State {
            sizes: &self.sizes,
            weights: &mut self.weights,
            biases: &mut self.biases,
            buffers: &mut self.buffers,
        };
        let (s, bs, d) = (&mut state, batch_size, &mut self.deeper);
        match kernel {
            Kernel::Gemm => gemm::train_epoch(s, data, bs, eta),
            Kernel::Tiles => {
                dispatch!(self.isa, T, tiles::train_epoch(s: &mut State<T>, d: &mut Deeper<T>, data: &Epoch<T>, bs: usize, eta: f64))
            }
            Kernel::Sweep => dispatch!(
                self.isa,
                T,
                sweep::train_epoch(s: &mut State<T>, d: &mut Deeper<T>, data: &Epoch<T>, bs: usize, eta: f64, head: usize)
            ),
        }
    }

    /// Puts W1 at X's offset from a cache line and returns the elements before
    /// the first boundary of every row of X (0 when rows are not whole lines).
    pub(crate) fn align_first_layer(&mut self, x: &[T]) -> usize {
        let size = std::mem::size_of::<T>();
        let offset = x.as_ptr() as usize % CACHE_LINE;
        if !(self.sizes[0] * size).is_multiple_of(CACHE_LINE) || !offset.is_multiple_of(size) {
            return 0;
        }
        self.weights[0].place_at(offset);
        ((CACHE_LINE - offset) % CACHE_LINE) / size
    }
}
