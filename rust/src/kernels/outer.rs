//! Outer products in registers over a matrix held transposed, Wᵀ (n_in,
//! stride), each row of the layer's outputs padded with zeros to whole
//! vectors: the first layer of the tiles kernel and of the team, and the
//! deeper layers of every fused kernel but the GEMMs' (`sweep::Deeper`).
//! Written first for W1ᵀ, whose rows are input features and whose columns
//! hidden units, the names below say so; for a deeper layer read its inputs
//! and outputs.
//!
//! - forward: a tile of `SWEEP` samples by `nb` vectors of outputs stays in
//!   registers while the inputs pass; per input k, `nb` loads of Wᵀ[k] and
//!   `SWEEP` broadcasts of x_q[k] feed `SWEEP * nb` multiply-adds (9 loads
//!   per 20 with AVX-512's four vectors), and no lanes are summed. Each sum
//!   runs over the inputs in order, one accumulator per sample and output.
//! - update: a tile of `SWEEP` inputs by `nb` vectors of Wᵀ stays in
//!   registers while the padded mini-batch passes, 64 samples at a time; per
//!   sample, `nb` loads of its -delta and `SWEEP` broadcasts of x_i[k..k +
//!   SWEEP]. Each weight takes the samples' terms one at a time in their
//!   order, as the sweep's update does, so its bits are the sweep's.
//!
//! `nb` is as many vectors as the registers hold beside the tile: four with
//! AVX-512's 32, two with AVX2's 16 (`tile_vectors`). The outputs are cut
//! into runs of at most `nb` vectors of as even a size as the count allows.

use std::ops::Range;

use num_traits::Zero;

use super::layout::{tile_vectors, Rows, CACHE_LINE, SWEEP};
use super::vector::{prefetch_l2, Vector};
use crate::real::Real;

/// `vectors` cut into runs of at most `most`, as even as the count allows.
fn runs(vectors: usize, most: usize) -> impl Iterator<Item = Range<usize>> {
    let count = vectors.div_ceil(most.max(1)).max(1);
    let (base, extra) = (vectors / count, vectors % count);
    let mut start = 0;
    (0..count).map(move |r| {
        let len = base + usize::from(r < extra);
        start += len;
        start - len..start
    })
}

/// W (rows, cols) row-major into `wt` (cols, stride): wt[k, j] = W[j, k], the
/// padding columns zero.
pub fn transpose_into<T: Real>(w: &[T], rows: usize, cols: usize, wt: &mut [T], stride: usize) {
    assert!(w.len() >= rows * cols && wt.len() >= cols * stride && stride >= rows);
    for (k, out) in wt.chunks_exact_mut(stride).take(cols).enumerate() {
        for (j, slot) in out.iter_mut().enumerate() {
            *slot = if j < rows { w[j * cols + k] } else { T::zero() };
        }
    }
}

/// The inverse of `transpose_into`, into W (rows, cols).
pub fn transpose_back<T: Real>(wt: &[T], stride: usize, w: &mut [T], rows: usize, cols: usize) {
    assert!(w.len() >= rows * cols && wt.len() >= cols * stride && stride >= rows);
    for (j, row) in w.chunks_exact_mut(cols).take(rows).enumerate() {
        for (k, slot) in row.iter_mut().enumerate() {
            // SAFETY: j < rows <= stride and k < cols, and wt holds cols * stride (asserted).
            *slot = unsafe { *wt.get_unchecked(k * stride + j) };
        }
    }
}

/// z[q, :] = sum over k in `features` of W1ᵀ[k, :] x_q[k], for the sweep of
/// samples starting at `i` of `input`; `wt` holds W1ᵀ's rows `features` only
/// (so that threads owning other rows may write them meanwhile), z is
/// (SWEEP, stride) row-major. `ahead` are the rows of X of the next sweep in
/// the epoch's order, whose `features` are prefetched into L2 meanwhile: the
/// order is shuffled, so the hardware's prefetchers cannot know them, and at
/// batch 1000 waiting for them from memory doubled the epoch. The deeper
/// layers, whose inputs are already in L1, pass None.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn forward_range<V: Vector>(
    wt: &[V::Elem],
    stride: usize,
    input: Rows<V::Elem>,
    i: usize,
    features: Range<usize>,
    z: &mut [V::Elem],
    ahead: Option<[&[V::Elem]; SWEEP]>,
) {
    assert!(stride.is_multiple_of(V::LANES) && features.end <= input.width);
    assert!(ahead.iter().flatten().all(|row| row.len() >= features.end));
    let ahead = ahead.map(|rows| rows.map(|row| row.as_ptr()));
    assert!(wt.len() >= features.len() * stride && z.len() >= SWEEP * stride);
    let x = input.sweep(i);
    for run in runs(stride / V::LANES, tile_vectors::<V>()) {
        let c = run.start * V::LANES;
        let prefetch = if run.start == 0 { ahead.as_ref() } else { None }; // once per sweep
        // SAFETY: the asserts above keep every load and store inside wt, x and z.
        unsafe {
            match run.len() {
                4 => forward_tile::<V, 4, SWEEP>(wt, stride, x, features.clone(), c, z, prefetch),
                3 => forward_tile::<V, 3, SWEEP>(wt, stride, x, features.clone(), c, z, prefetch),
                2 => forward_tile::<V, 2, SWEEP>(wt, stride, x, features.clone(), c, z, prefetch),
                _ => forward_tile::<V, 1, SWEEP>(wt, stride, x, features.clone(), c, z, prefetch),
            }
        }
    }
}

/// Whether the forward pass may take two sweeps of samples in one tile: a
/// row of W1ᵀ of `stride` is one run of vectors, and ten samples' worth of
/// accumulators for it fit in the registers beside its loads and one
/// broadcast (AVX-512: up to 32 hidden units in float32, 16 in float64;
/// AVX2: 8 and 4). Each row of W1ᵀ then feeds twice the multiply-adds per
/// read from L2, where at [784, 30, 10] in float32 a sweep's tile of five
/// samples by two vectors kept its sums in ten of AVX-512's 32 registers.
pub(crate) fn pair_fits<V: Vector>(stride: usize) -> bool {
    (stride / V::LANES) * (2 * SWEEP + 1) < V::REGISTERS
}

/// As `forward_range` over the whole of a row, for the two sweeps from `i`
/// at once, where `pair_fits`: z is (2 SWEEP, stride), and `ahead` the ten
/// rows to prefetch. Each sum runs over the features in order, as in a
/// sweep's tile: the same bits.
#[inline(always)]
pub(crate) unsafe fn forward_pair<V: Vector>(
    wt: &[V::Elem],
    stride: usize,
    input: Rows<V::Elem>,
    i: usize,
    features: Range<usize>,
    z: &mut [V::Elem],
    ahead: [&[V::Elem]; 2 * SWEEP],
) {
    assert!(pair_fits::<V>(stride) && stride.is_multiple_of(V::LANES) && features.end <= input.width);
    assert!(ahead.iter().all(|row| row.len() >= features.end));
    assert!(wt.len() >= features.len() * stride && z.len() >= 2 * SWEEP * stride);
    let (a, b) = (input.sweep(i), input.sweep(i + SWEEP));
    let x: [&[V::Elem]; 2 * SWEEP] = std::array::from_fn(|q| if q < SWEEP { a[q] } else { b[q - SWEEP] });
    let prefetch = ahead.map(|row| row.as_ptr());
    // SAFETY: the asserts above keep every load and store inside wt, x and z.
    unsafe {
        match stride / V::LANES {
            2 => forward_tile::<V, 2, { 2 * SWEEP }>(wt, stride, x, features, 0, z, Some(&prefetch)),
            _ => forward_tile::<V, 1, { 2 * SWEEP }>(wt, stride, x, features, 0, z, Some(&prefetch)),
        }
    }
}

#[inline(always)]
unsafe fn forward_tile<V: Vector, const NB: usize, const S: usize>(
    wt: &[V::Elem],
    stride: usize,
    x: [&[V::Elem]; S],
    features: Range<usize>,
    c: usize,
    z: &mut [V::Elem],
    prefetch: Option<&[*const V::Elem; S]>,
) {
    let zero = unsafe { V::splat(V::Elem::zero()) };
    let mut acc = [[zero; NB]; S];
    let xp = x.map(|row| row.as_ptr());
    let line = CACHE_LINE / std::mem::size_of::<V::Elem>();
    for (r, k) in features.enumerate() {
        if let Some(ahead) = prefetch {
            if k % line == 0 {
                for row in ahead {
                    prefetch_l2(row.wrapping_add(k));
                }
            }
        }
        unsafe {
            let row = wt.as_ptr().add(r * stride + c);
            let mut w = [zero; NB];
            for (v, slot) in w.iter_mut().enumerate() {
                *slot = V::load(row.add(v * V::LANES));
            }
            for q in 0..S {
                let xb = V::splat(*xp[q].add(k));
                for v in 0..NB {
                    acc[q][v] = V::mul_add(w[v], xb, acc[q][v]);
                }
            }
        }
    }
    for (q, tile) in acc.iter().enumerate() {
        for (v, a) in tile.iter().enumerate() {
            unsafe { a.store(z.as_mut_ptr().add(q * stride + c + v * V::LANES)) };
        }
    }
}

/// out (p, stride) = -delta (p, hidden), the padding columns zero: what
/// `update_range` takes. Kept a call (the baseline build's SSE2 code):
/// inlined into the AVX-512 epoch on a 2-core Xeon, it and `update_bias` took
/// half as long again a mini-batch (docs/findings, team/sigmoid.txt).
#[inline(never)]
pub(crate) fn minus_padded<T: Real>(delta: &[T], hidden: usize, stride: usize, out: &mut [T]) {
    for (row, d) in out.chunks_exact_mut(stride).zip(delta.chunks_exact(hidden)) {
        let (values, padding) = row.split_at_mut(hidden);
        values.iter_mut().zip(d).for_each(|(v, &d)| *v = -d);
        padding.fill(T::zero());
    }
}

/// W1ᵀ[k, :] += sum_i x_i[k] nd[i, :] for k in `features` and the padded
/// batch's rows x_i of `input`; `wt` holds W1ᵀ's rows `features` only, nd is
/// (p, stride), the batch's -delta1 with zeros in the padding.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn update_range<V: Vector>(
    wt: &mut [V::Elem],
    stride: usize,
    input: Rows<V::Elem>,
    nd: &[V::Elem],
    features: Range<usize>,
) {
    let p = input.ids.len();
    assert!(stride.is_multiple_of(V::LANES) && features.end <= input.width);
    assert!(wt.len() >= features.len() * stride && nd.len() >= p * stride);
    for i in 0..p {
        let _ = input.row(i); // every row in bounds before the unchecked loads
    }
    let most = tile_vectors::<V>();
    for chunk in (0..p).step_by(UPDATE_CHUNK) {
        let samples = chunk..(chunk + UPDATE_CHUNK).min(p);
        unsafe { update_samples::<V>(wt, stride, input, nd, features.clone(), samples, most) };
    }
}

/// Samples per pass of the update over W1ᵀ: the cache lines of their rows
/// that a run of features touches (one each, 4 KB in all) stay in L1 while the
/// next runs reuse them, on any CPU; a mini-batch of 1000 in one pass read a
/// thousand scattered lines per run, from L3.
const UPDATE_CHUNK: usize = 64;

#[inline(always)]
unsafe fn update_samples<V: Vector>(
    wt: &mut [V::Elem],
    stride: usize,
    input: Rows<V::Elem>,
    nd: &[V::Elem],
    features: Range<usize>,
    samples: Range<usize>,
    most: usize,
) {
    let mut k = features.start;
    while k < features.end {
        let sweep = k + SWEEP <= features.end;
        for run in runs(stride / V::LANES, most) {
            let c = run.start * V::LANES;
            // SAFETY: the asserts above keep every load and store inside wt, nd and x.
            unsafe {
                let at = (k - features.start) * stride + c;
                match (sweep, run.len()) {
                    (true, 4) => update_tile::<V, 4, SWEEP>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (true, 3) => update_tile::<V, 3, SWEEP>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (true, 2) => update_tile::<V, 2, SWEEP>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (true, _) => update_tile::<V, 1, SWEEP>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (false, 4) => update_tile::<V, 4, 1>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (false, 3) => update_tile::<V, 3, 1>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (false, 2) => update_tile::<V, 2, 1>(wt, at, stride, input, nd, samples.clone(), k, c),
                    (false, _) => update_tile::<V, 1, 1>(wt, at, stride, input, nd, samples.clone(), k, c),
                }
            }
        }
        k += if sweep { SWEEP } else { 1 };
    }
}

#[allow(clippy::too_many_arguments)] // a tile's coordinates, kept apart for the compiler
#[inline(always)]
unsafe fn update_tile<V: Vector, const NB: usize, const KB: usize>(
    wt: &mut [V::Elem],
    at: usize,
    stride: usize,
    input: Rows<V::Elem>,
    nd: &[V::Elem],
    samples: Range<usize>,
    k: usize,
    c: usize,
) {
    let zero = unsafe { V::splat(V::Elem::zero()) };
    let base = unsafe { wt.as_mut_ptr().add(at) };
    let mut acc = [[zero; NB]; KB];
    for (r, tile) in acc.iter_mut().enumerate() {
        for (v, a) in tile.iter_mut().enumerate() {
            *a = unsafe { V::load(base.add(r * stride + v * V::LANES)) };
        }
    }
    for i in samples {
        unsafe {
            let xi = input.data.as_ptr().add(*input.ids.get_unchecked(i) * input.width + k);
            let di = nd.as_ptr().add(i * stride + c);
            let mut d = [zero; NB];
            for (v, slot) in d.iter_mut().enumerate() {
                *slot = V::load(di.add(v * V::LANES));
            }
            for (r, tile) in acc.iter_mut().enumerate() {
                let xb = V::splat(*xi.add(r));
                for v in 0..NB {
                    tile[v] = V::mul_add(d[v], xb, tile[v]);
                }
            }
        }
    }
    for (r, tile) in acc.iter().enumerate() {
        for (v, a) in tile.iter().enumerate() {
            unsafe { a.store(base.add(r * stride + v * V::LANES)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_even_and_cover_the_vectors() {
        let cut = |n, most| runs(n, most).map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(cut(4, 4), vec![4]);
        assert_eq!(cut(13, 4), vec![4, 3, 3, 3]);
        assert_eq!(cut(7, 2), vec![2, 2, 2, 1]);
        assert_eq!(cut(1, 4), vec![1]);
        for (n, most) in [(30, 2), (13, 4), (8, 3)] {
            let all: Vec<_> = runs(n, most).collect();
            assert_eq!((all[0].start, all[all.len() - 1].end), (0, n));
            assert!(all.windows(2).all(|w| w[0].end == w[1].start));
            assert!(all.iter().all(|r| (1..=most).contains(&r.len())));
        }
    }

    /// A pair's sums against its two sweeps', bit for bit, from one row of
    /// W1ᵀ and ten rows of X picked out of order.
    unsafe fn pair_against_sweeps<T: crate::kernels::vector::Lane, V: Vector<Elem = T>>(hidden: usize, features: Range<usize>) {
        let n_in = 37;
        let stride = crate::kernels::layout::stride(hidden, V::LANES);
        assert!(pair_fits::<V>(stride), "{hidden} hidden units fit a pair of {} lanes", V::LANES);
        let value = |v: usize| T::of(((v * 7919) % 1013) as f64 / 1013.0 - 0.5);
        let x: Vec<T> = (0..12 * n_in).map(value).collect();
        let wt: Vec<T> = (0..n_in * stride).map(|v| value(v + 5)).collect();
        let ids = [11, 3, 0, 7, 5, 9, 1, 10, 2, 6];
        let input = Rows { data: &x, width: n_in, ids: &ids };
        let ahead: [&[T]; 2 * SWEEP] = std::array::from_fn(|q| &x[q * n_in..][..n_in]);
        let rows = &wt[features.start * stride..features.end * stride];
        let mut pair = vec![T::zero(); 2 * SWEEP * stride];
        let mut sweeps = vec![T::zero(); 2 * SWEEP * stride];
        unsafe {
            forward_pair::<V>(rows, stride, input, 0, features.clone(), &mut pair, ahead);
            let (first, second) = sweeps.split_at_mut(SWEEP * stride);
            let five = std::array::from_fn(|q| ahead[q]);
            forward_range::<V>(rows, stride, input, 0, features.clone(), first, Some(five));
            forward_range::<V>(rows, stride, input, SWEEP, features, second, None);
        }
        assert!(pair.iter().zip(&sweeps).all(|(a, b)| a.integer_decode() == b.integer_decode()), "the same bits");
        assert!(pair.iter().any(|v| *v != T::zero()));
    }

    fn pairs_on<T: crate::kernels::vector::Lane>(isa: crate::kernels::isa::Isa, hidden: usize, features: Range<usize>) {
        crate::kernels::isa::dispatch!(isa, T, pair_against_sweeps(hidden: usize, features: Range<usize>));
    }

    #[test]
    fn a_pair_of_sweeps_gives_the_bits_of_two_sweeps() {
        use crate::kernels::isa::Isa;
        for isa in Isa::ALL.into_iter().filter(|isa| isa.supported()) {
            let most = if isa == Isa::Avx512 { 2 } else { 1 }; // vectors of a pair's row
            for hidden in [1, isa.lanes::<f64>() * most, isa.lanes::<f64>() * most - 1] {
                for features in [0..37, 8..29] {
                    pairs_on::<f64>(isa, hidden.max(1), features);
                }
            }
            pairs_on::<f32>(isa, isa.lanes::<f32>() * most, 0..37);
        }
    }

    #[test]
    fn transposing_there_and_back_keeps_every_weight_and_pads_with_zeros() {
        let (rows, cols, stride) = (3, 5, 8);
        let w: Vec<f64> = (0..rows * cols).map(|v| v as f64 + 0.5).collect();
        let mut wt = vec![f64::NAN; cols * stride];
        transpose_into(&w, rows, cols, &mut wt, stride);
        assert_eq!(wt[2 * stride + 1], w[cols + 2]);
        assert!((0..cols).all(|k| wt[k * stride + rows..(k + 1) * stride].iter().all(|&v| v == 0.0)));
        let mut back = vec![0.0; rows * cols];
        transpose_back(&wt, stride, &mut back, rows, cols);
        assert_eq!(back, w);
    }
}
