//! A trainer's inputs as the caller owns them, checked once before any training:
//! the layers' shapes, and each epoch's data.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::real::Real;

/// The training set viewed in place: X (n_samples, n_in) row-major, integer
/// labels, and the epoch's shuffle order. Mini-batch k is
/// `order[k*batch_size..(k+1)*batch_size]`, the last one possibly short.
#[derive(Debug)]
pub struct Epoch<'a, T> {
    pub x: ArrayView2<'a, T>,
    pub labels: &'a [i64],
    pub order: &'a [i64],
}

impl<'a, T: Real> Epoch<'a, T> {
    /// Checks everything the strategies index with, so that none of them can
    /// panic on a caller's value: shapes, label range, index range, batch size.
    pub fn new(
        x: ArrayView2<'a, T>,
        labels: &'a [i64],
        order: &'a [i64],
        sizes: &[usize],
        batch_size: usize,
    ) -> Result<Self, String> {
        let (n_samples, n_in) = x.dim();
        let n_out = *sizes.last().ok_or("the network has no layers")?;
        if n_in != sizes[0] {
            return Err(format!(
                "X has {n_in} columns but the network's input layer has {}", sizes[0]
            ));
        }
        if x.as_slice().is_none() {
            return Err("X must be C-contiguous: pass np.ascontiguousarray(X)".into());
        }
        if labels.len() != n_samples {
            return Err(format!("y has {} labels for {n_samples} rows of X", labels.len()));
        }
        if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= n_out) {
            return Err(format!("label {bad} is outside 0..{} (the output layer's width)", n_out));
        }
        if let Some(bad) = order.iter().find(|&&i| i < 0 || i as usize >= n_samples) {
            return Err(format!("order holds index {bad}, outside 0..{n_samples} (the rows of X)"));
        }
        if batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        Ok(Epoch { x, labels, order })
    }

    /// Sample i of the training set: its input row and its label.
    pub fn sample(&self, i: i64) -> (ArrayView1<'a, T>, usize) {
        (self.x.index_axis_move(Axis(0), i as usize), self.labels[i as usize] as usize)
    }

    /// The row-major data of X (contiguity checked in `new`).
    pub fn x_slice(&self) -> &'a [T] {
        self.x.to_slice().unwrap_or(&[])
    }
}

/// The layer widths, after checking that the shapes chain: (n_out, n_in) and (n_out, 1).
pub fn check_layers<T>(weights: &[Array2<T>], biases: &[Array2<T>]) -> Result<Vec<usize>, String> {
    if weights.is_empty() || weights.len() != biases.len() {
        return Err(format!(
            "{} weight matrices and {} bias vectors: need one of each per layer, at least one",
            weights.len(), biases.len()
        ));
    }
    let mut sizes = vec![weights[0].ncols()];
    for (l, (w, b)) in weights.iter().zip(biases).enumerate() {
        let (n_out, n_in) = w.dim();
        if n_in != sizes[l] || n_in == 0 || n_out == 0 {
            return Err(format!(
                "weights[{l}] is {n_out}x{n_in}; it must take the {} outputs of the layer below",
                sizes[l]
            ));
        }
        if b.dim() != (n_out, 1) {
            return Err(format!("biases[{l}] is {:?}; expected ({n_out}, 1)", b.dim()));
        }
        sizes.push(n_out);
    }
    Ok(sizes)
}
