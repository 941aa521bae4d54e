//! Where the kernels' data sit in memory: weight matrices that can be moved
//! to any offset from a cache line, buffers that start on one, the rows of a
//! mini-batch padded to whole sweeps of five samples, and the buffers one
//! epoch works in.

use ndarray::ArrayView2;

use super::vector::Vector;
use crate::real::Real;

/// The bytes of a cache line.
pub(crate) const CACHE_LINE: usize = 64;

/// Samples per sweep over a weight row: every weight loaded feeds five
/// multiply-adds, and five 784-wide input rows (31 KB in f64) stay in L1.
pub const SWEEP: usize = 5;

/// Elements of T in one cache line.
pub(crate) fn line<T>() -> usize {
    CACHE_LINE / std::mem::size_of::<T>()
}

/// The vectors per register tile, the tiles kernel's (hidden units) and
/// backprop's (a layer's inputs): as many as fit in the registers beside the
/// `SWEEP` accumulators each needs, the loads and one broadcast.
pub fn tile_vectors<V: Vector>() -> usize {
    ((V::REGISTERS - 2) / (SWEEP + 1)).clamp(1, MAX_TILE)
}

const MAX_TILE: usize = 4;

/// Hidden units padded to whole vectors of `lanes`: the row length of W1ᵀ.
pub fn stride(hidden: usize, lanes: usize) -> usize {
    hidden.div_ceil(lanes) * lanes
}

/// A weight matrix (n_out, n_in), row-major, in a buffer with a cache line of
/// slack so that it can be moved to any offset from a 64-byte boundary.
#[derive(Clone)]
pub(crate) struct Matrix<T> {
    data: Vec<T>,
    start: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl<T: Real> Matrix<T> {
    pub(crate) fn new(values: ArrayView2<T>) -> Self {
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

    pub(crate) fn view(&self) -> ArrayView2<'_, T> {
        ArrayView2::from_shape((self.rows, self.cols), self.values()).expect("shape of the buffer")
    }

    /// Moves the values, in place, to start `offset` bytes past a cache line.
    pub(crate) fn place_at(&mut self, offset: usize) {
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

    pub(crate) fn values(&self, len: usize) -> &[T] {
        &self.data[self.start..self.start + len]
    }

    pub(crate) fn values_mut(&mut self, len: usize) -> &mut [T] {
        &mut self.data[self.start..self.start + len]
    }
}

/// Per-layer activations and deltas, (capacity, n) row-major, and the batch's rows.
#[derive(Default, Clone)]
pub(crate) struct Buffers<T> {
    capacity: usize,
    pub(crate) acts: Vec<Vec<T>>,
    pub(crate) deltas: Vec<Vec<T>>,
    pub(crate) gathered: Vec<T>,
    pub(crate) rows: Vec<usize>,
    pub(crate) ids: Vec<usize>,
    /// The tiles' W1ᵀ, (n_in, stride) from a cache line, and their buffers:
    /// one sweep's sums (SWEEP, stride) and the batch's -delta1 (capacity, stride).
    pub(crate) transposed: Aligned<T>,
    /// The next W1ᵀ while a mini-batch cut into blocks is updated (`tiles`).
    pub(crate) spare: Aligned<T>,
    pub(crate) tile_sums: Vec<T>,
    pub(crate) minus_delta: Vec<T>,
}

impl<T: Real> Buffers<T> {
    /// Room for a padded batch of `batch_size`; allocates only when it grows.
    pub(crate) fn reserve(&mut self, sizes: &[usize], batch_size: usize) {
        let capacity = padded(batch_size);
        if capacity > self.capacity {
            self.acts = sizes[1..].iter().map(|&n| vec![T::zero(); capacity * n]).collect();
            self.deltas = self.acts.clone();
            self.rows = vec![0; capacity];
            self.ids = (0..capacity).collect();
            self.capacity = capacity;
            self.gathered.clear();
        }
    }

    /// Room for the batch's rows of X gathered into one matrix (the GEMMs').
    pub(crate) fn reserve_gathered(&mut self, n_in: usize) {
        if self.gathered.len() < self.capacity * n_in {
            self.gathered = vec![T::zero(); self.capacity * n_in];
        }
    }

    /// Room for the tiles' W1ᵀ and their buffers, with `lanes` to a vector.
    pub(crate) fn reserve_tiles(&mut self, sizes: &[usize], lanes: usize) {
        let stride = stride(sizes[1], lanes);
        self.transposed.reserve(sizes[0] * stride);
        if self.tile_sums.len() < 2 * SWEEP * stride {
            self.tile_sums = vec![T::zero(); 2 * SWEEP * stride];
        }
        if self.minus_delta.len() < self.capacity * stride {
            self.minus_delta = vec![T::zero(); self.capacity * stride];
        }
    }
}

/// What one epoch works on, borrowed apart so that the kernels can hold
/// several of its buffers at once.
pub(crate) struct State<'a, T> {
    pub(crate) sizes: &'a [usize],
    pub(crate) weights: &'a mut [Matrix<T>],
    pub(crate) biases: &'a mut [Vec<T>],
    pub(crate) buffers: &'a mut Buffers<T>,
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

/// The rows of X of the `SWEEP` samples after sweep `i` of the batch of m
/// that starts at `start` in `order`: the batch's next sweep, or past its
/// last sweep the next batch's, counted from its start (so that sweep i + 5
/// gives the next batch's second sweep where sweep i is the last); the next
/// batch's first sample for the padding of a short last sweep, and the
/// order's last sample past its end.
pub(crate) fn rows_ahead<'a, T>(x: &'a [T], width: usize, order: &[i64], start: usize, i: usize, m: usize, batch_size: usize) -> [&'a [T]; SWEEP] {
    let last = padded(m);
    std::array::from_fn(|q| {
        let j = i + SWEEP + q;
        let at = if j < m { start + j } else { start + batch_size + j.saturating_sub(last) };
        let at = at.min(order.len() - 1);
        &x[order[at] as usize * width..][..width]
    })
}
