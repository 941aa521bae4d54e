//! The sweep: each layer's products as five samples per sweep over two weight
//! rows at a time (`products`), so each weight loaded feeds five multiply-adds
//! and each input two, the five input rows stay in L1 and the weights stream
//! from L2. Batches are padded to whole sweeps with copies of their last
//! sample whose delta is zero, so they add exactly nothing. The first layer's
//! weights sit at the same offset from a 64-byte boundary as the rows of X and
//! each sweep does the elements before the first boundary apart (`head`), so
//! that the wide loads of both never straddle two cache lines.
//!
//! The layers after the first run this way under every kernel
//! (`after_first_layer`): the tiles and the team share it.

pub mod products;

use super::layout::{pad_rows, Buffers, Matrix, Rows, State, SWEEP};
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
pub(crate) unsafe fn after_first_layer<T: Lane, V: Vector<Elem = T>>(
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
pub(crate) unsafe fn forward<T: Lane, V: Vector<Elem = T>>(w: &[T], b: &[T], input: Rows<T>, act: &mut [T], head: usize) {
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
    sigmoid_in_place(act);
}

/// W[j] -= sum_i delta[i, j] x_i and b[j] -= sum_i delta[i, j]; delta is (p, n_out).
#[inline(always)]
pub(crate) unsafe fn update<T: Lane, V: Vector<Elem = T>>(w: &mut [T], b: &mut [T], delta: &[T], input: Rows<T>, head: usize) {
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
    for i in (0..p).step_by(SWEEP) {
        let block = &mut delta_in[i * n_in..(i + SWEEP) * n_in];
        block.fill(T::zero());
        let mut parts = block.chunks_exact_mut(n_in);
        let mut out: [&mut [T]; SWEEP] =
            std::array::from_fn(|_| parts.next().expect("a sweep of rows"));
        for j in 0..n_out {
            let d: [T; SWEEP] = std::array::from_fn(|q| delta[(i + q) * n_out + j]);
            unsafe { products::add_outer5::<V>(&w[j * n_in..][..n_in], d, &mut out) };
        }
    }
    for (v, &a) in delta_in.iter_mut().zip(a) {
        *v *= a * (T::one() - a);
    }
}

/// delta = (a - e_y) a (1 - a) * scale for the m real samples, 0 for padding:
/// the quadratic cost's output error (BP1) times eta/m.
pub(crate) fn output_error<T: Real>(a: &[T], labels: &[i64], rows: &[usize], m: usize, scale: T, delta: &mut [T]) {
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
