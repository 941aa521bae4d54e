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
use super::outer::{forward_range, minus_padded, transpose_back, transpose_into, update_range};
use super::sweep::{after_first_layer, update_bias, Batch, Deeper};
use super::vector::{sigmoid_in_place, Lane, Vector};
use crate::data::Epoch;

/// sums[i, :hidden] = the first layer's sums over `features` for every row i
/// of the padded batch `input` (a whole number of sweeps), sweep by sweep
/// through `tile_sums` (SWEEP, stride); `ahead(i)` gives the rows to prefetch
/// while sweep i is computed (see `forward_range`).
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
    let hidden = sums.len() / input.ids.len();
    for i in (0..input.ids.len()).step_by(SWEEP) {
        unsafe { forward_range::<V>(wt, stride, input, i, features.clone(), tile_sums, Some(ahead(i))) };
        for q in 0..SWEEP {
            sums[(i + q) * hidden..][..hidden].copy_from_slice(&tile_sums[q * stride..][..hidden]);
        }
    }
}

/// The epoch with the first layer as register tiles over W1ᵀ (`tiles`),
/// transposed in at the start and back at the end.
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
    let Buffers { acts, deltas, rows, ids, transposed, tile_sums, minus_delta, .. } = &mut *s.buffers;
    let wt = transposed.values_mut(n0 * stride);
    transpose_into(s.weights[0].values(), hidden, n0, wt, stride);
    deeper.load::<V>(&s.weights[1..], rows.len());
    for (b, batch) in data.order.chunks(batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, rows));
        let (rows, ids) = (&rows[..p], &ids[..p]);
        let first = Rows { data: x, width: n0, ids: rows };
        let b1 = &s.biases[0];
        let a1 = &mut acts[0][..p * hidden];
        let ahead = |i| rows_ahead(x, n0, data.order, b * batch_size, i, m, batch_size);
        unsafe { forward_batch::<V>(wt, stride, first, 0..n0, tile_sums, a1, ahead) };
        for row in a1.chunks_exact_mut(hidden) {
            row.iter_mut().zip(b1).for_each(|(a, &b)| *a += b);
        }
        sigmoid_in_place(a1);
        let batch = Batch { rows, ids, m, labels: data.labels, scale: T::of(eta / m as f64) };
        unsafe { after_first_layer::<T, V>(sizes, &mut s.weights[1..], &mut s.biases[1..], deeper, acts, deltas, &batch) };
        let delta1 = &deltas[0][..p * hidden];
        minus_padded(delta1, hidden, stride, minus_delta);
        unsafe { update_range::<V>(wt, stride, first, &minus_delta[..p * stride], 0..n0) };
        update_bias(&mut s.biases[0], delta1);
    }
    transpose_back(wt, stride, s.weights[0].values_mut(), hidden, n0);
}
