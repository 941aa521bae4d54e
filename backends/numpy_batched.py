"""The mini-batch as a 3D stack of column vectors, multiplied against 2D weights.

This is the book's exercise done the way it reads: stack the mini-batch's m
column vectors into an (m, n, 1) array and let ``np.matmul`` broadcast each
layer's (n_out, n_in) weights over it. It removes the Python loop over samples
but not the per-sample work: matmul runs m tiny matrix-vector products, and the
weight gradient materialises all m outer products, (m, n_out, n_in), before
summing them. ``numpy-gemm`` shows what the same batch costs as one 2D product.
"""

from __future__ import annotations

import numpy as np

from backends.base import Params, mini_batches, predict_labels, sigmoid


class NumpyBatched:
    name = "numpy-batched"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        p = params.astype(self.dtype)
        self.weights = list(p.weights)
        self.biases = list(p.biases)
        self._targets = np.eye(p.sizes[-1], dtype=self.dtype)[:, :, None]  # (n_out, n_out, 1)

    def train_epoch(self, X, y, order, batch_size, eta):
        with np.errstate(over="ignore"):
            for batch in mini_batches(order, batch_size):
                self._update_mini_batch(X[batch][:, :, None], self._targets[y[batch]], eta)

    def _update_mini_batch(self, x, target, eta):
        """x: (m, n_in, 1) inputs; target: (m, n_out, 1) one-hot columns."""
        activations = [x]
        for w, b in zip(self.weights, self.biases):
            activations.append(sigmoid(np.matmul(w, activations[-1]) + b))  # (m, n_out, 1)
        a = activations[-1]
        delta = (a - target) * (a * (1 - a))
        scale = eta / len(x)
        for layer in range(len(self.weights) - 1, -1, -1):
            a_in = activations[layer]
            nabla_b = delta.sum(axis=0)  # (n_out, 1)
            # All m outer products, (m, n_out, n_in), then their sum.
            nabla_w = np.matmul(delta, a_in.transpose(0, 2, 1)).sum(axis=0)
            if layer:
                delta = np.matmul(self.weights[layer].T, delta) * (a_in * (1 - a_in))
            self.weights[layer] -= scale * nabla_w
            self.biases[layer] -= scale * nabla_b

    def predict(self, X):
        return predict_labels(self.params(), X)

    def params(self) -> Params:
        return Params(tuple(self.weights), tuple(self.biases))
