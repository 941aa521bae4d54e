//! The sweep: each layer's products as five samples per sweep over two weight
//! rows at a time (`products`), so each weight loaded feeds five multiply-adds
//! and each input two, the five input rows stay in L1 and the weights stream
//! from L2. Batches are padded to whole sweeps with copies of their last
//! sample whose delta is zero, so they add exactly nothing. The first layer's
//! weights sit at the same offset from a 64-byte boundary as the rows of X and
//! each sweep does the elements before the first boundary apart (`head`), so
//! that the wide loads of both never straddle two cache lines.
//!
//! The layers after the first run here under every kernel but the GEMMs', their backprop
//! as a sweep and their forward pass and update as outer products over their
//! weights transposed (`Deeper`): the tiles call `after_first_layer`, the
//! team its two halves, `deeper_backward` (per sample) and `update_deeper`.

pub mod products;

use num_traits::Zero;

use super::layout::{pad_rows, stride as stride_of, tile_vectors, Aligned, Buffers, Matrix, Rows, State, SWEEP};
use super::outer::{forward_range, minus_padded, transpose_back, transpose_into, update_range};
use super::vector::{sigmoid_in_place, Lane, Vector};
use crate::data::Epoch;
use crate::real::Real;

/// The epoch with every layer swept.
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
    head: usize,
) {
    let x = data.x_slice();
    let sizes = s.sizes;
    let Buffers { acts, deltas, rows, ids, .. } = &mut *s.buffers;
    deeper.load::<V>(&s.weights[1..], rows.len());
    for batch in data.order.chunks(batch_size) {
        let (m, p) = (batch.len(), pad_rows(batch, rows));
        let (rows, ids) = (&rows[..p], &ids[..p]);
        let first = Rows { data: x, width: sizes[0], ids: rows };
        forward::<T, V>(s.weights[0].values(), &s.biases[0], first, &mut acts[0][..p * sizes[1]], head);
        let batch = Batch { rows, ids, m, labels: data.labels, scale: T::of(eta / m as f64) };
        unsafe { after_first_layer::<T, V>(sizes, &mut s.weights[1..], &mut s.biases[1..], deeper, acts, deltas, &batch) };
        update::<T, V>(s.weights[0].values_mut(), &mut s.biases[0], &deltas[0][..p * sizes[1]], first, head);
    }
}

/// The layers after the first, also held transposed while an epoch trains:
/// Wᵀ (n_in, stride), each row of the layer's outputs padded with zeros to
/// whole vectors, as the tiles hold W1ᵀ. Their forward pass and update run
/// as the tiles' outer products in registers: a 30-by-10 layer is too narrow
/// for the sweep's dot products along a row of W, each of which ended in a
/// sum across the lanes of a vector (a hundred per mini-batch of ten).
/// Backprop reads W's rows, which are brought up to date from Wᵀ after
/// every update, so that the trainer's `Matrix` is the weights' between
/// mini-batches and epochs.
#[derive(Default, Clone)]
pub(crate) struct Deeper<T> {
    /// Per layer after the first: Wᵀ, from a cache line as W1ᵀ is (a row of
    /// 16 float64 is two lines, which unaligned loads would straddle), its
    /// length and its row length.
    transposed: Vec<(Aligned<T>, usize, usize)>,
    /// One sweep's sums, (SWEEP, the widest stride).
    sums: Vec<T>,
    /// A mini-batch's -delta padded to the stride, (capacity, widest stride).
    minus: Vec<T>,
}

impl<T: Real> Deeper<T> {
    /// The transposes of `weights` (layers 2..) for a mini-batch of up to
    /// `capacity` padded samples.
    pub(crate) fn new<V: Vector<Elem = T>>(weights: &[Matrix<T>], capacity: usize) -> Self {
        let mut deeper = Deeper::default();
        deeper.load::<V>(weights, capacity);
        deeper
    }

    /// As `new`, in the buffers already made where they are large enough,
    /// so that an epoch after the first allocates nothing.
    pub(crate) fn load<V: Vector<Elem = T>>(&mut self, weights: &[Matrix<T>], capacity: usize) {
        self.transposed.resize_with(weights.len(), Default::default);
        for (w, (wt, len, stride)) in weights.iter().zip(&mut self.transposed) {
            *stride = stride_of(w.rows, V::LANES);
            *len = w.cols * *stride;
            wt.reserve(*len);
            transpose_into(w.values(), w.rows, w.cols, wt.values_mut(*len), *stride);
        }
        let widest = self.transposed.iter().map(|(_, _, s)| *s).max().unwrap_or(0);
        self.sums.resize(SWEEP * widest, T::zero());
        self.minus.resize(capacity * widest, T::zero());
    }
}

/// b[j] -= sum_i delta[i, j], five samples at a time as `update` sums them.
/// Kept a call, as `outer::minus_padded` is.
#[inline(never)]
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
pub(crate) unsafe fn after_first_layer<T: Lane, V: Vector<Elem = T>>(
    sizes: &[usize],
    weights: &mut [Matrix<T>],
    biases: &mut [Vec<T>],
    deeper: &mut Deeper<T>,
    acts: &mut [Vec<T>],
    deltas: &mut [Vec<T>],
    batch: &Batch<T>,
) {
    unsafe {
        deeper_backward::<T, V, _>(sizes, weights, biases, deeper, acts, deltas, batch);
        update_deeper::<T, V, _, _>(sizes, weights, biases, deeper, acts, deltas, batch.ids);
    }
}

/// The deeper layers forward from acts[0], the output error and backprop down
/// to delta1, for each sample apart: the rows of `batch` may be any whole
/// sweeps of a mini-batch, and each sample's results are the same bits
/// whichever sweeps it is computed with. Nothing is updated; `deeper` lends
/// its transposes and a buffer.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn deeper_backward<T: Lane, V: Vector<Elem = T>, S: AsMut<[T]> + AsRef<[T]>>(
    sizes: &[usize],
    weights: &[Matrix<T>],
    biases: &[Vec<T>],
    deeper: &mut Deeper<T>,
    acts: &mut [S],
    deltas: &mut [S],
    batch: &Batch<T>,
) {
    let layers = sizes.len() - 1;
    let (p, ids) = (batch.ids.len(), batch.ids);
    for l in 1..layers {
        let (below, here) = acts.split_at_mut(l);
        let input = Rows { data: below[l - 1].as_ref(), width: sizes[l], ids };
        let out = &mut here[0].as_mut()[..p * sizes[l + 1]];
        let (wt, len, stride) = &deeper.transposed[l - 1];
        unsafe { forward_transposed::<T, V>(wt.values(*len), *stride, &biases[l - 1], input, out, &mut deeper.sums) };
    }
    let n_out = sizes[layers];
    let out = &acts[layers - 1].as_ref()[..p * n_out];
    output_error(out, batch.labels, batch.rows, batch.m, batch.scale, deltas[layers - 1].as_mut());
    for l in (1..layers).rev() {
        let (lower, upper) = deltas.split_at_mut(l);
        let delta = &upper[0].as_ref()[..p * sizes[l + 1]];
        let a_in = &acts[l - 1].as_ref()[..p * sizes[l]];
        let delta_in = &mut lower[l - 1].as_mut()[..p * sizes[l]];
        unsafe { backprop_delta::<T, V>(weights[l - 1].values(), delta, a_in, delta_in, sizes[l]) };
    }
}

/// The updates of the deeper layers from a whole mini-batch's activations
/// and deltas (`deeper_backward`'s), each weight's terms in the samples' order:
/// of Wᵀ by the tiles' update, then of W's rows from it.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn update_deeper<T: Lane, V: Vector<Elem = T>, A: AsRef<[T]>, D: AsRef<[T]>>(
    sizes: &[usize],
    weights: &mut [Matrix<T>],
    biases: &mut [Vec<T>],
    deeper: &mut Deeper<T>,
    acts: &[A],
    deltas: &[D],
    ids: &[usize],
) {
    let p = ids.len();
    for l in (1..sizes.len() - 1).rev() {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let delta = &deltas[l].as_ref()[..p * n_out];
        let input = Rows { data: &acts[l - 1].as_ref()[..p * n_in], width: n_in, ids };
        let (wt, len, stride) = &mut deeper.transposed[l - 1];
        let (wt, stride) = (wt.values_mut(*len), *stride);
        let minus = &mut deeper.minus[..p * stride];
        minus_padded(delta, n_out, stride, minus);
        unsafe { update_range::<V>(wt, stride, input, minus, 0..n_in) };
        update_bias(&mut biases[l - 1], delta);
        transpose_back(wt, stride, weights[l - 1].values_mut(), n_out, n_in);
    }
}

/// act = sigmoid(W x_i + b) for the rows x_i of `input` from Wᵀ (n_in,
/// stride), as the tiles' forward pass: each sum over the inputs in order,
/// then b. act is (p, n_out); `sums` holds a sweep's (SWEEP, stride).
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn forward_transposed<T: Lane, V: Vector<Elem = T>>(
    wt: &[T],
    stride: usize,
    b: &[T],
    input: Rows<T>,
    act: &mut [T],
    sums: &mut [T],
) {
    let n_out = b.len();
    for i in (0..act.len() / n_out).step_by(SWEEP) {
        unsafe { forward_range::<V>(wt, stride, input, i, 0..input.width, sums, None) };
        for q in 0..SWEEP {
            let (out, z) = (&mut act[(i + q) * n_out..][..n_out], &sums[q * stride..][..n_out]);
            out.iter_mut().zip(z).zip(b).for_each(|((a, &z), &b)| *a = z + b);
        }
    }
    sigmoid_in_place::<V>(act);
}

/// act = sigmoid(W x_i + b) for the rows x_i of `input`; act is (p, n_out):
/// the sweep's first layer.
#[inline(always)]
unsafe fn forward<T: Lane, V: Vector<Elem = T>>(w: &[T], b: &[T], input: Rows<T>, act: &mut [T], head: usize) {
    let (n_in, n_out) = (input.width, b.len());
    for i in (0..act.len() / n_out).step_by(SWEEP) {
        let x = input.sweep(i);
        let (hi, lo) = (x.map(|r| &r[head..]), x.map(|r| &r[..head]));
        // two weight rows at a time share the loads of x; an odd last row alone
        let mut j = 0;
        while j + 1 < n_out {
            let (w0, w1) = (&w[j * n_in..][..n_in], &w[(j + 1) * n_in..][..n_in]);
            let (s, t) = unsafe {
                (products::dot5x2::<V>(&w0[head..], &w1[head..], hi),
                 products::dot5x2::<V>(&w0[..head], &w1[..head], lo))
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
            let (s, t) = unsafe { (products::dot5::<V>(&wj[head..], hi), products::dot5::<V>(&wj[..head], lo)) };
            for q in 0..SWEEP {
                act[(i + q) * n_out + j] = s[q] + t[q] + b[j];
            }
        }
    }
    sigmoid_in_place::<V>(act);
}

/// W[j] -= sum_i delta[i, j] x_i and b[j] -= sum_i delta[i, j]; delta is (p,
/// n_out): the sweep's first layer.
#[inline(always)]
unsafe fn update<T: Lane, V: Vector<Elem = T>>(w: &mut [T], b: &mut [T], delta: &[T], input: Rows<T>, head: usize) {
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
                    products::sub_outer5x2::<V>(w0_hi, w1_hi, pair, hi);
                    products::sub_outer5x2::<V>(w0_lo, w1_lo, pair, lo);
                }
                b[j] -= pair[0].iter().fold(T::zero(), |a, &v| a + v);
                b[j + 1] -= pair[1].iter().fold(T::zero(), |a, &v| a + v);
            } else {
                let single = d(j);
                unsafe {
                    products::sub_outer5::<V>(w0_hi, single, hi);
                    products::sub_outer5::<V>(w0_lo, single, lo);
                }
                b[j] -= single.iter().fold(T::zero(), |a, &v| a + v);
            }
        }
    }
}

/// delta_in = (delta W) * a (1 - a): BP2, with sigma'(z) from the activation a.
///
/// Per sweep of five samples, a tile of the five rows of delta_in by up to
/// `tile_vectors` vectors of them stays in registers while the rows of W
/// pass, each taking its terms in the order of W's rows. Accumulated in
/// memory instead, as it once was, every row of W read and wrote the
/// tile again, and the masked stores of each row's tail, which the next
/// row's loads wait on, made this a quarter of the layers after the first at
/// [784, 30, 10] (1,150 of 4,350 time-stamp-counter cycles a mini-batch on a
/// 2-core Xeon; 300 so).
#[inline(always)]
unsafe fn backprop_delta<T: Lane, V: Vector<Elem = T>>(
    w: &[T],
    delta: &[T],
    a: &[T],
    delta_in: &mut [T],
    n_in: usize,
) {
    let p = a.len() / n_in;
    let n_out = delta.len() / p;
    assert!(w.len() >= n_out * n_in && delta_in.len() >= p * n_in && p.is_multiple_of(SWEEP));
    let (vectors, most) = (n_in.div_ceil(V::LANES), tile_vectors::<V>());
    for i in (0..p).step_by(SWEEP) {
        let mut first = 0;
        while first < vectors {
            let nb = (vectors - first).min(most);
            let at = (i, first * V::LANES);
            // SAFETY: the assert above keeps every load and store inside w, delta and delta_in.
            unsafe {
                match nb {
                    4 => backprop_tile::<V, 4>(w, delta, n_out, n_in, at, delta_in),
                    3 => backprop_tile::<V, 3>(w, delta, n_out, n_in, at, delta_in),
                    2 => backprop_tile::<V, 2>(w, delta, n_out, n_in, at, delta_in),
                    _ => backprop_tile::<V, 1>(w, delta, n_out, n_in, at, delta_in),
                }
            }
            first += nb;
        }
    }
    for (v, &a) in delta_in[..p * n_in].iter_mut().zip(a) {
        *v *= a * (T::one() - a);
    }
}

/// Rows i..i + SWEEP of delta W, in the `NB` vectors from column k; only
/// the last vector of a row may be short of whole lanes.
#[inline(always)]
unsafe fn backprop_tile<V: Vector, const NB: usize>(
    w: &[V::Elem],
    delta: &[V::Elem],
    n_out: usize,
    n_in: usize,
    (i, k): (usize, usize),
    out: &mut [V::Elem],
) {
    let zero = unsafe { V::splat(V::Elem::zero()) };
    let mut acc = [[zero; NB]; SWEEP];
    let tail = (n_in - k - (NB - 1) * V::LANES).min(V::LANES);
    let lanes = |v: usize| if v + 1 < NB { V::LANES } else { tail };
    for j in 0..n_out {
        unsafe {
            let row = w.as_ptr().add(j * n_in + k);
            let wv: [V; NB] = std::array::from_fn(|v| V::load_n(row.add(v * V::LANES), lanes(v)));
            for (q, tile) in acc.iter_mut().enumerate() {
                let d = V::splat(*delta.get_unchecked((i + q) * n_out + j));
                for v in 0..NB {
                    tile[v] = V::mul_add(d, wv[v], tile[v]);
                }
            }
        }
    }
    for (q, tile) in acc.iter().enumerate() {
        for (v, a) in tile.iter().enumerate() {
            unsafe { a.store_n(out.as_mut_ptr().add((i + q) * n_in + k + v * V::LANES), lanes(v)) };
        }
    }
}

/// delta = (a - e_y) a (1 - a) * scale for the m real samples, 0 for padding:
/// the quadratic cost's output error (BP1) times eta/m. Inlined, so that it
/// is vector code wherever its caller is.
#[inline(always)]
pub(crate) fn output_error<T: Real>(a: &[T], labels: &[i64], rows: &[usize], m: usize, scale: T, delta: &mut [T]) {
    let n_out = a.len() / rows.len();
    assert!(delta.len() >= a.len());
    for (i, (a_i, d_i)) in a.chunks_exact(n_out).zip(delta.chunks_exact_mut(n_out)).enumerate() {
        if i >= m {
            d_i.fill(T::zero());
            continue;
        }
        let label = labels[rows[i]] as usize;
        for (j, (d, &v)) in d_i.iter_mut().zip(a_i).enumerate() {
            let target = if j == label { T::one() } else { T::zero() };
            *d = (v - target) * (v * (T::one() - v)) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::isa::Isa;
    use crate::kernels::vector::Scalar;
    #[cfg(target_arch = "x86_64")]
    use crate::kernels::vector::{F32x16, F32x8, F64x4, F64x8};

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    /// BP2 as a plain loop: each element's terms in the order of W's rows,
    /// each term rounded as `fma` rounds it.
    fn plain<T: Real>(w: &[T], delta: &[T], a: &[T], n_in: usize, fma: impl Fn(T, T, T) -> T) -> Vec<T> {
        let p = a.len() / n_in;
        let n_out = delta.len() / p;
        let mut out = vec![T::zero(); p * n_in];
        for i in 0..p {
            for k in 0..n_in {
                let s = (0..n_out).fold(T::zero(), |s, j| fma(delta[i * n_out + j], w[j * n_in + k], s));
                let v = a[i * n_in + k];
                out[i * n_in + k] = s * (v * (T::one() - v));
            }
        }
        out
    }

    fn tiled<V: Vector>(w: &[V::Elem], delta: &[V::Elem], a: &[V::Elem], n_in: usize) -> Vec<V::Elem>
    where
        V::Elem: Lane,
    {
        // NaN everywhere, and past the rows: every element must be written, none beyond.
        let mut out = vec![V::Elem::of(f64::NAN); a.len() + 17];
        unsafe { backprop_delta::<V::Elem, V>(w, delta, a, &mut out, n_in) };
        assert!(out[a.len()..].iter().all(|v| num_traits::Float::is_nan(*v)), "a store beyond the rows");
        out.truncate(a.len());
        out
    }

    #[test]
    fn backprop_takes_the_terms_in_the_order_of_the_rows_of_w() {
        // n_in from under one vector to 13 of AVX-512's f64: tiles of 1 to 4 vectors, whole or with a tail
        let shapes = [(1, 3, 5), (7, 2, 5), (8, 10, 10), (30, 10, 10), (37, 4, 15), (45, 3, 5), (50, 3, 5), (100, 10, 5)];
        for (n_in, n_out, p) in shapes {
            let w = values(n_out * n_in, 1 + n_in as u64);
            let delta = values(p * n_out, 2 + n_out as u64);
            let a: Vec<f64> = values(p * n_in, 3).iter().map(|v| v + 0.5).collect();
            let unfused = plain(&w, &delta, &a, n_in, |x, y, z| x * y + z);
            assert_eq!(tiled::<Scalar<f64>>(&w, &delta, &a, n_in), unfused, "n_in {n_in}");
            #[cfg(target_arch = "x86_64")]
            {
                let fused = plain(&w, &delta, &a, n_in, f64::mul_add);
                let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                let (w32, delta32, a32) = (f(&w), f(&delta), f(&a));
                let fused32 = plain(&w32, &delta32, &a32, n_in, f32::mul_add);
                if Isa::Avx2Fma.supported() {
                    assert_eq!(tiled::<F64x4>(&w, &delta, &a, n_in), fused, "n_in {n_in}");
                    assert_eq!(tiled::<F32x8>(&w32, &delta32, &a32, n_in), fused32, "n_in {n_in}");
                }
                if Isa::Avx512.supported() {
                    assert_eq!(tiled::<F64x8>(&w, &delta, &a, n_in), fused, "n_in {n_in}");
                    assert_eq!(tiled::<F32x16>(&w32, &delta32, &a32, n_in), fused32, "n_in {n_in}");
                }
            }
        }
    }

    /// A layer's weights and biases after an update.
    type Updated<T> = (Vec<T>, Vec<T>);

    /// One update of a layer (n_in -> n_out) from p samples both ways: the
    /// sweep's `update` on W's rows, and `update_deeper` on Wᵀ then back.
    fn both_updates<V: Vector>(n_in: usize, n_out: usize, p: usize) -> [Updated<V::Elem>; 2]
    where
        V::Elem: Lane,
    {
        let of = |v: Vec<f64>| v.into_iter().map(V::Elem::of).collect::<Vec<_>>();
        let (w, b) = (of(values(n_out * n_in, 5)), of(values(n_out, 6)));
        let (a, delta) = (of(values(p * n_in, 7)), of(values(p * n_out, 8)));
        let ids: Vec<usize> = (0..p).collect();
        let input = Rows { data: &a, width: n_in, ids: &ids };
        let (mut rows_w, mut rows_b) = (w.clone(), b.clone());
        unsafe { update::<V::Elem, V>(&mut rows_w, &mut rows_b, &delta, input, 0) };
        let mut weights = vec![Matrix::new(ndarray::ArrayView2::from_shape((n_out, n_in), &w).unwrap())];
        let mut biases = vec![b];
        let mut deeper = Deeper::new::<V>(&weights, p);
        let (acts, deltas) = (vec![a.clone()], vec![vec![], delta]);
        let sizes = [0, n_in, n_out];
        unsafe { update_deeper::<V::Elem, V, _, _>(&sizes, &mut weights, &mut biases, &mut deeper, &acts, &deltas, &ids) };
        [(rows_w, rows_b), (weights[0].values().to_vec(), biases.remove(0))]
    }

    #[test]
    fn the_update_over_w_transposed_gives_the_row_updates_bits() {
        // widths under, at and past whole vectors; batches past UPDATE_CHUNK; inputs not whole sweeps
        for (n_in, n_out, p) in [(30, 10, 10), (13, 17, 5), (30, 20, 70), (7, 3, 15), (100, 10, 130)] {
            let [rows, transposed] = both_updates::<Scalar<f64>>(n_in, n_out, p);
            assert!(rows == transposed, "scalar, {n_in} -> {n_out}, p {p}");
            #[cfg(target_arch = "x86_64")]
            {
                if Isa::Avx2Fma.supported() {
                    let [rows, transposed] = both_updates::<F64x4>(n_in, n_out, p);
                    assert!(rows == transposed, "avx2 f64, {n_in} -> {n_out}, p {p}");
                    let [rows, transposed] = both_updates::<F32x8>(n_in, n_out, p);
                    assert!(rows == transposed, "avx2 f32, {n_in} -> {n_out}, p {p}");
                }
                if Isa::Avx512.supported() {
                    let [rows, transposed] = both_updates::<F64x8>(n_in, n_out, p);
                    assert!(rows == transposed, "avx512 f64, {n_in} -> {n_out}, p {p}");
                    let [rows, transposed] = both_updates::<F32x16>(n_in, n_out, p);
                    assert!(rows == transposed, "avx512 f32, {n_in} -> {n_out}, p {p}");
                }
            }
        }
    }

    #[test]
    fn the_bias_takes_each_sweep_summed_in_order() {
        for n_out in [1, 10, 30, 64, 65, 130] {
            let delta = values(2 * SWEEP * n_out, n_out as u64);
            let start = values(n_out, 99);
            let mut b = start.clone();
            update_bias(&mut b, &delta);
            for j in 0..n_out {
                let mut want = start[j];
                for sweep in 0..2 {
                    want -= (0..SWEEP).fold(0.0, |s, q| s + delta[(sweep * SWEEP + q) * n_out + j]);
                }
                assert_eq!(b[j], want, "n_out {n_out}, unit {j}");
            }
        }
    }
}
