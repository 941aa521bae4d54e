"""Numba with threads: numba's kernels, each layer's weight rows split among threads.

Hidden unit j owns row W[j] and bias b[j]: its forward sum, its sigmoid and
its update read the inputs but write nothing another unit reads. So threads
take contiguous blocks of units and need no reduction, and every unit's
arithmetic is the same whatever the thread count: results do not depend on it.

A parallel region (an OpenMP fork and join) costs about 1 microsecond on an
idle 2-core machine and several on a busy one, while the layer-1 forward pass
of [784, 30, 10] at batch 10 takes 8 on one core. So there is one region per
layer per mini-batch, not two: the update of a layer with the previous
mini-batch is deferred into the region that runs the layer's forward pass for
this one. That is the same arithmetic in the same order, since the forward
pass needs the updated weights and backprop needs them before this
mini-batch's update, which is exactly when they are read. The small layers,
the output error and backprop run on one thread: for [784, 30, 10] they take
about 1.3 microseconds a mini-batch, too little to share.

The kernels are cached under a hash of every file they are compiled from
(``backends.numba_cache``), so an edit of numba_fused.py alone recompiles them.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from backends.base import Params
from backends.numba_cache import use_cache_keyed_by
from backends.numba_fused import (
    FASTMATH,
    NumbaFused,
    backprop_delta,
    fill_rows,
    forward_rows,
    output_error,
    padded,
    padded_jit,
    unit_block,
    update_rows,
)

use_cache_keyed_by()

# A layer runs in parallel when a mini-batch's forward pass through it takes at
# least this many multiply-adds (padded batch x n_in x n_out): about 7
# microseconds of forward pass and update on one core in float64. Below it,
# the half a second thread saves no longer clearly beats a fork and join
# (1 microsecond on an idle machine, several on a busy one).
PARALLEL_MIN_MACS = 100_000


_jit = njit(cache=True, error_model="numpy", fastmath=FASTMATH)


@_jit
def _blocks(rows, W, threads):
    """How many blocks of units to split a layer into: one per thread if it pays."""
    return threads if rows.size * W.shape[1] * W.shape[0] >= PARALLEL_MIN_MACS else 1


@_jit
def _update_then_forward(W, b, delta_prev, A_prev, rows_prev, A, rows, head, act, j0, j1):
    """For units j0 <= j < j1: W[j], b[j] -= the previous mini-batch's gradient
    (none if rows_prev is empty), then act[:, j] = sigmoid(W[j] . A[rows] + b[j])."""
    update_rows(W, b, delta_prev, A_prev, rows_prev, head, j0, j1)
    forward_rows(W, b, A, rows, head, act, j0, j1)


# The parallel loops sit in the epoch function itself, not in functions it
# calls: a function loaded from Numba's cache starts the thread pool only for
# the parallel loops it contains.
@njit(cache=True, error_model="numpy", fastmath=FASTMATH, parallel=True)
def train_epoch_kernel(
    X, y, order, batch_size, eta, heads, weights, biases, buffers, prev_buffers, ids, threads
):
    """Every mini-batch of one epoch, each layer's update deferred into its next forward pass.

    ``buffers`` and ``prev_buffers`` are (acts, deltas, rows) of this and the
    previous mini-batch, swapped after each. ``threads``: the blocks a large
    layer's units are split into (calling numba.get_num_threads() here would
    keep the function out of the cache). The rest is as in numba_fused.
    """
    n_layers = len(weights)
    W, b = weights, biases
    (acts, deltas, rows), (acts_prev, deltas_prev, rows_prev) = buffers, prev_buffers
    p_prev = 0
    for start in range(0, order.size, batch_size):
        stop = min(start + batch_size, order.size)
        m, p = stop - start, padded_jit(stop - start)
        fill_rows(order, start, stop, rows)
        batch, batch_prev = rows[:p], rows_prev[:p_prev]

        args0 = (W[0], b[0], deltas_prev[0], X, batch_prev, X, batch, heads[0], acts[0])
        blocks = _blocks(batch, W[0], threads)
        if blocks == 1:  # a parallel loop of one iteration still forks and joins
            _update_then_forward(*args0, *unit_block(W[0].shape[0], 1, 0))
        else:
            for c in prange(blocks):
                _update_then_forward(*args0, *unit_block(W[0].shape[0], blocks, c))
        for layer in range(1, n_layers):
            args = (
                W[layer], b[layer], deltas_prev[layer], acts_prev[layer - 1], ids[:p_prev],
                acts[layer - 1], ids[:p], heads[layer], acts[layer],
            )
            blocks = _blocks(batch, W[layer], threads)
            if blocks == 1:
                _update_then_forward(*args, *unit_block(W[layer].shape[0], 1, 0))
            else:
                for c in prange(blocks):
                    _update_then_forward(*args, *unit_block(W[layer].shape[0], blocks, c))

        scale = X.dtype.type(eta) / X.dtype.type(m)
        output_error(acts[-1], y, batch, m, scale, deltas[-1])
        for layer in range(n_layers - 1, 0, -1):
            backprop_delta(W[layer], deltas[layer][:p], acts[layer - 1], deltas[layer - 1], ids)

        acts, acts_prev = acts_prev, acts
        deltas, deltas_prev = deltas_prev, deltas
        rows, rows_prev = rows_prev, rows
        p_prev = p

    # The last mini-batch's deferred update.
    batch_prev = rows_prev[:p_prev]
    blocks = _blocks(batch_prev, W[0], threads)
    for c in prange(blocks):
        j0, j1 = unit_block(W[0].shape[0], blocks, c)
        update_rows(W[0], b[0], deltas_prev[0], X, batch_prev, heads[0], j0, j1)
    for layer in range(1, n_layers):
        j0, j1 = unit_block(W[layer].shape[0], 1, 0)
        a_in, rows_in = acts_prev[layer - 1], ids[:p_prev]
        update_rows(W[layer], b[layer], deltas_prev[layer], a_in, rows_in, heads[layer], j0, j1)


class NumbaParallel(NumbaFused):
    name = "numba-parallel"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        super().__init__(params, dtype)
        available = numba.config.NUMBA_NUM_THREADS
        if threads is not None and not 1 <= threads <= available:
            raise ValueError(
                f"threads={threads}: Numba has {available} threads in this process "
                f"(NUMBA_NUM_THREADS); choose 1 to {available}"
            )
        self.threads = available if threads is None else int(threads)

    def _buffers_for(self, batch_size: int) -> tuple:
        """Per batch size: (acts, deltas, rows) for this and the previous mini-batch, and arange."""
        if batch_size not in self._buffers:
            rows = padded(batch_size)

            def one_set():
                acts = tuple(np.zeros((rows, n), self.dtype) for n in self.sizes[1:])
                deltas = tuple(np.zeros((rows, n), self.dtype) for n in self.sizes[1:])
                return acts, deltas, np.zeros(rows, np.intp)

            self._buffers[batch_size] = (one_set(), one_set(), np.arange(rows))
        return self._buffers[batch_size]

    def train_epoch(self, X, y, order, batch_size, eta):
        self._check_inputs(X)
        heads = self._align_first_layer(X)
        buffers, prev_buffers, identity = self._buffers_for(batch_size)
        numba.set_num_threads(self.threads)
        labels, order = np.asarray(y, np.intp), np.asarray(order, np.intp)  # one compiled version
        self._run(
            train_epoch_kernel, X, labels, order, int(batch_size), float(eta), heads,
            tuple(self.weights), tuple(self.biases), buffers, prev_buffers, identity, self.threads,
        )
