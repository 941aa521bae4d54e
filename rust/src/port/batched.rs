//! The port's final form: each mini-batch as one matrix whose columns are its
//! samples, so that every layer is one GEMM, (n_out, n_in) x (n_in, m), and the
//! weight gradient is one more, delta (n_out, m) x A^T (m, n_in), summing the
//! batch's outer products inside BLAS. Written as a port would be: each step
//! returns a fresh array, the update goes through `mapv`.

use ndarray::{Array2, Axis};

use super::network::Network;
use crate::data::Epoch;
use crate::real::{sigmoid, sigmoid_prime, Real};

pub fn train_epoch<T: Real>(net: &mut Network<T>, data: &Epoch<T>, batch_size: usize, eta: f64) {
    for mini_batch in data.order.chunks(batch_size) {
        update_mini_batch(net, data, mini_batch, T::of(eta));
    }
}

pub fn update_mini_batch<T: Real>(net: &mut Network<T>, data: &Epoch<T>, batch: &[i64], eta: T) {
    let rows: Vec<usize> = batch.iter().map(|&i| i as usize).collect();
    // (n_in, m): the batch's samples as columns
    let x: Array2<T> = data.x.select(Axis(0), &rows).reversed_axes();
    let mut targets = Array2::zeros((*net.sizes.last().unwrap_or(&1), rows.len()));
    for (column, &i) in rows.iter().enumerate() {
        targets[[data.labels[i] as usize, column]] = T::one();
    }
    let (nabla_b, nabla_w) = backprop(net, x, &targets);
    net.apply(&nabla_b, &nabla_w, rows.len(), eta);
}

/// The gradients summed over the batch: backprop with (n, m) matrices for (n, 1) vectors.
pub fn backprop<T: Real>(
    net: &Network<T>,
    x: Array2<T>,
    targets: &Array2<T>,
) -> (Vec<Array2<T>>, Vec<Array2<T>>) {
    let layers = net.weights.len();
    let mut nabla_b = Vec::with_capacity(layers);
    let mut nabla_w = Vec::with_capacity(layers);
    let mut activations = vec![x];
    let mut zs: Vec<Array2<T>> = Vec::new();
    for (b, w) in net.biases.iter().zip(net.weights.iter()) {
        let z = w.dot(&activations[activations.len() - 1]) + b; // b (n, 1) broadcasts over columns
        activations.push(z.mapv(sigmoid));
        zs.push(z);
    }
    let mut delta = (&activations[layers] - targets) * zs[layers - 1].mapv(sigmoid_prime);
    for layer in (0..layers).rev() {
        nabla_b.push(delta.sum_axis(Axis(1)).insert_axis(Axis(1)));
        nabla_w.push(delta.dot(&activations[layer].t()));
        if layer > 0 {
            delta = net.weights[layer].t().dot(&delta) * zs[layer - 1].mapv(sigmoid_prime);
        }
    }
    nabla_b.reverse();
    nabla_w.reverse();
    (nabla_b, nabla_w)
}
