//! The port of `network.py` as the original experiment wrote it: a `Network` of
//! `Vec<Array2>` weights and column-vector biases, per-sample backprop with
//! `dot` on column vectors, the gradients summed with `+=` over the mini-batch
//! and applied through `mapv(|x| x * eta / nbatch)`, allocating where that code
//! allocates. It is the Rust baseline and is deliberately left as ported; the
//! only changes are what the harness needs: any number of layers, targets of any
//! width, every mini-batch of the harness's shuffle order including a short last one.

use ndarray::{Array2, ArrayView1, Axis};

use crate::data::{check_layers, Epoch};
use crate::real::{sigmoid, sigmoid_prime, Real};

#[derive(Debug, Clone)]
pub struct Network<T> {
    pub num_layers: usize,
    pub sizes: Vec<usize>,
    pub biases: Vec<Array2<T>>,
    pub weights: Vec<Array2<T>>,
}

/// One sample's (nabla_b, nabla_w), layer by layer.
pub type Gradients<T> = (Vec<Array2<T>>, Vec<Array2<T>>);

/// Zeros shaped like each array, as `np.zeros(b.shape) for b in self.biases`.
pub fn zero_vec_like<T: Real>(inp: &[Array2<T>]) -> Vec<Array2<T>> {
    inp.iter().map(|x| Array2::zeros(x.raw_dim())).collect()
}

impl<T: Real> Network<T> {
    /// A network from the book's layout: `weights[l]` (n_out, n_in), `biases[l]` (n_out, 1).
    pub fn new(weights: Vec<Array2<T>>, biases: Vec<Array2<T>>) -> Result<Self, String> {
        let sizes = check_layers(&weights, &biases)?;
        Ok(Network { num_layers: sizes.len(), sizes, biases, weights })
    }

    pub fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        for mini_batch in data.order.chunks(batch_size) {
            self.update_mini_batch(data, mini_batch, T::of(eta));
        }
    }

    /// Gradient descent on one mini-batch: the post's `update_mini_batch`.
    pub fn update_mini_batch(&mut self, data: &Epoch<T>, mini_batch_indices: &[i64], eta: T) {
        let mut nabla_b: Vec<Array2<T>> = zero_vec_like(&self.biases);
        let mut nabla_w: Vec<Array2<T>> = zero_vec_like(&self.weights);
        for i in mini_batch_indices {
            let (x, label) = data.sample(*i);
            let (delta_nabla_b, delta_nabla_w) = self.backprop(x, label);
            for (nb, dnb) in nabla_b.iter_mut().zip(delta_nabla_b.iter()) {
                *nb += dnb;
            }
            for (nw, dnw) in nabla_w.iter_mut().zip(delta_nabla_w.iter()) {
                *nw += dnw;
            }
        }
        self.apply(&nabla_b, &nabla_w, mini_batch_indices.len(), eta);
    }

    /// w -= eta/nbatch nabla_w, b -= eta/nbatch nabla_b, through `mapv` as the post does.
    pub fn apply(&mut self, nabla_b: &[Array2<T>], nabla_w: &[Array2<T>], n: usize, eta: T) {
        let nbatch = T::of(n as f64);
        for (w, nw) in self.weights.iter_mut().zip(nabla_w.iter()) {
            *w -= &nw.mapv(|x| x * eta / nbatch);
        }
        for (b, nb) in self.biases.iter_mut().zip(nabla_b.iter()) {
            *b -= &nb.mapv(|x| x * eta / nbatch);
        }
    }

    /// (nabla_b, nabla_w) of the quadratic cost for one sample: `network.py`'s backprop.
    pub fn backprop(&self, x: ArrayView1<T>, label: usize) -> Gradients<T> {
        let mut nabla_b: Vec<Array2<T>> = zero_vec_like(&self.biases);
        let mut nabla_w: Vec<Array2<T>> = zero_vec_like(&self.weights);
        // feedforward, keeping every z and activation; x as a column vector
        let mut activation: Array2<T> = x.to_owned().insert_axis(Axis(1));
        let mut activations = vec![activation.clone()];
        let mut zs: Vec<Array2<T>> = Vec::new();
        for (b, w) in self.biases.iter().zip(self.weights.iter()) {
            let z = w.dot(&activation) + b;
            zs.push(z.clone());
            activation = z.mapv(sigmoid);
            activations.push(activation.clone());
        }
        // backward pass
        let last = self.num_layers - 2;
        let mut delta = self.cost_derivative(&activations[last + 1], label)
            * zs[last].mapv(sigmoid_prime);
        nabla_b[last] = delta.clone();
        nabla_w[last] = delta.dot(&activations[last].t());
        for l in 2..self.num_layers {
            let layer = self.num_layers - 1 - l;
            let sp = zs[layer].mapv(sigmoid_prime);
            delta = self.weights[layer + 1].t().dot(&delta) * sp;
            nabla_b[layer] = delta.clone();
            nabla_w[layer] = delta.dot(&activations[layer].t());
        }
        (nabla_b, nabla_w)
    }

    /// dC/da of the quadratic cost: a - y, with y the one-hot column of `label`.
    fn cost_derivative(&self, output_activations: &Array2<T>, label: usize) -> Array2<T> {
        let mut y = Array2::zeros(output_activations.raw_dim());
        y[[label, 0]] = T::one();
        output_activations - &y
    }
}
