"""numba-tiles' compiled kernels: the first layer by register tiles over W1ᵀ
(``backends.numba_vectors``), the deeper layers by numba's sweep, and the epoch
that drives them in the order rust/src/kernels/tiles.rs does."""

from __future__ import annotations

# Importing numba_fused keys Numba's cache by every kernel source, this one too.
from backends.numba_fused import (
    SWEEP,
    backprop_and_update,
    fill_rows,
    forward_rows,
    output_error,
    padded_jit,
    unit_block,
)
from backends.numba_sigmoid import _jit, _sigmoid_inplace
from backends.numba_vectors import control_word, forward_tile, restore_control_word, update_tile

# Samples per pass of the update over W1ᵀ: the cache lines of their rows that a
# run of features touches stay in L1 while the next runs reuse them (tiles.rs).
UPDATE_CHUNK = 64


# ------------------------------------------------------------- the first layer


@_jit()
def forward_first_layer(wt, stride, lanes, tiles, X, order, start, batch_size, m, rows, z, a1):
    """a1[i, :hidden] = W1 x_i for every row i of the padded batch, sweep by sweep
    through the tile sums z (SWEEP, stride); the next sweep's rows (the batch's,
    or the next batch's first) prefetched while the first tile runs.

    wt (n_in, stride) W1ᵀ; tiles (count, 2): each run's first vector and length;
    rows (p,) the padded batch's rows of X; a1 (>= p, hidden).
    """
    hidden = a1.shape[1]
    last = order.size - 1
    for i in range(0, rows.size, SWEEP):
        following = start + i + SWEEP if i + SWEEP < m else start + batch_size
        a0, a1_ = order[min(following, last)], order[min(following + 1, last)]
        a2, a3 = order[min(following + 2, last)], order[min(following + 3, last)]
        a4 = order[min(following + 4, last)]
        r0, r1, r2, r3, r4 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4]
        for t in range(tiles.shape[0]):
            forward_tile(tiles[t, 1], wt, stride, tiles[t, 0] * lanes, X, r0, r1, r2, r3, r4, z,
                         a0, a1_, a2, a3, a4, t == 0)
        for q in range(SWEEP):
            for j in range(hidden):
                a1[i + q, j] = z[q, j]


@_jit()
def add_bias(a, b, p):
    """a[i, j] += b[j] for the p rows of the padded batch."""
    for i in range(p):
        for j in range(b.size):
            a[i, j] += b[j]


@_jit()
def minus_padded(delta, p, nd):
    """nd[:p] = -delta[:p], the padding columns zero: what the update tiles take."""
    hidden = delta.shape[1]
    for i in range(p):
        for j in range(nd.shape[1]):
            nd[i, j] = -delta[i, j] if j < hidden else delta.dtype.type(0)


@_jit()
def update_first_layer(wt, stride, lanes, tiles, X, rows, nd):
    """W1ᵀ[k, :] += sum_i X[rows[i], k] nd[i, :] over the padded batch, in passes
    of ``UPDATE_CHUNK`` samples, each over tiles of SWEEP features (one at the end)."""
    n_in = X.shape[1]
    for s0 in range(0, rows.size, UPDATE_CHUNK):
        s1 = min(s0 + UPDATE_CHUNK, rows.size)
        k = 0
        while k < n_in:
            kb = SWEEP if k + SWEEP <= n_in else 1
            for t in range(tiles.shape[0]):
                c = tiles[t, 0] * lanes
                update_tile(tiles[t, 1], kb, wt, stride, c, k, X, rows, nd, s0, s1)
            k += kb


@_jit()
def update_bias(b, delta, p):
    """b[j] -= sum_i delta[i, j], five samples at a time as the sweep sums them."""
    for i in range(0, p, SWEEP):
        for j in range(b.size):
            d = delta[i : i + SWEEP, j]
            b[j] -= d[0] + d[1] + d[2] + d[3] + d[4]


@_jit()
def transpose_into(w, wt):
    """wt[k, j] = w[j, k], the padding columns zero."""
    wt[:, :] = 0
    for j in range(w.shape[0]):
        for k in range(w.shape[1]):
            wt[k, j] = w[j, k]


@_jit()
def transpose_back(wt, w):
    for j in range(w.shape[0]):
        for k in range(w.shape[1]):
            w[j, k] = wt[k, j]


# ---------------------------------------------------------------- the epoch


@_jit()
def train_epoch_kernel(X, y, order, batch_size, eta, lanes, tiles, wt, z, nd,
                       weights, biases, acts, deltas, rows, ids, flush):
    """Every mini-batch of one epoch, the first layer by tiles over W1ᵀ, the
    others as numba's sweep; weights and biases are updated in place.

    wt (n_in, stride), z (SWEEP, stride), nd (P, stride): 64-byte aligned, with
    P = padded(batch_size); acts[l], deltas[l] (P, n_out); rows (P,); ids = arange(P).
    ``flush``: subnormals flushed to zero for the epoch, as rust-fused's epochs run.
    """
    word = control_word(flush)
    W, b = weights, biases
    n_layers = len(W)
    stride = wt.shape[1]
    transpose_into(W[0], wt)
    for start in range(0, order.size, batch_size):
        stop = min(start + batch_size, order.size)
        m, p = stop - start, padded_jit(stop - start)
        fill_rows(order, start, stop, rows)
        batch = rows[:p]

        a1 = acts[0]
        forward_first_layer(wt, stride, lanes, tiles, X, order, start, batch_size, m, batch, z, a1)
        add_bias(a1, b[0], p)
        _sigmoid_inplace(a1[:p].reshape(p * a1.shape[1]))
        for layer in range(1, n_layers):
            j0, j1 = unit_block(W[layer].shape[0], 1, 0)
            forward_rows(W[layer], b[layer], acts[layer - 1], ids[:p], 0, acts[layer], j0, j1)

        scale = X.dtype.type(eta) / X.dtype.type(m)
        output_error(acts[-1], y, batch, m, scale, deltas[-1])
        for layer in range(n_layers - 1, 0, -1):
            backprop_and_update(W[layer], b[layer], deltas[layer], acts[layer - 1],
                                deltas[layer - 1], ids, p, 0)

        minus_padded(deltas[0], p, nd)
        update_first_layer(wt, stride, lanes, tiles, X, batch, nd)
        update_bias(b[0], deltas[0], p)
    transpose_back(wt, W[0])
    restore_control_word(word)
