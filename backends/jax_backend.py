"""The whole epoch as one compiled XLA program: ``jax.lax.scan`` over mini-batches.

The step is the book's: ``jax.grad`` of the quadratic cost of a mini-batch,
(1/m) sum_x 0.5 ||a_x - y_x||^2, gives nabla_w / m, and every parameter moves by
``-eta`` times it. ``scan`` carries the parameters through the full mini-batches
of the epoch inside one compiled program, so Python is not involved between
steps; a short last batch has a shape of its own and runs as one more compiled
step after the scan.

Programs are compiled ahead of time for each new shape (the first epoch, which
the harness does not time), and ``compile_seconds`` adds up how long that took.
The training data live on the device once per pair of arrays; only the shuffle
order is sent every epoch.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from backends.base import Params

# Without x64 mode JAX silently turns every float64 array into float32. The
# switch is global and must be on before the first array is made, so it is set
# here, at import, before anything below creates one.
jax.config.update("jax_enable_x64", True)

_CPU = jax.devices("cpu")[0]


def _feedforward(params, x):
    """Output activations of the rows of ``x``; ``params`` is [(w, b)], w (n_out, n_in)."""
    a = x
    for w, b in params:
        a = jax.nn.sigmoid(a @ w.T + b)
    return a


def _cost(params, x, t):
    """The book's quadratic cost averaged over the mini-batch (not over outputs)."""
    return 0.5 * jnp.sum((_feedforward(params, x) - t) ** 2) / x.shape[0]


def _step(params, x, t, eta):
    nabla = jax.grad(_cost)(params, x, t)
    return jax.tree.map(lambda p, g: p - eta * g, params, nabla)


@jax.jit
def _epoch(params, X, T, batches, eta):
    """SGD over every row of ``batches`` (n_batches, B), each a mini-batch of indices."""

    def update_mini_batch(params, batch):
        return _step(params, X[batch], T[batch], eta), None

    params, _ = jax.lax.scan(update_mini_batch, params, batches)
    return params


@jax.jit
def _last_batch(params, X, T, batch, eta):
    return _step(params, X[batch], T[batch], eta)


@jax.jit
def _predict(params, X):
    return jnp.argmax(_feedforward(params, X), axis=1)


def xla_cpu_threads() -> int:
    """The threads XLA's CPU client runs compiled programs on: one with
    ``--xla_cpu_multi_thread_eigen=false`` in $XLA_FLAGS, else one per core this
    process may run on (the size of its Eigen pool)."""
    if "--xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", "").lower():
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class JaxTrainer:
    name = "jax"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        # XLA sizes its CPU thread pool when it starts; ``threads`` cannot change it
        # here, so the count recorded is the pool's.
        self.dtype = np.dtype(dtype)
        self.threads = xla_cpu_threads()
        p = params.astype(self.dtype)
        layers = zip(p.weights, p.biases, strict=True)
        self._params = jax.device_put([(w, b.ravel()) for w, b in layers], _CPU)
        self.n_out = p.sizes[-1]
        self.compile_seconds = 0.0
        self._compiled: dict[tuple, jax.stages.Compiled] = {}
        self._data: tuple[np.ndarray, np.ndarray, jax.Array, jax.Array] | None = None

    def _arrays(self, X: np.ndarray, y: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """The inputs and their one-hot targets on the device, made once per pair of arrays.

        The cache holds the arrays themselves, so their identity cannot be reused.
        """
        if self._data is None or self._data[0] is not X or self._data[1] is not y:
            inputs = jax.device_put(np.ascontiguousarray(X, dtype=self.dtype), _CPU)
            targets = jax.device_put(np.eye(self.n_out, dtype=self.dtype)[y], _CPU)
            self._data = (X, y, inputs, targets)
        return self._data[2], self._data[3]

    def _run(self, fn, *args):
        """``fn(*args)`` through a program compiled once for these shapes, timing the compile."""
        key = (fn, *((a.shape, a.dtype) for a in jax.tree.leaves(args)))
        if key not in self._compiled:
            start = time.perf_counter()
            self._compiled[key] = fn.lower(*args).compile()
            self.compile_seconds += time.perf_counter() - start
        return self._compiled[key](*args)

    def train_epoch(self, X, y, order, batch_size, eta):
        inputs, targets = self._arrays(X, y)
        eta = jax.device_put(np.asarray(eta, dtype=self.dtype), _CPU)
        order = np.asarray(order)
        n_full = len(order) // batch_size * batch_size
        params = self._params
        if n_full:
            batches = jax.device_put(order[:n_full].reshape(-1, batch_size), _CPU)
            params = self._run(_epoch, params, inputs, targets, batches, eta)
        if n_full < len(order):
            batch = jax.device_put(order[n_full:], _CPU)
            params = self._run(_last_batch, params, inputs, targets, batch, eta)
        self._params = jax.block_until_ready(params)

    def predict(self, X):
        X = jax.device_put(np.ascontiguousarray(X, dtype=self.dtype), _CPU)
        return np.asarray(_predict(self._params, X))

    def params(self) -> Params:
        return Params(
            tuple(np.array(w) for w, _ in self._params),
            tuple(np.array(b).reshape(-1, 1) for _, b in self._params),
        )
