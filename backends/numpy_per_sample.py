"""Per-sample backprop, the book's structure without its needless allocation.

One sample at a time, as column vectors, exactly the arithmetic of the book's
``backprop`` and ``update_mini_batch``. The differences are only where results
live: the gradient sums are accumulated in place in buffers made once, the
weights are updated in place, and sigmoid'(z) is taken from the activation
already computed (sigmoid(z) * (1 - sigmoid(z)) gives the same bits as the
book's second call). This is the baseline every other backend is measured
against.
"""

from __future__ import annotations

import numpy as np

from backends.base import Params, mini_batches, predict_labels, sigmoid


class NumpyPerSample:
    name = "numpy-per-sample"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        p = params.astype(self.dtype)
        self.weights = list(p.weights)
        self.biases = list(p.biases)
        self._nabla_w = [np.zeros_like(w) for w in self.weights]
        self._nabla_b = [np.zeros_like(b) for b in self.biases]
        self._targets = list(np.eye(p.sizes[-1], dtype=self.dtype)[:, :, None])

    def train_epoch(self, X, y, order, batch_size, eta):
        with np.errstate(over="ignore"):  # exp(-z) overflowing to inf gives sigmoid 0, as intended
            for batch in mini_batches(order, batch_size):
                self._update_mini_batch(X, y, batch, eta)

    def _update_mini_batch(self, X, y, batch, eta):
        for nabla in self._nabla_w + self._nabla_b:
            nabla.fill(0)
        for i in batch:
            self._backprop(X[i].reshape(-1, 1), self._targets[y[i]])
        scale = eta / len(batch)
        for w, nw in zip(self.weights, self._nabla_w):
            nw *= scale
            w -= nw
        for b, nb in zip(self.biases, self._nabla_b):
            nb *= scale
            b -= nb

    def _backprop(self, x, target):
        """Add this sample's nabla_b, nabla_w (quadratic cost) to the buffers."""
        activations = [x]
        for w, b in zip(self.weights, self.biases):
            z = np.dot(w, activations[-1])
            z += b
            activations.append(sigmoid(z))
        a = activations[-1]
        delta = (a - target) * (a * (1 - a))
        for layer in range(len(self.weights) - 1, -1, -1):
            self._nabla_b[layer] += delta
            # np.dot, not @: matmul's outer product (k = 1) skips BLAS and is 4x slower.
            self._nabla_w[layer] += np.dot(delta, activations[layer].T)
            if layer:
                a = activations[layer]
                delta = np.dot(self.weights[layer].T, delta) * (a * (1 - a))

    def predict(self, X):
        return predict_labels(self.params(), X)

    def params(self) -> Params:
        return Params(tuple(self.weights), tuple(self.biases))
