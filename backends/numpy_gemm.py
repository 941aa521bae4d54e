"""The mini-batch as one 2D matrix: every layer is a single GEMM.

Samples are rows: the activations of a layer for an m-sample batch are an
(m, n) matrix, so the forward pass is ``Z = A @ W.T + b.T`` and the weight
gradient is ``delta.T @ A``, an (n_out, m) by (m, n_in) product that sums the m
outer products inside BLAS instead of materialising them. At batch 10 the
products are tiny and each NumPy call costs about as much as its arithmetic,
so intermediates live in buffers made once and the update's eta/m is folded
into the output delta (backprop is linear in delta) instead of being applied
to every gradient. (Carrying the bias as an extra weight column to save the
bias calls was measured slower: the odd leading dimension, 785, costs BLAS
more than the calls it saves.)

BLAS runs on one thread unless ``threads`` asks for more. OpenBLAS hands every
GEMM above about 0.26 M multiply-adds (batch 100 and up; batch 10 at width 100)
to all its threads in fixed shares and waits for the last share, and its idle
threads spin. These GEMMs last 0.05 to 3 ms, so whenever another process holds
a core (a shared machine, a CI runner) each call waits for a time slice: epochs
took 2 to 9 times as long as on one thread, while an idle machine gains 1.2 to
1.5x from the second thread (``threads=2`` asks for it). On one thread the epoch
is the two 784-wide GEMMs, near the kernel's peak, plus the gather of the
batch's rows (about 15% of it at width 30): memory traffic that every batch
size pays once per epoch.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from backends.base import Params, mini_batches, predict_labels


@cache
def _blas() -> ThreadpoolController:
    """Made once: finding the loaded BLAS libraries takes milliseconds."""
    return ThreadpoolController()


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) written into ``out``: the same bits, no temporaries."""
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


class NumpyGemm:
    name = "numpy-gemm"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        self.threads = threads or 1  # BLAS threads: see the module docstring
        p = params.astype(self.dtype)
        self.sizes = p.sizes
        self.weights = list(p.weights)
        self.biases = [b.ravel().copy() for b in p.biases]  # rows, to broadcast against (m, n_out)
        self._onehot = np.eye(p.sizes[-1], dtype=self.dtype)
        self._buffers: dict[int, tuple] = {}

    def _buffers_for(self, m: int) -> tuple:
        """Per batch size: the inputs, z (later delta) and activations of each layer."""
        if m not in self._buffers:
            x = np.empty((m, self.sizes[0]), self.dtype)
            zs = [np.empty((m, n), self.dtype) for n in self.sizes[1:]]
            acts = [np.empty((m, n), self.dtype) for n in self.sizes[1:]]
            nabla_ws = [np.empty_like(w) for w in self.weights]
            self._buffers[m] = (x, zs, acts, nabla_ws)
        return self._buffers[m]

    def train_epoch(self, X, y, order, batch_size, eta):
        # exp(-z) overflowing to inf gives sigmoid 0, as intended.
        with _blas().limit(limits=self.threads, user_api="blas"), np.errstate(over="ignore"):
            for batch in mini_batches(order, batch_size):
                self._update_mini_batch(X, y, batch, eta)

    def _update_mini_batch(self, X, y, batch, eta):
        m = len(batch)
        x, zs, acts, nabla_ws = self._buffers_for(m)
        # mode="clip": the batch is a slice of a permutation, always in range, and
        # the default "raise" makes take write a temporary and copy it into x.
        np.take(X, batch, axis=0, out=x, mode="clip")
        a = x
        for w, b, z, act in zip(self.weights, self.biases, zs, acts):
            np.matmul(a, w.T, out=z)  # (m, n_in) @ (n_in, n_out)
            z += b
            a = _sigmoid(z, out=act)
        # Output error of the quadratic cost, (a - y) * sigmoid'(z), in z's buffer,
        # scaled by eta/m so the gradients come out ready to subtract.
        delta = zs[-1]
        np.subtract(a, self._onehot[y[batch]], out=delta)
        delta *= a
        delta *= 1 - a
        delta *= eta / m
        for layer in range(len(self.weights) - 1, -1, -1):
            a_in = acts[layer - 1] if layer else x
            nabla_w = np.matmul(delta.T, a_in, out=nabla_ws[layer])  # (n_out, m) @ (m, n_in)
            nabla_b = delta.sum(axis=0)
            if layer:  # the next delta needs this layer's weights before their update
                prev = zs[layer - 1]
                np.matmul(delta, self.weights[layer], out=prev)  # (m, n_out) @ (n_out, n_in)
                prev *= a_in
                prev *= 1 - a_in
                delta = prev
            self.weights[layer] -= nabla_w
            self.biases[layer] -= nabla_b

    def predict(self, X):
        with _blas().limit(limits=self.threads, user_api="blas"):
            return predict_labels(self.params(), X)

    def params(self) -> Params:
        return Params(tuple(self.weights), tuple(b.reshape(-1, 1) for b in self.biases))
