"""Numba: one compiled call trains a whole epoch, each mini-batch fused.

``train_epoch`` hands the shuffled epoch to one compiled function, so no Python
runs per mini-batch, and nothing is allocated inside it: the buffers are made
once per batch size. Per mini-batch it does the book's ``update_mini_batch``,
forward pass, output error, backprop, update, with the update's eta/m folded
into the output error (backprop is linear in delta) as numpy-gemm does.

What makes it fast, for the first layer of [784, 30, 10] where nearly all the
arithmetic is:

- Five samples per sweep over a weight row. In the forward pass one sweep over
  W[j] makes five dot products; in the update one sweep subtracts five
  outer-product rows from W[j]. Every W[j, k] loaded feeds five FMAs, the five
  input rows (5 x 784 x 8 B = 31 KB in float64) stay in the 48 KB L1 cache for
  all 30 rows, and W1 (188 KB) streams from L2.
- The inner loops run over k, contiguous in both W and x, and LLVM turns them
  into 512-bit FMAs (8 float64 or 16 float32 lanes). ``reassoc`` lets it give
  each dot product several vector accumulators, as BLAS does; the sums then
  differ from a left-to-right sum by rounding only.
- Loads are aligned to 64 bytes. NumPy only promises 16 (a large array here
  starts 16 bytes past a cache line), and 512-bit loads that straddle two
  cache lines nearly halve the speed of these loops.
  Rows of 784 values are a whole number of cache lines, so every row of X
  shares X's misalignment: W is stored with the same one and each sweep does
  the few elements before the first boundary apart.
- exp is written out in plain arithmetic so the sigmoid vectorises too; the
  scalar libm call took about a sixth of the epoch (``backends.numba_sigmoid``).
"""

from __future__ import annotations

import numpy as np
from numba.core.event import install_timer

from backends.base import Params, predict_labels
from backends.numba_cache import use_cache_keyed_by
from backends.numba_sigmoid import FASTMATH as FASTMATH  # numba-parallel's kernels use it too
from backends.numba_sigmoid import _jit, _sigmoid_columns

# Before the first kernel is decorated: numba-parallel inlines these kernels.
use_cache_keyed_by()

# Samples per sweep over a weight row: 5 x 784 x 8 B of inputs fit in L1, and
# batch sizes 10, 100, 1000 divide into sweeps evenly. Batches are padded up to a
# multiple: padding rows repeat the batch's last sample and get zero delta, so
# they add exactly nothing to the update.
SWEEP = 5
# x86-64 cache lines; a 512-bit load is one line when aligned to them.
CACHE_LINE = 64
# ---------------------------------------------------------------- one layer


@_jit(inline="always")
def _sweep_rows(A, rows, i):
    """The five input rows A[rows[i]], ..., A[rows[i + 4]] of one sweep."""
    return A[rows[i]], A[rows[i + 1]], A[rows[i + 2]], A[rows[i + 3]], A[rows[i + 4]]


@_jit(inline="always")
def _sweep_deltas(delta, i, j):
    """delta[i, j], ..., delta[i + 4, j]: unit j's error for the five samples of one sweep."""
    return delta[i, j], delta[i + 1, j], delta[i + 2, j], delta[i + 3, j], delta[i + 4, j]


@_jit(inline="always")
def _dot5(w, x0, x1, x2, x3, x4):
    """(w . x0, ..., w . x4) in one sweep over w: each w[k] feeds five FMAs."""
    zero = w.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = zero
    for k in range(w.size):
        s0 += w[k] * x0[k]
        s1 += w[k] * x1[k]
        s2 += w[k] * x2[k]
        s3 += w[k] * x3[k]
        s4 += w[k] * x4[k]
    return s0, s1, s2, s3, s4


@_jit(inline="always")
def _subtract_outer5(w, d0, d1, d2, d3, d4, x0, x1, x2, x3, x4):
    """w -= d0 x0 + ... + d4 x4: one row of W -= delta^T A, five samples in one sweep."""
    for k in range(w.size):
        w[k] -= d0 * x0[k] + d1 * x1[k] + d2 * x2[k] + d3 * x3[k] + d4 * x4[k]


@_jit()
def forward_rows(W, b, A, rows, head, act, j0, j1):
    """act[i, j] = sigmoid(W[j] . A[rows[i]] + b[j]) for units j0 <= j < j1.

    W (n_out, n_in), b (n_out,), A (n_samples, n_in), rows (p,) with p a
    multiple of SWEEP, act (>= p, n_out). ``head``: elements of each A row
    before its first 64-byte boundary, done apart so the long part loads aligned.
    """
    h = head
    for i in range(0, rows.size, SWEEP):
        x0, x1, x2, x3, x4 = _sweep_rows(A, rows, i)
        for j in range(j0, j1):
            w = W[j]
            s0, s1, s2, s3, s4 = _dot5(w[h:], x0[h:], x1[h:], x2[h:], x3[h:], x4[h:])
            t0, t1, t2, t3, t4 = _dot5(w[:h], x0[:h], x1[:h], x2[:h], x3[:h], x4[:h])
            act[i, j] = s0 + t0 + b[j]
            act[i + 1, j] = s1 + t1 + b[j]
            act[i + 2, j] = s2 + t2 + b[j]
            act[i + 3, j] = s3 + t3 + b[j]
            act[i + 4, j] = s4 + t4 + b[j]
    _sigmoid_columns(act, rows.size, j0, j1)


@_jit()
def update_rows(W, b, delta, A, rows, head, j0, j1):
    """W[j] -= sum_i delta[i, j] A[rows[i]] and b[j] -= sum_i delta[i, j], j0 <= j < j1.

    delta (>= p, n_out) already holds eta/m times the book's delta, zero in
    padding rows; the other arguments are as for ``forward_rows``.
    """
    h = head
    for i in range(0, rows.size, SWEEP):
        x0, x1, x2, x3, x4 = _sweep_rows(A, rows, i)
        for j in range(j0, j1):
            d0, d1, d2, d3, d4 = _sweep_deltas(delta, i, j)
            w = W[j]
            _subtract_outer5(w[h:], d0, d1, d2, d3, d4, x0[h:], x1[h:], x2[h:], x3[h:], x4[h:])
            _subtract_outer5(w[:h], d0, d1, d2, d3, d4, x0[:h], x1[:h], x2[:h], x3[:h], x4[:h])
            b[j] -= d0 + d1 + d2 + d3 + d4


@_jit(inline="always")
def _add_outer5(w, d0, d1, d2, d3, d4, o0, o1, o2, o3, o4):
    """o_q += d_q w for five samples q, in one sweep over w."""
    for k in range(w.size):
        o0[k] += d0 * w[k]
        o1[k] += d1 * w[k]
        o2[k] += d2 * w[k]
        o3[k] += d3 * w[k]
        o4[k] += d4 * w[k]


@_jit()
def backprop_delta(W, delta, a, delta_in, ids):
    """delta_in = (delta W) * sigmoid'(z_in), with sigmoid'(z_in) = a (1 - a): BP2.

    W (n_out, n_in), delta (p, n_out), a and delta_in (>= p, n_in), ids = arange(p);
    row i of delta W is sum_j delta[i, j] W[j], five samples per sweep over W[j].
    """
    one = W.dtype.type(1)
    for i in range(0, delta.shape[0], SWEEP):
        o0, o1, o2, o3, o4 = _sweep_rows(delta_in, ids, i)
        delta_in[i : i + SWEEP] = 0
        for j in range(W.shape[0]):
            d0, d1, d2, d3, d4 = _sweep_deltas(delta, i, j)
            _add_outer5(W[j], d0, d1, d2, d3, d4, o0, o1, o2, o3, o4)
    for i in range(delta.shape[0]):
        out, a_i = delta_in[i], a[i]
        for k in range(out.size):
            out[k] *= a_i[k] * (one - a_i[k])


@_jit()
def output_error(a, y, rows, m, scale, delta):
    """delta = (a - e_y) * a (1 - a) * scale for the m real samples, 0 for padding.

    The quadratic cost's output error (BP1) with sigmoid'(z) = a (1 - a), times
    eta/m so the gradients come out ready to subtract.
    """
    one = a.dtype.type(1)
    for i in range(rows.size):
        label = y[rows[i]] if i < m else -1
        for j in range(a.shape[1]):
            target = one if j == label else one - one
            error = (a[i, j] - target) * (a[i, j] * (one - a[i, j])) * scale
            delta[i, j] = error if i < m else one - one


@_jit()
def unit_block(n_units, blocks, c):
    """Units j0 <= j < j1 of the c-th of ``blocks`` near-equal contiguous blocks.

    Also used for all units at once (one block): the kernels then get the same
    argument types from every caller, and compile once per dtype.
    """
    return c * n_units // blocks, (c + 1) * n_units // blocks


@_jit()
def backprop_and_update(W, b, delta, a_in, delta_in, ids, p, head):
    """One layer above the first, going back: its input's delta_in (BP2), read
    through W before this mini-batch's update, then that update of W and b.

    delta (>= p, n_out) this layer's, a_in and delta_in (>= p, n_in) its
    input's, ids = arange(>= p); ``head`` as for ``forward_rows``.
    """
    backprop_delta(W, delta[:p], a_in, delta_in, ids)
    j0, j1 = unit_block(W.shape[0], 1, 0)
    update_rows(W, b, delta, a_in, ids[:p], head, j0, j1)


def padded(m: int) -> int:
    """A batch of m samples rounded up to whole sweeps."""
    return -(-m // SWEEP) * SWEEP


padded_jit = _jit(inline="always")(padded)


@_jit()
def fill_rows(order, start, stop, rows):
    """rows[:p] <- the mini-batch order[start:stop], padded to p = padded(stop - start)
    entries by repeating its last sample."""
    for i in range(padded_jit(stop - start)):
        rows[i] = order[min(start + i, stop - 1)]


# ---------------------------------------------------------------- the epoch


@_jit()
def train_epoch_kernel(
    X, y, order, batch_size, eta, heads, weights, biases, acts, deltas, rows, ids
):
    """Every mini-batch of one epoch: forward, output error, backprop, update.

    weights[l] (n_out, n_in) and biases[l] (n_out,) are updated in place.
    acts[l], deltas[l] (P, n_out) with P = padded(batch_size); rows (P,) the
    batch's sample indices; ids = arange(P), the rows of a hidden layer's input;
    heads[l] the ``head`` of layer l's input rows. The first layer reads X, the
    others acts: X may be read-only, acts not.
    """
    n_layers = len(weights)
    W, b = weights, biases
    for start in range(0, order.size, batch_size):
        stop = min(start + batch_size, order.size)
        m, p = stop - start, padded_jit(stop - start)
        fill_rows(order, start, stop, rows)
        batch = rows[:p]

        j0, j1 = unit_block(W[0].shape[0], 1, 0)
        forward_rows(W[0], b[0], X, batch, heads[0], acts[0], j0, j1)
        for layer in range(1, n_layers):
            j0, j1 = unit_block(W[layer].shape[0], 1, 0)
            a_in = acts[layer - 1]
            forward_rows(W[layer], b[layer], a_in, ids[:p], heads[layer], acts[layer], j0, j1)

        scale = X.dtype.type(eta) / X.dtype.type(m)
        output_error(acts[-1], y, batch, m, scale, deltas[-1])
        for layer in range(n_layers - 1, 0, -1):
            backprop_and_update(W[layer], b[layer], deltas[layer], acts[layer - 1],
                                deltas[layer - 1], ids, p, heads[layer])
        j0, j1 = unit_block(W[0].shape[0], 1, 0)
        update_rows(W[0], b[0], deltas[0], X, batch, heads[0], j0, j1)


# ---------------------------------------------------------------- the trainer


def aligned_head(X: np.ndarray) -> int:
    """Elements before the first 64-byte boundary of every row of X, or 0 when
    rows are not a whole number of cache lines (their offsets then differ)."""
    if (X.shape[1] * X.itemsize) % CACHE_LINE:
        return 0
    return (-X.ctypes.data % CACHE_LINE) // X.itemsize


def empty_at_offset(shape: tuple[int, ...], dtype: np.dtype, offset: int) -> np.ndarray:
    """An uninitialised C-contiguous array starting ``offset`` bytes past a 64-byte boundary."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE, np.uint8)
    start = (offset - raw.ctypes.data) % CACHE_LINE
    return raw[start : start + nbytes].view(dtype).reshape(shape)


class NumbaFused:
    name = "numba"
    threads = 1

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None):
        self.dtype = np.dtype(dtype)
        p = params.astype(self.dtype)
        self.sizes = p.sizes
        self.weights = list(p.weights)
        self.biases = [b.ravel().copy() for b in p.biases]  # (n_out,), as the kernels index them
        self.compile_seconds = 0.0
        self._buffers: dict[int, tuple] = {}

    def _buffers_for(self, batch_size: int) -> tuple:
        """Per batch size: activations and deltas of every layer, the batch's rows, arange."""
        if batch_size not in self._buffers:
            rows = padded(batch_size)
            acts = tuple(np.zeros((rows, n), self.dtype) for n in self.sizes[1:])
            deltas = tuple(np.zeros((rows, n), self.dtype) for n in self.sizes[1:])
            self._buffers[batch_size] = (acts, deltas, np.zeros(rows, np.intp), np.arange(rows))
        return self._buffers[batch_size]

    def _check_inputs(self, X: np.ndarray) -> None:
        """X must be what the kernels were written for; anything else would
        compile another version, and a float64 X would make float32 kernels promote."""
        if X.dtype != self.dtype or X.ndim != 2 or not X.flags.c_contiguous:
            raise ValueError(
                f"{self.name} trains on a C-contiguous 2-D {self.dtype} array; got a "
                f"{X.ndim}-D {X.dtype} one{'' if X.flags.c_contiguous else ', not C-contiguous'}: "
                f"pass np.ascontiguousarray(X, dtype={str(self.dtype)!r})"
            )

    def _align_first_layer(self, X: np.ndarray) -> np.ndarray:
        """Keep W1 at X's offset from a cache-line boundary, so both load aligned.

        Returns each layer's ``head``: X's for the first, 0 for the hidden
        layers (their rows of 10 to 100 values are rarely whole cache lines).
        """
        offset = X.ctypes.data % CACHE_LINE
        if self.weights[0].ctypes.data % CACHE_LINE != offset:
            w = empty_at_offset(self.weights[0].shape, self.dtype, offset)
            w[...] = self.weights[0]
            self.weights[0] = w
        heads = np.zeros(len(self.weights), np.intp)
        heads[0] = aligned_head(X)
        return heads

    def _run(self, kernel, *args) -> None:
        """Call a kernel, adding any compilation it triggers to ``compile_seconds``."""
        def add(seconds: float) -> None:
            self.compile_seconds += seconds

        with install_timer("numba:compile", add):
            kernel(*args)

    def train_epoch(self, X, y, order, batch_size, eta):
        self._check_inputs(X)
        heads = self._align_first_layer(X)
        acts, deltas, rows, identity = self._buffers_for(batch_size)
        labels, order = np.asarray(y, np.intp), np.asarray(order, np.intp)  # one compiled version
        self._run(
            train_epoch_kernel, X, labels, order, int(batch_size), float(eta), heads,
            tuple(self.weights), tuple(self.biases), acts, deltas, rows, identity,
        )

    def predict(self, X):
        return predict_labels(self.params(), X)

    def params(self) -> Params:
        return Params(tuple(self.weights), tuple(b.reshape(-1, 1) for b in self.biases))

