"""Numba running rust-fused's tiles kernel: the first layer as register tiles over W1ᵀ.

The same algorithm as ``rust/src/kernels/tiles.rs`` (see "The tiles kernel" in the
README), in the same order of operations:

- W1 is held transposed for the epoch, (n_in, stride), each row of hidden units
  padded with zeros to whole vectors; it is transposed in at the start of the
  epoch and back at the end.
- forward: a tile of ``SWEEP`` samples by up to four vectors of hidden units
  stays in registers while the 784 input features pass; per feature k, one load
  of each vector of W1ᵀ[k] and a broadcast of each sample's x[k] feed
  ``SWEEP * nb`` multiply-adds (outer products: no sums across lanes). While the
  first tile of a sweep runs, the next sweep's rows of X are prefetched into L2.
- update: a tile of ``SWEEP`` features by the same vectors of W1ᵀ stays in
  registers while 64 samples of the padded mini-batch pass, each adding x_i[k]
  times its -delta1; W1ᵀ is read and written once per 64 samples.
- the deeper layers, the output error and backprop run as the numba backend's
  sweep does (``numba_fused``), as rust-fused's tiles epoch runs its sweep there.

The machine facts are the Rust kernel's: the vector width and the register count
come from the host CPU's instruction set as LLVM reports it (AVX-512: 64 bytes
and 32 registers, so four vectors per tile; AVX2 with FMA: 32 bytes and 16, so
two; otherwise SSE2's 16 bytes), and the hidden units are cut into runs of at
most that many vectors, as even as the count allows.

What plain ``@njit`` code cannot say: a tile of accumulators kept in registers
across a loop. Written as 160 scalar variables, LLVM neither vectorises them
(the SLP vectoriser does not bundle loop-carried values) nor keeps compile
times reasonable (13 s for one tile, which then ran scalar FMAs at 1.4 GFLOP/s
against 14 with vectors); kept in an array, every multiply-add loads and
stores it. So the two tiles are Numba intrinsics (``numba.extending.intrinsic``)
that build their loops in LLVM IR with explicit vector types, ``llvm.fma``
and ``llvm.prefetch``, and two more set and restore the control word (MXCSR)
around the epoch to flush subnormals to zero, as the Rust epochs do;
everything else is ordinary ``@njit`` code. What stays as Numba has it: the
deeper layers' loops end in scalar remainders where the Rust sweep does one
masked vector step (6 of 30 float64 units, 14 in float32).
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from backends.base import Params
from backends.numba_fused import (
    SWEEP,
    NumbaFused,
    backprop_delta,
    empty_at_offset,
    fill_rows,
    forward_rows,
    output_error,
    padded,
    padded_jit,
    unit_block,
    update_rows,
)

# Importing numba_fused keys Numba's cache by every kernel source, this one too.
from backends.numba_sigmoid import _jit, _sigmoid_inplace

# Samples per pass of the update over W1ᵀ: the cache lines of their rows that a
# run of features touches stay in L1 while the next runs reuse them (tiles.rs).
UPDATE_CHUNK = 64
MAX_TILE = 4
CACHE_LINE = 64


def vector_facts(features: dict | None = None) -> tuple[int, int]:
    """(bytes per vector register, vector registers) of the host CPU's widest
    instruction set that the kernels use, as rust/src/kernels/isa.rs picks them."""
    if features is None:
        features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        return 64, 32
    if features.get("avx2") and features.get("fma"):
        return 32, 16
    return 16, 16


VECTOR_BYTES, REGISTERS = vector_facts()


def tile_vectors(registers: int = REGISTERS) -> int:
    """Vectors of hidden units per tile: as many as fit in the registers beside
    the ``SWEEP`` accumulators each needs, the loads and one broadcast."""
    return min(max((registers - 2) // (SWEEP + 1), 1), MAX_TILE)


def stride(hidden: int, lanes: int) -> int:
    """Hidden units padded to whole vectors of ``lanes``."""
    return -(-hidden // lanes) * lanes


def runs(vectors: int, most: int) -> np.ndarray:
    """``vectors`` cut into runs of at most ``most``, as even as the count allows:
    (count, 2) rows of (first vector, vectors)."""
    count = max(-(-vectors // max(most, 1)), 1)
    base, extra = divmod(vectors, count)
    lengths = [base + (r < extra) for r in range(count)]
    starts = np.cumsum([0] + lengths[:-1])
    return np.array(list(zip(starts, lengths)), dtype=np.intp).reshape(count, 2)


# ------------------------------------------------------- the tiles, in LLVM IR


class _Tile:
    """What a tile's IR needs: the element and vector types, pointers into arrays."""

    def __init__(self, context, builder, signature, args, float_array_at: int):
        self.builder = builder
        self.elem = context.get_value_type(signature.args[float_array_at].dtype)
        self.size = context.get_abi_sizeof(self.elem)
        self.lanes = max(VECTOR_BYTES // self.size, 1)
        self.vector = ir.VectorType(self.elem, self.lanes)
        self.i64 = ir.IntType(64)
        self.args = [
            context.make_array(t)(context, builder, v).data if isinstance(t, types.Array)
            else context.cast(builder, v, t, types.int64)
            for t, v in zip(signature.args, args)
        ]
        suffix = f"v{self.lanes}{'f64' if self.size == 8 else 'f32'}"
        self.fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vector, [self.vector] * 3), f"llvm.fma.{suffix}")

    def const(self, value: int) -> ir.Constant:
        return ir.Constant(self.i64, value)

    def at(self, pointer, offset):
        return self.builder.gep(pointer, [offset])

    def load_vector(self, pointer, offset):
        address = self.builder.bitcast(self.at(pointer, offset), self.vector.as_pointer())
        return self.builder.load(address, align=self.lanes * self.size)

    def store_vector(self, value, pointer, offset) -> None:
        address = self.builder.bitcast(self.at(pointer, offset), self.vector.as_pointer())
        self.builder.store(value, address, align=self.lanes * self.size)

    def broadcast(self, pointer, offset):
        b = self.builder
        one = b.insert_element(ir.Constant(self.vector, ir.Undefined),
                               b.load(self.at(pointer, offset)), ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), self.lanes), [0] * self.lanes)
        return b.shuffle_vector(one, ir.Constant(self.vector, ir.Undefined), mask)

    def zeros(self):
        return ir.Constant(self.vector, [ir.Constant(self.elem, 0.0)] * self.lanes)

    def loop(self, start, stop, carried: list, body) -> list:
        """for i in range(start, stop) (at least once): carried = body(i, carried)."""
        b = self.builder
        entry = b.basic_block
        head = b.append_basic_block("tile.loop")
        done = b.append_basic_block("tile.done")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(self.i64)
        i.add_incoming(start, entry)
        phis = [b.phi(v.type) for v in carried]
        for phi, v in zip(phis, carried):
            phi.add_incoming(v, entry)
        new = body(i, phis)
        following = b.add(i, self.const(1))
        for phi, v in zip(phis, new):
            phi.add_incoming(v, b.basic_block)
        i.add_incoming(following, b.basic_block)
        b.cbranch(b.icmp_signed("<", following, stop), head, done)
        b.position_at_end(done)
        return new

    def prefetch_l2(self, pointer, offset) -> None:
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            self.builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        address = self.builder.bitcast(self.at(pointer, offset), i8p)
        # read, locality 2 (_MM_HINT_T1: into L2), data
        self.builder.call(fn, [address] + [ir.Constant(i32, v) for v in (0, 2, 1)])


def _forward_tile(nb: int):
    """z[q, c:c + nb*lanes] = sum_k W1ᵀ[k, c:c + nb*lanes] X[x_q, k] for the five
    samples' rows x_q, k over 0..n_in in order; prefetching the rows ``ahead_q``
    into L2, a cache line per feature step of a line, when ``prefetch``."""

    @intrinsic
    def forward_tile(typingctx, wt, stride, c, X, x0, x1, x2, x3, x4, z,
                     ahead0, ahead1, ahead2, ahead3, ahead4, prefetch):
        sig = types.void(wt, stride, c, X, x0, x1, x2, x3, x4, z,
                         ahead0, ahead1, ahead2, ahead3, ahead4, prefetch)

        def codegen(context, builder, signature, args):
            t = _Tile(context, builder, signature, args, 0)
            wt_, stride_, c_, X_, *rest = t.args
            rows, z_, aheads, prefetch_ = rest[:SWEEP], rest[SWEEP], rest[SWEEP + 1:-1], rest[-1]
            width = context.cast(builder, cgutils.unpack_tuple(
                builder, context.make_array(signature.args[3])(context, builder, args[3]).shape)[1],
                types.intp, types.int64)
            b = builder
            x = [t.at(X_, b.mul(r, width)) for r in rows]
            ahead = [t.at(X_, b.mul(r, width)) for r in aheads]
            line = CACHE_LINE // t.size
            wants_prefetch = b.icmp_signed("!=", prefetch_, t.const(0))

            def step(k, acc):
                on_line = b.icmp_signed("==", b.and_(k, t.const(line - 1)), t.const(0))
                with b.if_then(b.and_(wants_prefetch, on_line), likely=False):
                    for row in ahead:
                        t.prefetch_l2(row, k)
                base = b.add(b.mul(k, stride_), c_)
                w = [t.load_vector(wt_, b.add(base, t.const(v * t.lanes))) for v in range(nb)]
                new = []
                for q in range(SWEEP):
                    xb = t.broadcast(x[q], k)
                    new += [b.call(t.fma, [w[v], xb, acc[q * nb + v]]) for v in range(nb)]
                return new

            acc = t.loop(t.const(0), width, [t.zeros()] * (SWEEP * nb), step)
            for q in range(SWEEP):
                for v in range(nb):
                    offset = b.add(b.mul(t.const(q), stride_), b.add(c_, t.const(v * t.lanes)))
                    t.store_vector(acc[q * nb + v], z_, offset)
            return context.get_dummy_value()

        return sig, codegen

    return forward_tile


def _update_tile(nb: int, kb: int):
    """W1ᵀ[k + r, c:c + nb*lanes] += X[rows[i], k + r] nd[i, c:c + nb*lanes] for
    r < kb and the samples s0 <= i < s1 in order, the tile in registers."""

    @intrinsic
    def update_tile(typingctx, wt, stride, c, k, X, rows, nd, s0, s1):
        sig = types.void(wt, stride, c, k, X, rows, nd, s0, s1)

        def codegen(context, builder, signature, args):
            t = _Tile(context, builder, signature, args, 0)
            wt_, stride_, c_, k_, X_, rows_, nd_, s0_, s1_ = t.args
            width = context.cast(builder, cgutils.unpack_tuple(
                builder, context.make_array(signature.args[4])(context, builder, args[4]).shape)[1],
                types.intp, types.int64)
            b = builder
            tile = t.at(wt_, b.add(b.mul(k_, stride_), c_))
            offsets = [[b.add(b.mul(t.const(r), stride_), t.const(v * t.lanes)) for v in range(nb)]
                       for r in range(kb)]
            acc = [t.load_vector(tile, offsets[r][v]) for r in range(kb) for v in range(nb)]

            def step(i, acc):
                row = b.load(t.at(rows_, i))
                xi = t.at(X_, b.add(b.mul(row, width), k_))
                di = b.add(b.mul(i, stride_), c_)
                d = [t.load_vector(nd_, b.add(di, t.const(v * t.lanes))) for v in range(nb)]
                new = []
                for r in range(kb):
                    xb = t.broadcast(xi, t.const(r))
                    new += [b.call(t.fma, [d[v], xb, acc[r * nb + v]]) for v in range(nb)]
                return new

            acc = t.loop(s0_, s1_, acc, step)
            for r in range(kb):
                for v in range(nb):
                    t.store_vector(acc[r * nb + v], tile, offsets[r][v])
            return context.get_dummy_value()

        return sig, codegen

    return update_tile


# MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits.
_FLUSH_BITS = 0x8040
_X86 = llvm.get_process_triple().startswith(("x86_64", "i686", "i386"))


@intrinsic
def _control_word(typingctx, flush):
    """Sets the CPU's float control word (MXCSR) to flush subnormals, when
    ``flush``; returns the word before. On other CPUs, nothing: 0."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not _X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        i8p = ir.IntType(8).as_pointer()
        word = builder.bitcast(slot, i8p)
        fnty = ir.FunctionType(ir.VoidType(), [i8p])
        store = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.stmxcsr")
        load = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse.ldmxcsr")
        builder.call(store, [word])
        before = builder.load(slot)
        wanted = builder.icmp_signed("!=", args[0], ir.Constant(args[0].type, 0))
        flushing = builder.or_(before, ir.Constant(i32, _FLUSH_BITS))
        builder.store(builder.select(wanted, flushing, before), slot)
        builder.call(load, [word])
        return before

    return types.int32(flush), codegen


@intrinsic
def _restore_control_word(typingctx, word):
    """Puts back the control word ``_control_word`` returned."""

    def codegen(context, builder, signature, args):
        if _X86:
            slot = cgutils.alloca_once_value(builder, args[0])
            i8p = ir.IntType(8).as_pointer()
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p]), "llvm.x86.sse.ldmxcsr")
            builder.call(fn, [builder.bitcast(slot, i8p)])
        return context.get_dummy_value()

    return types.void(word), codegen


_forward1, _forward2, _forward3, _forward4 = (_forward_tile(nb) for nb in (1, 2, 3, 4))
_update1x5, _update2x5, _update3x5, _update4x5 = (_update_tile(nb, SWEEP) for nb in (1, 2, 3, 4))
_update1x1, _update2x1, _update3x1, _update4x1 = (_update_tile(nb, 1) for nb in (1, 2, 3, 4))


# ------------------------------------------------------------- the first layer


@_jit(inline="always")
def _forward_run(nb, wt, stride, c, X, rows, i, z, a0, a1, a2, a3, a4, prefetch):
    r0, r1, r2, r3, r4 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4]
    if nb == 4:
        _forward4(wt, stride, c, X, r0, r1, r2, r3, r4, z, a0, a1, a2, a3, a4, prefetch)
    elif nb == 3:
        _forward3(wt, stride, c, X, r0, r1, r2, r3, r4, z, a0, a1, a2, a3, a4, prefetch)
    elif nb == 2:
        _forward2(wt, stride, c, X, r0, r1, r2, r3, r4, z, a0, a1, a2, a3, a4, prefetch)
    else:
        _forward1(wt, stride, c, X, r0, r1, r2, r3, r4, z, a0, a1, a2, a3, a4, prefetch)


@_jit(inline="always")
def _update_run(nb, kb, wt, stride, c, k, X, rows, nd, s0, s1):
    if kb == SWEEP:
        if nb == 4:
            _update4x5(wt, stride, c, k, X, rows, nd, s0, s1)
        elif nb == 3:
            _update3x5(wt, stride, c, k, X, rows, nd, s0, s1)
        elif nb == 2:
            _update2x5(wt, stride, c, k, X, rows, nd, s0, s1)
        else:
            _update1x5(wt, stride, c, k, X, rows, nd, s0, s1)
    elif nb == 4:
        _update4x1(wt, stride, c, k, X, rows, nd, s0, s1)
    elif nb == 3:
        _update3x1(wt, stride, c, k, X, rows, nd, s0, s1)
    elif nb == 2:
        _update2x1(wt, stride, c, k, X, rows, nd, s0, s1)
    else:
        _update1x1(wt, stride, c, k, X, rows, nd, s0, s1)


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
        for t in range(tiles.shape[0]):
            _forward_run(tiles[t, 1], wt, stride, tiles[t, 0] * lanes, X, rows, i, z,
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
                _update_run(tiles[t, 1], kb, wt, stride, c, k, X, rows, nd, s0, s1)
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
    word = _control_word(flush)
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
            a_in = acts[layer - 1]
            backprop_delta(W[layer], deltas[layer][:p], a_in, deltas[layer - 1], ids)
            j0, j1 = unit_block(W[layer].shape[0], 1, 0)
            update_rows(W[layer], b[layer], deltas[layer], a_in, ids[:p], 0, j0, j1)

        minus_padded(deltas[0], p, nd)
        update_first_layer(wt, stride, lanes, tiles, X, batch, nd)
        update_bias(b[0], deltas[0], p)
    transpose_back(wt, W[0])
    _restore_control_word(word)


# ---------------------------------------------------------------- the trainer


class NumbaTiles(NumbaFused):
    name = "numba-tiles"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 flush_subnormals: bool = True):
        super().__init__(params, dtype, threads)
        self.flush_subnormals = flush_subnormals
        self.lanes = max(VECTOR_BYTES // self.dtype.itemsize, 1)
        hidden = self.sizes[1]
        width = stride(hidden, self.lanes)
        self.tiles = runs(width // self.lanes, tile_vectors())
        self._wt = empty_at_offset((self.sizes[0], width), self.dtype, 0)
        self._z = empty_at_offset((SWEEP, width), self.dtype, 0)
        self._nd: dict[int, np.ndarray] = {}

    def choices(self, batch_size: int) -> dict:
        return {"vector_bytes": VECTOR_BYTES, "lanes": self.lanes,
                "tile_vectors": [int(n) for n in self.tiles[:, 1]], "kernel": "tiles",
                "subnormals": "flushed to zero" if self.flush_subnormals and _X86 else "kept"}

    def train_epoch(self, X, y, order, batch_size, eta):
        self._check_inputs(X)
        acts, deltas, rows, identity = self._buffers_for(batch_size)
        if batch_size not in self._nd:
            self._nd[batch_size] = empty_at_offset(
                (padded(batch_size), self._wt.shape[1]), self.dtype, 0)
        labels, order = np.asarray(y, np.intp), np.asarray(order, np.intp)
        self._run(
            train_epoch_kernel, X, labels, order, int(batch_size), float(eta), self.lanes,
            self.tiles, self._wt, self._z, self._nd[batch_size], tuple(self.weights),
            tuple(self.biases), acts, deltas, rows, identity, self.flush_subnormals,
        )
