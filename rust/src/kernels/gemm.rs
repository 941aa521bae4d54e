//! The GEMM kernel: the batch's rows gathered into one matrix and every
//! product one BLAS GEMM into buffers made before the epoch (`W -= delta^T A`
//! straight into the weights, with beta = 1). Whether a tuned GEMM beats the
//! sweep depends on the batch and on the kernels the linked OpenBLAS picked for
//! the CPU, so the Python side times the three (`backends/rust_fused.py`).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::layout::{Buffers, State};
use super::sweep::output_error;
use super::vector::{sigmoid_in_place, Lane, Scalar};
use crate::data::Epoch;

fn view<T>(data: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("buffer sized for the batch")
}

fn view_mut<T>(data: &mut [T], rows: usize, cols: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols]).expect("buffer sized for the batch")
}

/// The epoch with every product a BLAS GEMM on the gathered batch.
pub(crate) fn train_epoch<T: Lane>(s: &mut State<T>, data: &Epoch<T>, batch_size: usize, eta: f64) {
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
            sigmoid_in_place::<Scalar<T>>(&mut here[0][..m * sizes[l + 1]]);
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
