//! The first layer as register tiles over W1 transposed: the fused kernel's
//! third way to do the first layer's products.
//!
//! The sweep (`sweep`) takes each hidden unit's sum as a dot product along a
//! row of W1, 7 loads per 10 multiply-adds, and ends every dot product with a
//! sum across the lanes; its update reads and writes W1 once per sweep of five
//! samples. Here W1 is held transposed for the epoch, (n_in, stride), each row
//! of hidden units padded with zeros to whole vectors, and the products are
//! outer products in registers (`outer`): no lanes are summed, and W1ᵀ is read
//! and written once per 64 samples. Each weight takes the samples' terms one
//! at a time in their order, as the sweep's update does.
//!
//! Each hidden unit's forward sum runs over the features in order, one
//! accumulator per sample and unit; `forward_range` takes a run of features,
//! so that a team of threads can split them (see `team`).

use std::ops::Range;

use super::layout::{pad_rows, rows_ahead, stride, Buffers, Rows, State, SWEEP};
use super::outer::{forward_pair, forward_range, pair_fits, minus_padded, transpose_back, transpose_into, update_range};
use super::sweep::{after_first_layer, deeper_backward, update_bias, update_deeper, Batch, Deeper};
use super::vector::{sigmoid_in_place, Lane, Vector};
use crate::data::Epoch;

/// sums[i, :hidden] = the first layer's sums over `features` for every row i
/// of the padded batch `input` (a whole number of sweeps), sweep by sweep, or
/// two at once where a row of W1ᵀ allows (`pair_fits`), through `tile_sums`
/// (2 SWEEP, stride); `ahead(i)` gives the rows of the sweep after sweep i,
/// which are prefetched while the sweep or pair before them is computed (see
/// `forward_range`).
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn forward_batch<'a, V: Vector + 'a>(
    wt: &[V::Elem],
    stride: usize,
    input: Rows<V::Elem>,
    features: Range<usize>,
    tile_sums: &mut [V::Elem],
    sums: &mut [V::Elem],
    ahead: impl Fn(usize) -> [&'a [V::Elem]; SWEEP],
) {
    let (n, hidden) = (input.ids.len(), sums.len() / input.ids.len());
    let pairs = pair_fits::<V>(stride);
    let mut i = 0;
    while i < n {
        let tile = if pairs && i + 2 * SWEEP <= n { 2 * SWEEP } else { SWEEP };
        if tile == SWEEP {
            unsafe { forward_range::<V>(wt, stride, input, i, features.clone(), tile_sums, Some(ahead(i))) };
        } else {
            let (a, b) = (ahead(i + SWEEP), ahead(i + 2 * SWEEP)); // the ten samples after the pair
            let rows = std::array::from_fn(|q| if q < SWEEP { a[q] } else { b[q - SWEEP] });
            unsafe { forward_pair::<V>(wt, stride, input, i, features.clone(), tile_sums, rows) };
        }
        for q in 0..tile {
            sums[(i + q) * hidden..][..hidden].copy_from_slice(&tile_sums[q * stride..][..hidden]);
        }
        i += tile;
    }
}

/// Samples per block of a mini-batch too big for L2 (`blocks`): whole sweeps,
/// within one pass of the update (64 samples), 376 KB of rows in float64.
pub(crate) const BLOCK: usize = 12 * SWEEP;

/// Bytes of a mini-batch's rows of X above which it is cut into blocks: the
/// smallest L2 a core of the CPUs these kernels have met (1 MiB on Zen 4; 2
/// MiB on the Xeons), beyond which the rows the forward pass brought in are
/// gone before the update reads them.
pub(crate) const BLOCK_ABOVE_BYTES: usize = 1 << 20;

/// The samples per block of a padded mini-batch of `p` in a network of
/// `sizes`: `BLOCK` where its rows of X take more than `BLOCK_ABOVE_BYTES`,
/// else None, one pass. Each block goes forward, back and into the update
/// before the next is read, so its rows come from memory once, not twice: at
/// batch 1000 the update had read all 6 MB (float64) again, a thousand
/// scattered lines per pass, and one thread took 1.15x as long a float64
/// epoch as at batch 100, 1.6x in float32.
pub(crate) fn block_samples<T>(sizes: &[usize], p: usize) -> Option<usize> {
    let big = p * sizes[0] * std::mem::size_of::<T>() > BLOCK_ABOVE_BYTES;
    (big && p > BLOCK && sizes.len() - 1 <= MOST_LAYERS_BLOCKED).then_some(BLOCK)
}

/// The padded mini-batch of `p` as blocks of `size` samples.
pub(crate) fn blocks(p: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    (0..p).step_by(size.max(1)).map(move |s| s..(s + size).min(p))
}

/// The epoch with the first layer as register tiles over W1ᵀ (`tiles`),
/// transposed in at the start and back at the end.
///
/// A mini-batch cut into blocks (`blocks`) updates a copy of W1ᵀ, which
/// becomes W1ᵀ after its last block: every block's forward pass reads the
/// weights the mini-batch started with, and each weight still takes the
/// samples' terms one at a time in their order, from its value at the start
/// of the mini-batch, so the bits are those of one pass.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn train_epoch<T: Lane, V: Vector<Elem = T>>(
    s: &mut State<T>,
    deeper: &mut Deeper<T>,
    data: &Epoch<T>,
    batch_size: usize,
    eta: f64,
) {
    let x = data.x_slice();
    let sizes = s.sizes;
    let (n0, hidden) = (sizes[0], sizes[1]);
    let stride = stride(hidden, V::LANES);
    let Buffers { acts, deltas, rows, ids, transposed, spare, tile_sums, minus_delta, .. } = &mut *s.buffers;
    let len = n0 * stride;
    transpose_into(s.weights[0].values(), hidden, n0, transposed.values_mut(len), stride);
    deeper.load::<V>(&s.weights[1..], rows.len());
    for (b, batch) in data.order.chunks(batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, rows));
        let (rows, ids) = (&rows[..p], &ids[..p]);
        let first = Rows { data: x, width: n0, ids: rows };
        let scale = T::of(eta / m as f64);
        if let Some(size) = block_samples::<T>(sizes, p) {
            spare.reserve(len);
            spare.values_mut(len).copy_from_slice(transposed.values(len));
            for block in blocks(p, size) {
                let here = Rows { data: x, width: n0, ids: &rows[block.clone()] };
                let ahead = |i| rows_ahead(x, n0, data.order, b * batch_size, block.start + i, m, batch_size);
                let a1 = &mut acts[0][block.start * hidden..block.end * hidden];
                unsafe { forward_batch::<V>(transposed.values(len), stride, here, 0..n0, tile_sums, a1, ahead) };
                add_bias_and_sigmoid::<V>(a1, &s.biases[0]);
                let (mut block_acts, mut block_deltas) = (rows_of(acts, sizes, &block), rows_of(deltas, sizes, &block));
                let layers = sizes.len() - 1;
                let these = Batch { rows: here.ids, ids: &ids[..block.len()], m: m - block.start, labels: data.labels, scale };
                unsafe { deeper_backward::<T, V, _>(sizes, &s.weights[1..], &s.biases[1..], deeper, &mut block_acts[..layers], &mut block_deltas[..layers], &these) };
                let nd = &mut minus_delta[..block.len() * stride];
                minus_padded(block_deltas[0], hidden, stride, nd);
                unsafe { update_range::<V>(spare.values_mut(len), stride, here, nd, 0..n0) };
            }
            std::mem::swap(transposed, spare);
            unsafe { update_deeper::<T, V, _, _>(sizes, &mut s.weights[1..], &mut s.biases[1..], deeper, &acts[..], &deltas[..], ids) };
        } else {
            let wt = transposed.values_mut(len);
            let b1 = &s.biases[0];
            let a1 = &mut acts[0][..p * hidden];
            let ahead = |i| rows_ahead(x, n0, data.order, b * batch_size, i, m, batch_size);
            unsafe { forward_batch::<V>(wt, stride, first, 0..n0, tile_sums, a1, ahead) };
            add_bias_and_sigmoid::<V>(a1, b1);
            let batch = Batch { rows, ids, m, labels: data.labels, scale };
            unsafe { after_first_layer::<T, V>(sizes, &mut s.weights[1..], &mut s.biases[1..], deeper, acts, deltas, &batch) };
            let delta1 = &deltas[0][..p * hidden];
            minus_padded(delta1, hidden, stride, minus_delta);
            unsafe { update_range::<V>(wt, stride, first, &minus_delta[..p * stride], 0..n0) };
        }
        update_bias(&mut s.biases[0], &deltas[0][..p * hidden]);
    }
    transpose_back(transposed.values(len), stride, s.weights[0].values_mut(), hidden, n0);
}

/// The layers a blocked mini-batch handles without allocating: deeper
/// networks go through in one pass.
const MOST_LAYERS_BLOCKED: usize = 8;

/// Each layer's rows `block` of a mini-batch's activations or deltas, in an
/// array on the stack: a block allocates nothing.
fn rows_of<'a, T>(layers: &'a mut [Vec<T>], sizes: &[usize], block: &Range<usize>) -> [&'a mut [T]; MOST_LAYERS_BLOCKED] {
    let mut out: [&mut [T]; MOST_LAYERS_BLOCKED] = Default::default();
    for (slot, (values, &n)) in out.iter_mut().zip(layers.iter_mut().zip(&sizes[1..])) {
        *slot = &mut values[block.start * n..block.end * n];
    }
    out
}

/// a1's rows += b1, then the sigmoid of every element. Inlined, so that it
/// is compiled for the caller's instruction set: called, it ran the baseline
/// build's SSE2 code (two float64 lanes, no FMA), and on a 2-core Xeon one
/// thread's b1 and sigmoid of 300 float64 took 3,450-3,560 time-stamp-counter
/// cycles a mini-batch; inlined, and with exp's FMAs, 1,020-1,100.
#[inline(always)]
pub(crate) fn add_bias_and_sigmoid<V: Vector>(a1: &mut [V::Elem], b1: &[V::Elem]) {
    for row in a1.chunks_exact_mut(b1.len()) {
        row.iter_mut().zip(b1).for_each(|(a, &b)| *a += b);
    }
    sigmoid_in_place::<V>(a1);
}
