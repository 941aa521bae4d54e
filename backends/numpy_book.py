"""The book's ``network.py`` algorithm as published, in Python 3.

This is the reference point of the original experiment: per-sample backprop
with new arrays for every intermediate, list comprehensions to accumulate the
gradients, and a fresh weight list after each mini-batch. Only ``xrange`` and
the data plumbing change; the arithmetic is the book's line for line.
"""

from __future__ import annotations

import numpy as np

from backends.base import Params, mini_batches, predict_labels, sigmoid, sigmoid_prime


class NumpyBook:
    name = "numpy-book"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        p = params.astype(self.dtype)
        self.num_layers = len(p.sizes)
        self.weights = list(p.weights)
        self.biases = list(p.biases)
        # The book's load_data_wrapper turns labels into one-hot column vectors.
        self._targets = list(np.eye(p.sizes[-1], dtype=self.dtype)[:, :, None])

    def train_epoch(self, X, y, order, batch_size, eta):
        for batch in mini_batches(order, batch_size):
            mini_batch = [(X[i].reshape(-1, 1), self._targets[y[i]]) for i in batch]
            self.update_mini_batch(mini_batch, eta)

    def update_mini_batch(self, mini_batch, eta):
        nabla_b = [np.zeros(b.shape, self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, self.dtype) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        self.weights = [w - (eta / len(mini_batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(mini_batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape, self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, self.dtype) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for layer in range(2, self.num_layers):
            z = zs[-layer]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sp
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return (nabla_b, nabla_w)

    def predict(self, X):
        return predict_labels(self.params(), X)

    def params(self) -> Params:
        return Params(tuple(self.weights), tuple(self.biases))
