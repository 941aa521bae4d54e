//! Rust written for the machine rather than ported: the whole epoch in one call,
//! nothing allocated inside it, every inner loop vectorised for the running CPU.
//!
//! Samples are rows. Per mini-batch: forward pass, output error (BP1, scaled by
//! eta/m so the gradients come out ready to subtract: backprop is linear in
//! delta), backprop (BP2, with the weights before their update), update. Two
//! ways to do each layer's products, chosen by batch size:
//!
//! - sweep: five samples per sweep over two weight rows at a time
//!   (`simd::dot5x2`, `sub_outer5x2`; `add_outer5` for backprop), so each
//!   weight loaded feeds five multiply-adds and each input two, the five input
//!   rows stay in L1 and the weights stream from L2. Batches are padded to whole sweeps with copies of their last sample
//!   whose delta is zero, so they add exactly nothing. The first layer's weights
//!   sit at the same offset from a 64-byte boundary as the rows of X and each
//!   sweep does the elements before the first boundary apart, so that the wide
//!   loads of both never straddle two cache lines.
//! - tiles: the first layer as register tiles over W1 held transposed for
//!   the epoch (`tiles`): no sums across lanes, fewer loads per multiply-add,
//!   and W1 read and written once per mini-batch rather than once per sweep.
//!   The deeper layers run as in the sweep.
//! - gemm: the batch's rows gathered into one matrix and every product one
//!   BLAS GEMM into buffers made before the epoch (`W -= delta^T A` straight
//!   into the weights, with beta = 1). Whether a tuned GEMM beats the sweep
//!   depends on the batch and on the kernels the linked OpenBLAS picked for
//!   the CPU, so the Python side times the three (`backends/rust_fused.py`).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::data::Epoch;
use crate::port::check_layers;
use crate::real::Real;
use crate::simd::{self, Isa, Scalar, Vector, SWEEP};
#[cfg(target_arch = "x86_64")]
use crate::simd::{F32x16, F32x8, F64x4, F64x8};
use crate::tiles;

/// The batch size from which `Kernel::Gemm` is the default.
pub const GEMM_FROM_BATCH: usize = 64;
pub(crate) const CACHE_LINE: usize = 64;

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

/// A weight matrix (n_out, n_in), row-major, in a buffer with a cache line of
/// slack so that it can be moved to any offset from a 64-byte boundary.
#[derive(Clone)]
pub(crate) struct Matrix<T> {
    data: Vec<T>,
    start: usize,
    rows: usize,
    cols: usize,
}

impl<T: Real> Matrix<T> {
    fn new(values: ArrayView2<T>) -> Self {
        let (rows, cols) = values.dim();
        let mut data = vec![T::zero(); rows * cols + CACHE_LINE / std::mem::size_of::<T>()];
        for (slot, v) in data.iter_mut().zip(values.iter()) {
            *slot = *v;
        }
        Matrix { data, start: 0, rows, cols }
    }

    pub(crate) fn values(&self) -> &[T] {
        &self.data[self.start..self.start + self.rows * self.cols]
    }

    pub(crate) fn values_mut(&mut self) -> &mut [T] {
        &mut self.data[self.start..self.start + self.rows * self.cols]
    }

    fn view(&self) -> ArrayView2<'_, T> {
        ArrayView2::from_shape((self.rows, self.cols), self.values()).expect("shape of the buffer")
    }

    /// Moves the values, in place, to start `offset` bytes past a cache line.
    fn place_at(&mut self, offset: usize) {
        let size = std::mem::size_of::<T>();
        let base = self.data.as_ptr() as usize;
        let slack = self.data.len() - self.rows * self.cols;
        let Some(start) = (0..slack).find(|s| (base + s * size) % CACHE_LINE == offset) else {
            return; // an offset that is not a whole number of elements: leave it
        };
        if start != self.start {
            let len = self.rows * self.cols;
            self.data.copy_within(self.start..self.start + len, start);
            self.start = start;
        }
    }
}

/// Per-layer activations and deltas, (capacity, n) row-major, and the batch's rows.
#[derive(Default, Clone)]
struct Buffers<T> {
    capacity: usize,
    acts: Vec<Vec<T>>,
    deltas: Vec<Vec<T>>,
    gathered: Vec<T>,
    rows: Vec<usize>,
    ids: Vec<usize>,
    /// The tiles' W1ᵀ, (n_in, stride) from a cache line, and their buffers:
    /// one sweep's sums (SWEEP, stride) and the batch's -delta1 (capacity, stride).
    transposed: Aligned<T>,
    tile_sums: Vec<T>,
    minus_delta: Vec<T>,
}

/// A buffer whose values start on a cache line.
#[derive(Default, Clone)]
pub(crate) struct Aligned<T> {
    data: Vec<T>,
    start: usize,
}

impl<T: Real> Aligned<T> {
    pub(crate) fn reserve(&mut self, len: usize) {
        if self.data.len() < self.start + len {
            let line = CACHE_LINE / std::mem::size_of::<T>();
            self.data = vec![T::zero(); len + line];
            let base = self.data.as_ptr() as usize;
            self.start = (0..line).find(|s| (base + s * std::mem::size_of::<T>()).is_multiple_of(CACHE_LINE)).unwrap_or(0);
        }
    }

    pub(crate) fn values_mut(&mut self, len: usize) -> &mut [T] {
        &mut self.data[self.start..self.start + len]
    }
}

impl<T: Real> Buffers<T> {
    /// Room for a padded batch of `batch_size`; allocates only when it grows.
    fn reserve(&mut self, sizes: &[usize], batch_size: usize, kernel: Kernel, lanes: usize) {
        let capacity = padded(batch_size);
        if capacity > self.capacity {
            self.acts = sizes[1..].iter().map(|&n| vec![T::zero(); capacity * n]).collect();
            self.deltas = self.acts.clone();
            self.rows = vec![0; capacity];
            self.ids = (0..capacity).collect();
            self.capacity = capacity;
            self.gathered.clear();
        }
        if kernel == Kernel::Gemm && self.gathered.len() < self.capacity * sizes[0] {
            self.gathered = vec![T::zero(); self.capacity * sizes[0]];
        }
        if kernel == Kernel::Tiles {
            let stride = tiles::stride(sizes[1], lanes);
            self.transposed.reserve(sizes[0] * stride);
            if self.tile_sums.len() < SWEEP * stride {
                self.tile_sums = vec![T::zero(); SWEEP * stride];
            }
            if self.minus_delta.len() < self.capacity * stride {
                self.minus_delta = vec![T::zero(); self.capacity * stride];
            }
        }
    }
}

/// A batch of m samples rounded up to whole sweeps.
pub fn padded(m: usize) -> usize {
    m.div_ceil(SWEEP) * SWEEP
}

/// The mini-batch's rows of X into `rows`, padded to whole sweeps with its
/// last sample; returns the padded size.
pub(crate) fn pad_rows(batch: &[i64], rows: &mut [usize]) -> usize {
    let (m, p) = (batch.len(), padded(batch.len()));
    for (i, row) in rows[..p].iter_mut().enumerate() {
        *row = batch[i.min(m - 1)] as usize;
    }
    p
}

/// `n` rows of a row-major matrix of width `width`, picked by `ids`.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a, T> {
    pub(crate) data: &'a [T],
    pub(crate) width: usize,
    pub(crate) ids: &'a [usize],
}

impl<'a, T> Rows<'a, T> {
    #[inline(always)]
    pub(crate) fn row(&self, i: usize) -> &'a [T] {
        &self.data[self.ids[i] * self.width..][..self.width]
    }

    #[inline(always)]
    pub(crate) fn sweep(&self, i: usize) -> [&'a [T]; SWEEP] {
        std::array::from_fn(|q| self.row(i + q))
    }
}

pub struct Fused<T> {
    pub sizes: Vec<usize>,
    weights: Vec<Matrix<T>>,
    biases: Vec<Vec<T>>,
    buffers: Buffers<T>,
    pub isa: Isa,
    pub gemm_from_batch: usize,
    /// The kernel for batches below `gemm_from_batch`: the sweep or the tiles.
    pub below_gemm: Kernel,
}

impl<T: Kernels> Fused<T> {
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
        let _flush = simd::FlushSubnormals::new();
        let kernel = self.kernel_for(batch_size);
        self.buffers.reserve(&self.sizes, batch_size, kernel, self.isa.lanes::<T>());
        let head = self.align_first_layer(data.x_slice());
        let mut state = State {
            sizes: &self.sizes,
            weights: &mut self.weights,
            biases: &mut self.biases,
            buffers: &mut self.buffers,
        };
        match kernel {
            Kernel::Gemm => gemm_epoch(&mut state, data, batch_size, eta),
            vector => T::vector_epoch(self.isa, vector, &mut state, data, batch_size, eta, head),
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

/// What one epoch works on, borrowed apart so that the kernels can hold
/// several of its buffers at once.
pub struct State<'a, T> {
    sizes: &'a [usize],
    weights: &'a mut [Matrix<T>],
    biases: &'a mut [Vec<T>],
    buffers: &'a mut Buffers<T>,
}

/// The sweep and tiles epochs instantiated for each instruction set with its vector type.
pub trait Kernels: Real {
    fn vector_epoch(isa: Isa, kernel: Kernel, s: &mut State<Self>, data: &Epoch<Self>, bs: usize, eta: f64, head: usize);
}

/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn vector_epoch<T: Real, V: Vector<Elem = T>>(
    kernel: Kernel,
    s: &mut State<T>,
    data: &Epoch<T>,
    batch_size: usize,
    eta: f64,
    head: usize,
) {
    unsafe {
        match kernel {
            Kernel::Tiles => tiles_epoch::<T, V>(s, data, batch_size, eta),
            _ => sweep_epoch::<T, V>(s, data, batch_size, eta, head),
        }
    }
}

macro_rules! kernels {
    ($t:ty, $v512:ty, $v256:ty, $avx512:ident, $avx2:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
        fn $avx512(kernel: Kernel, s: &mut State<$t>, data: &Epoch<$t>, bs: usize, eta: f64, head: usize) {
            // SAFETY: this function only runs where AVX-512 was detected.
            unsafe { vector_epoch::<$t, $v512>(kernel, s, data, bs, eta, head) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2(kernel: Kernel, s: &mut State<$t>, data: &Epoch<$t>, bs: usize, eta: f64, head: usize) {
            // SAFETY: this function only runs where AVX2 and FMA were detected.
            unsafe { vector_epoch::<$t, $v256>(kernel, s, data, bs, eta, head) }
        }

        impl Kernels for $t {
            fn vector_epoch(isa: Isa, kernel: Kernel, s: &mut State<$t>, data: &Epoch<$t>, bs: usize, eta: f64, head: usize) {
                match isa {
                    // SAFETY: `Fused::new` checked that the CPU supports `isa`.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { $avx512(kernel, s, data, bs, eta, head) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { $avx2(kernel, s, data, bs, eta, head) },
                    // SAFETY: one scalar lane runs anywhere.
                    _ => unsafe { vector_epoch::<$t, Scalar<$t>>(kernel, s, data, bs, eta, head) },
                }
            }
        }
    };
}

kernels!(f64, F64x8, F64x4, sweep_avx512_f64, sweep_avx2_f64);
kernels!(f32, F32x16, F32x8, sweep_avx512_f32, sweep_avx2_f32);

/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn sweep_epoch<T: Real, V: Vector<Elem = T>>(
    s: &mut State<T>,
    data: &Epoch<T>,
    batch_size: usize,
    eta: f64,
    head: usize,
) {
    let x = data.x_slice();
    let sizes = s.sizes;
    let Buffers { acts, deltas, rows, ids, .. } = &mut *s.buffers;
    for batch in data.order.chunks(batch_size) {
        let (m, p) = (batch.len(), pad_rows(batch, rows));
        let (rows, ids) = (&rows[..p], &ids[..p]);
        let first = Rows { data: x, width: sizes[0], ids: rows };
        forward::<T, V>(s.weights[0].values(), &s.biases[0], first, &mut acts[0][..p * sizes[1]], head);
        let batch = Batch { rows, ids, m, labels: data.labels, scale: T::of(eta / m as f64) };
        unsafe { after_first_layer::<T, V>(sizes, &mut s.weights[1..], &mut s.biases[1..], acts, deltas, &batch) };
        update::<T, V>(s.weights[0].values_mut(), &mut s.biases[0], &deltas[0][..p * sizes[1]], first, head);
    }
}

/// The epoch with the first layer as register tiles over W1ᵀ (`tiles`),
/// transposed in at the start and back at the end.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn tiles_epoch<T: Real, V: Vector<Elem = T>>(s: &mut State<T>, data: &Epoch<T>, batch_size: usize, eta: f64) {
    let x = data.x_slice();
    let sizes = s.sizes;
    let (n0, hidden) = (sizes[0], sizes[1]);
    let stride = tiles::stride(hidden, V::LANES);
    let Buffers { acts, deltas, rows, ids, transposed, tile_sums, minus_delta, .. } = &mut *s.buffers;
    let wt = transposed.values_mut(n0 * stride);
    tiles::transpose_into(s.weights[0].values(), hidden, n0, wt, stride);
    for (b, batch) in data.order.chunks(batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, rows));
        let (rows, ids) = (&rows[..p], &ids[..p]);
        let first = Rows { data: x, width: n0, ids: rows };
        let b1 = &s.biases[0];
        let a1 = &mut acts[0][..p * hidden];
        let ahead = |i| rows_ahead(x, n0, data.order, b * batch_size, i, m, batch_size);
        unsafe { tiles::forward_batch::<V>(wt, stride, first, 0..n0, tile_sums, a1, ahead) };
        for row in a1.chunks_exact_mut(hidden) {
            row.iter_mut().zip(b1).for_each(|(a, &b)| *a += b);
        }
        simd::sigmoid_in_place(a1);
        let batch = Batch { rows, ids, m, labels: data.labels, scale: T::of(eta / m as f64) };
        unsafe { after_first_layer::<T, V>(sizes, &mut s.weights[1..], &mut s.biases[1..], acts, deltas, &batch) };
        let delta1 = &deltas[0][..p * hidden];
        tiles::minus_padded(delta1, hidden, stride, minus_delta);
        unsafe { tiles::update_range::<V>(wt, stride, first, &minus_delta[..p * stride], 0..n0) };
        update_bias(&mut s.biases[0], delta1);
    }
    tiles::transpose_back(wt, stride, s.weights[0].values_mut(), hidden, n0);
}

/// The rows of X of the `SWEEP` samples after sweep `i` of the batch of m
/// that starts at `start` in `order`: the batch's next sweep, or the next
/// batch's first; the order's last sample past its end.
pub(crate) fn rows_ahead<'a, T>(x: &'a [T], width: usize, order: &[i64], start: usize, i: usize, m: usize, batch_size: usize) -> [&'a [T]; SWEEP] {
    let next = if i + SWEEP < m { start + i + SWEEP } else { start + batch_size };
    std::array::from_fn(|q| {
        let at = (next + q).min(order.len() - 1);
        &x[order[at] as usize * width..][..width]
    })
}

/// b[j] -= sum_i delta[i, j], five samples at a time as `update` sums them.
pub(crate) fn update_bias<T: Real>(b: &mut [T], delta: &[T]) {
    let n_out = b.len();
    for i in (0..delta.len() / n_out).step_by(SWEEP) {
        for (j, bj) in b.iter_mut().enumerate() {
            *bj -= (0..SWEEP).fold(T::zero(), |a, q| a + delta[(i + q) * n_out + j]);
        }
    }
}

/// One padded mini-batch as the layers see it: the rows of X it takes (the
/// last repeated as padding), the buffers' own row ids, its real size m, and
/// eta/m.
pub(crate) struct Batch<'a, T> {
    pub(crate) rows: &'a [usize],
    pub(crate) ids: &'a [usize],
    pub(crate) m: usize,
    pub(crate) labels: &'a [i64],
    pub(crate) scale: T,
}

/// Everything after the first layer's forward pass, whose activations are in
/// acts[0]: the deeper layers forward, the output error, backprop down to
/// delta1 (left in deltas[0], with the weights before their update) and the
/// updates of the deeper layers. `weights` and `biases` are layers 2.. only.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn after_first_layer<T: Real, V: Vector<Elem = T>>(
    sizes: &[usize],
    weights: &mut [Matrix<T>],
    biases: &mut [Vec<T>],
    acts: &mut [Vec<T>],
    deltas: &mut [Vec<T>],
    batch: &Batch<T>,
) {
    let layers = sizes.len() - 1;
    let (p, ids) = (batch.ids.len(), batch.ids);
    for l in 1..layers {
        let (below, here) = acts.split_at_mut(l);
        let input = Rows { data: &below[l - 1], width: sizes[l], ids };
        unsafe { forward::<T, V>(weights[l - 1].values(), &biases[l - 1], input, &mut here[0][..p * sizes[l + 1]], 0) };
    }
    let n_out = sizes[layers];
    output_error(&acts[layers - 1][..p * n_out], batch.labels, batch.rows, batch.m, batch.scale, &mut deltas[layers - 1]);
    for l in (1..layers).rev() {
        let (lower, upper) = deltas.split_at_mut(l);
        let delta = &upper[0][..p * sizes[l + 1]];
        let a_in = &acts[l - 1][..p * sizes[l]];
        unsafe {
            backprop_delta::<T, V>(weights[l - 1].values(), delta, a_in, &mut lower[l - 1][..p * sizes[l]], sizes[l]);
            let input = Rows { data: a_in, width: sizes[l], ids };
            update::<T, V>(weights[l - 1].values_mut(), &mut biases[l - 1], delta, input, 0);
        }
    }
}

/// act = sigmoid(W x_i + b) for the rows x_i of `input`; act is (p, n_out).
#[inline(always)]
pub(crate) unsafe fn forward<T: Real, V: Vector<Elem = T>>(w: &[T], b: &[T], input: Rows<T>, act: &mut [T], head: usize) {
    let (n_in, n_out) = (input.width, b.len());
    for i in (0..act.len() / n_out).step_by(SWEEP) {
        let x = input.sweep(i);
        let (hi, lo) = (x.map(|r| &r[head..]), x.map(|r| &r[..head]));
        // two weight rows at a time share the loads of x; an odd last row alone
        let mut j = 0;
        while j + 1 < n_out {
            let (w0, w1) = (&w[j * n_in..][..n_in], &w[(j + 1) * n_in..][..n_in]);
            let (s, t) = unsafe {
                (simd::dot5x2::<V>(&w0[head..], &w1[head..], hi),
                 simd::dot5x2::<V>(&w0[..head], &w1[..head], lo))
            };
            for (r, row) in [j, j + 1].into_iter().enumerate() {
                for q in 0..SWEEP {
                    act[(i + q) * n_out + row] = s[r][q] + t[r][q] + b[row];
                }
            }
            j += 2;
        }
        if j < n_out {
            let wj = &w[j * n_in..][..n_in];
            let (s, t) = unsafe { (simd::dot5::<V>(&wj[head..], hi), simd::dot5::<V>(&wj[..head], lo)) };
            for q in 0..SWEEP {
                act[(i + q) * n_out + j] = s[q] + t[q] + b[j];
            }
        }
    }
    simd::sigmoid_in_place(act);
}

/// W[j] -= sum_i delta[i, j] x_i and b[j] -= sum_i delta[i, j]; delta is (p, n_out).
#[inline(always)]
pub(crate) unsafe fn update<T: Real, V: Vector<Elem = T>>(w: &mut [T], b: &mut [T], delta: &[T], input: Rows<T>, head: usize) {
    let (n_in, n_out) = (input.width, b.len());
    for i in (0..delta.len() / n_out).step_by(SWEEP) {
        let x = input.sweep(i);
        let (hi, lo) = (x.map(|r| &r[head..]), x.map(|r| &r[..head]));
        let d = |j: usize| -> [T; SWEEP] { std::array::from_fn(|q| delta[(i + q) * n_out + j]) };
        let mut rows = w[..n_out * n_in].chunks_exact_mut(n_in).enumerate();
        // two weight rows at a time share the loads of x; an odd last row alone
        while let Some((j, w0)) = rows.next() {
            let (w0_lo, w0_hi) = w0.split_at_mut(head);
            if let Some((_, w1)) = rows.next() {
                let (w1_lo, w1_hi) = w1.split_at_mut(head);
                let pair = [d(j), d(j + 1)];
                unsafe {
                    simd::sub_outer5x2::<V>(w0_hi, w1_hi, pair, hi);
                    simd::sub_outer5x2::<V>(w0_lo, w1_lo, pair, lo);
                }
                b[j] -= pair[0].iter().fold(T::zero(), |a, &v| a + v);
                b[j + 1] -= pair[1].iter().fold(T::zero(), |a, &v| a + v);
            } else {
                let single = d(j);
                unsafe {
                    simd::sub_outer5::<V>(w0_hi, single, hi);
                    simd::sub_outer5::<V>(w0_lo, single, lo);
                }
                b[j] -= single.iter().fold(T::zero(), |a, &v| a + v);
            }
        }
    }
}

/// delta_in = (delta W) * a (1 - a): BP2, with sigma'(z) from the activation a.
#[inline(always)]
unsafe fn backprop_delta<T: Real, V: Vector<Elem = T>>(
    w: &[T],
    delta: &[T],
    a: &[T],
    delta_in: &mut [T],
    n_in: usize,
) {
    let p = a.len() / n_in;
    let n_out = delta.len() / p;
    for i in (0..p).step_by(SWEEP) {
        let block = &mut delta_in[i * n_in..(i + SWEEP) * n_in];
        block.fill(T::zero());
        let mut parts = block.chunks_exact_mut(n_in);
        let mut out: [&mut [T]; SWEEP] =
            std::array::from_fn(|_| parts.next().expect("a sweep of rows"));
        for j in 0..n_out {
            let d: [T; SWEEP] = std::array::from_fn(|q| delta[(i + q) * n_out + j]);
            unsafe { simd::add_outer5::<V>(&w[j * n_in..][..n_in], d, &mut out) };
        }
    }
    for (v, &a) in delta_in.iter_mut().zip(a) {
        *v *= a * (T::one() - a);
    }
}

/// delta = (a - e_y) a (1 - a) * scale for the m real samples, 0 for padding:
/// the quadratic cost's output error (BP1) times eta/m.
fn output_error<T: Real>(a: &[T], labels: &[i64], rows: &[usize], m: usize, scale: T, delta: &mut [T]) {
    let n_out = a.len() / rows.len();
    for (i, &row) in rows.iter().enumerate() {
        let label = labels[row] as usize;
        for j in 0..n_out {
            let v = a[i * n_out + j];
            let target = if j == label { T::one() } else { T::zero() };
            delta[i * n_out + j] = if i < m { (v - target) * (v * (T::one() - v)) * scale } else { T::zero() };
        }
    }
}

fn view<T>(data: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("buffer sized for the batch")
}

fn view_mut<T>(data: &mut [T], rows: usize, cols: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols]).expect("buffer sized for the batch")
}

/// The epoch with every product a BLAS GEMM on the gathered batch.
fn gemm_epoch<T: Real>(s: &mut State<T>, data: &Epoch<T>, batch_size: usize, eta: f64) {
    let x = data.x_slice();
    let sizes = s.sizes;
    let layers = s.weights.len();
    let Buffers { acts, deltas, rows, gathered, .. } = &mut *s.buffers;
    let n0 = sizes[0];
    for batch in data.order.chunks(batch_size) {
        let m = batch.len();
        for (i, &sample) in batch.iter().enumerate() {
            rows[i] = sample as usize;
            gathered[i * n0..][..n0].copy_from_slice(&x[rows[i] * n0..][..n0]);
        }
        for l in 0..layers {
            let (below, here) = acts.split_at_mut(l);
            let a_in = if l == 0 { view(gathered, m, n0) } else { view(&below[l - 1], m, sizes[l]) };
            let mut z = view_mut(&mut here[0], m, sizes[l + 1]);
            general_mat_mul(T::one(), &a_in, &s.weights[l].view().t(), T::zero(), &mut z);
            for mut row in z.rows_mut() {
                for (v, &b) in row.iter_mut().zip(&s.biases[l]) {
                    *v += b;
                }
            }
            simd::sigmoid_in_place(&mut here[0][..m * sizes[l + 1]]);
        }
        let n_out = sizes[layers];
        output_error(&acts[layers - 1][..m * n_out], data.labels, &rows[..m], m, T::of(eta / m as f64), &mut deltas[layers - 1]);
        for l in (0..layers).rev() {
            let (lower, upper) = deltas.split_at_mut(l);
            let delta = view(&upper[0], m, sizes[l + 1]);
            let a_in = if l == 0 { view(gathered, m, n0) } else { view(&acts[l - 1], m, sizes[l]) };
            if l > 0 {
                // BP2 with this layer's weights before their update
                let mut delta_in = view_mut(&mut lower[l - 1], m, sizes[l]);
                general_mat_mul(T::one(), &delta, &s.weights[l].view(), T::zero(), &mut delta_in);
                delta_in.zip_mut_with(&a_in, |v, &a| *v *= a * (T::one() - a));
            }
            let matrix = &mut s.weights[l];
            let (n_out, n_in) = (matrix.rows, matrix.cols);
            let mut w = view_mut(matrix.values_mut(), n_out, n_in);
            general_mat_mul(-T::one(), &delta.t(), &a_in, T::one(), &mut w);
            for row in delta.rows() {
                for (b, &d) in s.biases[l].iter_mut().zip(row) {
                    *b -= d;
                }
            }
        }
    }
}
