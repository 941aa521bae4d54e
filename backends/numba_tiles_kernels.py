"""numba-tiles' compiled kernels: the first layer by register tiles over W1ᵀ
(``backends.numba_vectors``), the deeper layers' forward pass and update over
their weights transposed too, and the epoch that drives them in the order
rust/src/kernels/tiles.rs does."""

from __future__ import annotations

# Importing numba_fused keys Numba's cache by every kernel source, this one too.
from backends.numba_fused import (
    SWEEP,
    backprop_delta,
    fill_rows,
    output_error,
    padded_jit,
)
from backends.numba_sigmoid import _jit, _sigmoid_inplace
from backends.numba_vectors import (
    REGISTERS,
    control_word,
    forward_pair,
    forward_tile,
    restore_control_word,
    update_tile,
)

# Samples per pass of the update over W1ᵀ: the cache lines of their rows that a
# run of features touches stay in L1 while the next runs reuse them
# (rust/src/kernels/outer.rs).
UPDATE_CHUNK = 64

# A mini-batch whose rows of X take more than BLOCK_ABOVE_BYTES goes forward,
# back and into W1ᵀ's update in blocks of BLOCK samples, so that its rows come
# from memory once (rust/src/kernels/tiles.rs).
BLOCK = 12 * SWEEP
BLOCK_ABOVE_BYTES = 1 << 20
MOST_LAYERS_BLOCKED = 8


# ------------------------------------------------------------- the first layer


@_jit()
def row_ahead(order, start, batch_size, m, j):
    """The row of X of the batch's sample j (its start at ``start`` in the
    order, m real samples), or past its last sweep the next batch's sample
    j - padded(m); the next batch's first for the padding of a short last
    sweep, and the order's last past its end: what a tile prefetches."""
    last_sweep_end = (m + SWEEP - 1) // SWEEP * SWEEP
    at = start + j if j < m else start + batch_size + max(j - last_sweep_end, 0)
    return order[min(at, order.size - 1)]


@_jit()
def forward_first_layer(wt, stride, lanes, tiles, X, order, start, batch_size, m, rows, z, a1):
    """a1[i, :hidden] = W1 x_i for every row i of the padded batch, sweep by sweep
    through the tile sums z (2 SWEEP, stride), two sweeps at once where W1ᵀ's rows
    allow (``pair_fits``); the rows of the samples after a tile (the batch's, or
    the next batch's) prefetched while its first tile runs.

    wt (n_in, stride) W1ᵀ; tiles (count, 2): each run's first vector and length;
    rows (p,) the padded batch's rows of X; a1 (>= p, hidden).
    """
    hidden, p = a1.shape[1], rows.size
    pairs = tiles.shape[0] == 1 and tiles[0, 1] * (2 * SWEEP + 1) < REGISTERS  # pair_fits
    o, s, n_b = order, start, batch_size
    i = 0
    while i < p:
        if pairs and i + 2 * SWEEP <= p:
            n = i + 2 * SWEEP  # the first sample after the pair
            ahead = (row_ahead(o, s, n_b, m, n), row_ahead(o, s, n_b, m, n + 1),
                     row_ahead(o, s, n_b, m, n + 2), row_ahead(o, s, n_b, m, n + 3),
                     row_ahead(o, s, n_b, m, n + 4), row_ahead(o, s, n_b, m, n + 5),
                     row_ahead(o, s, n_b, m, n + 6), row_ahead(o, s, n_b, m, n + 7),
                     row_ahead(o, s, n_b, m, n + 8), row_ahead(o, s, n_b, m, n + 9))
            forward_pair(tiles[0, 1], wt, stride, X, rows, i, z, ahead)
            tile = 2 * SWEEP
        else:
            n = i + SWEEP
            a0, a1_ = row_ahead(o, s, n_b, m, n), row_ahead(o, s, n_b, m, n + 1)
            a2, a3 = row_ahead(o, s, n_b, m, n + 2), row_ahead(o, s, n_b, m, n + 3)
            a4 = row_ahead(o, s, n_b, m, n + 4)
            r0, r1, r2, r3, r4 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4]
            for t in range(tiles.shape[0]):
                forward_tile(tiles[t, 1], wt, stride, tiles[t, 0] * lanes, X, r0, r1, r2, r3, r4, z,
                             a0, a1_, a2, a3, a4, t == 0)
            tile = SWEEP
        for q in range(tile):
            for j in range(hidden):
                a1[i + q, j] = z[q, j]
        i += tile


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
def update_by_tiles(wt, stride, lanes, tiles, X, rows, nd):
    """Wᵀ[k, :] += sum_i X[rows[i], k] nd[i, :] over the padded batch, in passes
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


# ------------------------------------------------------------ the deeper layers


@_jit()
def forward_deeper(wt, stride, lanes, tiles, A, rows, z, act, b):
    """act[i, :] = sigmoid(W a_i + b) for the rows a_i = A[rows[i]] of the padded
    batch, by the first layer's register tiles over Wᵀ (n_in, stride): each sum
    over the inputs in order, then b, as rust-fused's deeper layers do. z is
    (SWEEP, stride)."""
    n_out = b.size
    for i in range(0, rows.size, SWEEP):
        r0, r1, r2, r3, r4 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4]
        for t in range(tiles.shape[0]):
            forward_tile(tiles[t, 1], wt, stride, tiles[t, 0] * lanes, A, r0, r1, r2, r3, r4, z,
                         r0, r1, r2, r3, r4, False)
        for q in range(SWEEP):
            for j in range(n_out):
                act[i + q, j] = z[q, j] + b[j]
    p = rows.size
    _sigmoid_inplace(act[:p].reshape(p * n_out))


@_jit()
def update_deeper(wt, stride, lanes, tiles, A, rows, nd, delta, b):
    """Wᵀ += the outer products of A[rows[i]] and -delta[i] by the update tiles,
    each weight's terms in the samples' order, and b as ``update_bias`` does."""
    p = rows.size
    minus_padded(delta, p, nd)
    update_by_tiles(wt, stride, lanes, tiles, A, rows, nd)
    update_bias(b, delta, p)


@_jit()
def transpose_back(wt, w):
    for j in range(w.shape[0]):
        for k in range(w.shape[1]):
            w[j, k] = wt[k, j]


# ---------------------------------------------------------------- the epoch


@_jit()
def block_samples(p, n_in, itemsize, layers):
    """Samples per block of a padded mini-batch of p rows of n_in features of
    ``itemsize`` bytes in a network of ``layers``, 0 where it goes in one pass:
    rust/src/kernels/tiles.rs's rule."""
    big = p * n_in * itemsize > BLOCK_ABOVE_BYTES
    return BLOCK if big and p > BLOCK and layers <= MOST_LAYERS_BLOCKED else 0


@_jit()
def one_pass(X, y, order, start, batch_size, m, batch, scale, lanes, tiles, wt, z, nd, W, b, acts,
             deltas, ids):
    """One mini-batch, all its samples through each step in turn, but b1's update."""
    p, n_layers, stride = batch.size, len(W), wt[0].shape[1]
    a1 = acts[0]
    forward_first_layer(wt[0], stride, lanes, tiles[0], X, order, start, batch_size, m, batch,
                        z[0], a1)
    add_bias(a1, b[0], p)
    _sigmoid_inplace(a1[:p].reshape(p * a1.shape[1]))
    for layer in range(1, n_layers):
        forward_deeper(wt[layer], wt[layer].shape[1], lanes, tiles[layer], acts[layer - 1],
                       ids[:p], z[layer], acts[layer], b[layer])
    output_error(acts[-1], y, batch, m, scale, deltas[-1])
    for layer in range(n_layers - 1, 0, -1):
        backprop_delta(W[layer], deltas[layer][:p], acts[layer - 1], deltas[layer - 1], ids)
        update_deeper(wt[layer], wt[layer].shape[1], lanes, tiles[layer], acts[layer - 1],
                      ids[:p], nd[layer], deltas[layer], b[layer])
        transpose_back(wt[layer], W[layer])
    minus_padded(deltas[0], p, nd[0])
    update_by_tiles(wt[0], stride, lanes, tiles[0], X, batch, nd[0])


@_jit()
def in_blocks(X, y, order, start, batch_size, m, batch, scale, lanes, tiles, wt, spare, z, nd, W,
              b, acts, deltas, ids):
    """One mini-batch in blocks of BLOCK samples, each forward, back to delta1
    and into the next W1ᵀ (spare, a copy of W1ᵀ at the start) before the next
    block is read; then the deeper layers' updates from the whole mini-batch.
    Every weight takes the samples' terms in their order from its value at the
    start, so the bits are ``one_pass``'s."""
    p, n_layers, stride = batch.size, len(W), wt[0].shape[1]
    spare[:, :] = wt[0]
    for s0 in range(0, p, BLOCK):
        s1 = min(s0 + BLOCK, p)
        n = s1 - s0
        rows = batch[s0:s1]
        a1 = acts[0][s0:s1]
        forward_first_layer(wt[0], stride, lanes, tiles[0], X, order, start + s0,
                            batch_size - s0, m - s0, rows, z[0], a1)
        add_bias(a1, b[0], n)
        _sigmoid_inplace(a1.reshape(n * a1.shape[1]))
        for layer in range(1, n_layers):
            forward_deeper(wt[layer], wt[layer].shape[1], lanes, tiles[layer],
                           acts[layer - 1][s0:s1], ids[:n], z[layer], acts[layer][s0:s1],
                           b[layer])
        output_error(acts[-1][s0:s1], y, rows, m - s0, scale, deltas[-1][s0:s1])
        for layer in range(n_layers - 1, 0, -1):
            backprop_delta(W[layer], deltas[layer][s0:s1], acts[layer - 1][s0:s1],
                           deltas[layer - 1][s0:s1], ids)
        minus_padded(deltas[0][s0:s1], n, nd[0])
        update_by_tiles(spare, stride, lanes, tiles[0], X, rows, nd[0][:n])
    wt[0][:, :] = spare
    for layer in range(n_layers - 1, 0, -1):
        update_deeper(wt[layer], wt[layer].shape[1], lanes, tiles[layer], acts[layer - 1],
                      ids[:p], nd[layer], deltas[layer], b[layer])
        transpose_back(wt[layer], W[layer])


@_jit()
def train_epoch_kernel(X, y, order, batch_size, eta, lanes, tiles, wt, spare, z, nd, weights,
                       biases, acts, deltas, rows, ids, flush):
    """Every mini-batch of one epoch, every layer's forward pass and update by
    tiles over its Wᵀ, backprop as numba's sweep; weights and biases are updated
    in place.

    tiles, wt, z and nd hold one entry per layer: its runs of vectors, Wᵀ
    (n_in, stride), two sweeps' sums (2 SWEEP, stride) and the batch's -delta
    (P, stride), 64-byte aligned, with P = padded(batch_size); acts[l],
    deltas[l] (P, n_out); rows (P,); ids = arange(P). spare is the next W1ᵀ
    while a mini-batch cut into blocks is updated; it may be empty otherwise.
    ``flush``: subnormals flushed to zero for the epoch, as rust-fused's epochs run.
    """
    word = control_word(flush)
    W, b = weights, biases
    n_layers = len(W)
    # Every layer's Wᵀ for the epoch; the deeper layers' rows, which backprop
    # reads, are brought up to date from theirs after every update.
    for layer in range(n_layers):
        transpose_into(W[layer], wt[layer])
    for start in range(0, order.size, batch_size):
        stop = min(start + batch_size, order.size)
        m, p = stop - start, padded_jit(stop - start)
        fill_rows(order, start, stop, rows)
        batch = rows[:p]

        scale = X.dtype.type(eta) / X.dtype.type(m)
        if block_samples(p, X.shape[1], X.itemsize, n_layers) == 0:
            one_pass(X, y, order, start, batch_size, m, batch, scale, lanes, tiles, wt, z, nd,
                     W, b, acts, deltas, ids)
        else:
            in_blocks(X, y, order, start, batch_size, m, batch, scale, lanes, tiles, wt, spare,
                      z, nd, W, b, acts, deltas, ids)
        update_bias(b[0], deltas[0], p)
    transpose_back(wt[0], W[0])
    restore_control_word(word)
