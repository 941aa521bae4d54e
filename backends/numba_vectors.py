"""The host CPU's vector registers, and the Numba intrinsics that numba-tiles
builds its register tiles and its float control word from, in LLVM IR.

What plain ``@njit`` code cannot say: a tile of accumulators kept in registers
across a loop. Written as 160 scalar variables, LLVM neither vectorises them
(the SLP vectoriser does not bundle loop-carried values) nor keeps compile
times reasonable (13 s for one tile, which then ran scalar FMAs at 1.4 GFLOP/s
against 14 with vectors); kept in an array, every multiply-add loads and
stores it. So the two tiles are Numba intrinsics (``numba.extending.intrinsic``)
that build their loops in LLVM IR with explicit vector types, ``llvm.fma``
and ``llvm.prefetch``, and two more set and restore the control word (MXCSR)
around the epoch to flush subnormals to zero, as the Rust epochs do.

A tile's width (its vectors of hidden units, and for the update its features)
is an argument: the IR holds one loop per width and a ``switch`` picks it, so
that one intrinsic serves every run of vectors the trainer cuts.
"""

from __future__ import annotations

from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from backends.numba_fused import CACHE_LINE, SWEEP

# The widest tile, in vectors, as rust/src/kernels/layout.rs caps it; the IR
# holds a loop for every width up to it.
MAX_TILE = 4
# MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits.
FLUSH_BITS = 0x8040
X86 = llvm.get_process_triple().startswith(("x86_64", "i686", "i386"))


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


class TileIR:
    """What a tile's IR needs: the element and vector types, the arguments as
    pointers (arrays), as they are (tuples) or int64 (the rest), and the few
    instructions the tiles are written in."""

    def __init__(self, context, builder, signature, args, float_array_at: int):
        self.context, self.builder = context, builder
        self.signature, self.raw_args = signature, args
        self.elem = context.get_value_type(signature.args[float_array_at].dtype)
        self.size = context.get_abi_sizeof(self.elem)
        self.lanes = max(VECTOR_BYTES // self.size, 1)
        self.vector = ir.VectorType(self.elem, self.lanes)
        self.i64 = ir.IntType(64)
        self.args = [
            context.make_array(t)(context, builder, v).data if isinstance(t, types.Array)
            else v if isinstance(t, types.BaseTuple)
            else context.cast(builder, v, t, types.int64)
            for t, v in zip(signature.args, args)
        ]
        suffix = f"v{self.lanes}{'f64' if self.size == 8 else 'f32'}"
        self.fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vector, [self.vector] * 3), f"llvm.fma.{suffix}")

    def const(self, value: int) -> ir.Constant:
        return ir.Constant(self.i64, value)

    def columns(self, at: int):
        """The second extent of the 2-D array argument ``at``, as int64."""
        array = self.context.make_array(self.signature.args[at])(
            self.context, self.builder, self.raw_args[at])
        extent = cgutils.unpack_tuple(self.builder, array.shape)[1]
        return self.context.cast(self.builder, extent, types.intp, types.int64)

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

    def choose(self, value, choices, emit) -> None:
        """emit(c) for the c of ``choices`` that ``value`` equals, the last one
        for any other value: the tiles' widths must be constants in the IR."""
        b = self.builder
        done = b.append_basic_block("tile.chosen")
        blocks = [b.append_basic_block(f"tile.width{c}") for c in choices]
        switch = b.switch(value, blocks[-1])
        for c, block in zip(choices, blocks):
            switch.add_case(self.const(c), block)
        for c, block in zip(choices, blocks):
            b.position_at_end(block)
            emit(c)
            b.branch(done)
        b.position_at_end(done)

    def prefetch_l2(self, pointer, offset) -> None:
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            self.builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        address = self.builder.bitcast(self.at(pointer, offset), i8p)
        # read, locality 2 (_MM_HINT_T1: into L2), data
        self.builder.call(fn, [address] + [ir.Constant(i32, v) for v in (0, 2, 1)])


# Every width of tile, widest first; the last is also what any other count gets.
WIDTHS = tuple(range(MAX_TILE, 0, -1))


@intrinsic
def forward_tile(typingctx, nb, wt, stride, c, X, x0, x1, x2, x3, x4, z,
                 ahead0, ahead1, ahead2, ahead3, ahead4, prefetch):
    """z[q, c:c + nb*lanes] = sum_k W1ᵀ[k, c:c + nb*lanes] X[x_q, k] for the five
    samples' rows x_q, k over 0..n_in in order; prefetching the rows ``ahead_q``
    into L2, a cache line per feature step of a line, when ``prefetch``."""
    sig = types.void(nb, wt, stride, c, X, x0, x1, x2, x3, x4, z,
                     ahead0, ahead1, ahead2, ahead3, ahead4, prefetch)

    def codegen(context, builder, signature, args):
        t = TileIR(context, builder, signature, args, 1)
        nb_, wt_, stride_, c_, X_, *rest = t.args
        rows, z_, aheads, prefetch_ = rest[:SWEEP], rest[SWEEP], rest[SWEEP + 1:-1], rest[-1]
        width = t.columns(4)
        wants_prefetch = builder.icmp_signed("!=", prefetch_, t.const(0))

        def tile(nb: int) -> None:
            _forward_tile_ir(t, nb, wt_, stride_, c_, X_, width, rows, z_, aheads, wants_prefetch)

        t.choose(nb_, WIDTHS, tile)
        return context.get_dummy_value()

    return sig, codegen


# A pair's rows of W1ᵀ: one or two vectors (AVX-512), ``pair_fits``.
PAIR_WIDTHS = (2, 1)


def pair_fits(vectors: int, registers: int = REGISTERS) -> bool:
    """Whether the forward pass may take two sweeps in one tile: a row of W1ᵀ
    of ``vectors`` vectors with ten samples' accumulators fits in the registers
    beside its loads and one broadcast (rust/src/kernels/outer.rs's rule)."""
    return vectors * (2 * SWEEP + 1) < registers


@intrinsic
def forward_pair(typingctx, nb, wt, stride, X, rows, i, z, aheads):
    """``forward_tile`` for the ten samples of rows[i:i + 2 SWEEP] at once, over
    the whole of W1ᵀ's rows (nb vectors, ``pair_fits``): z (2 SWEEP, stride);
    prefetching the rows ``aheads`` (a tuple of ten) into L2."""
    sig = types.void(nb, wt, stride, X, rows, i, z, aheads)

    def codegen(context, builder, signature, args):
        t = TileIR(context, builder, signature, args, 1)
        nb_, wt_, stride_, X_, rows_, i_, z_, aheads_ = t.args
        ahead = [context.cast(builder, v, signature.args[-1].dtype, types.int64)
                 for v in cgutils.unpack_tuple(builder, aheads_)]
        samples = [builder.load(t.at(rows_, builder.add(i_, t.const(q)))) for q in range(2 * SWEEP)]
        width, always = t.columns(3), ir.Constant(ir.IntType(1), 1)

        def tile(nb: int) -> None:
            _forward_tile_ir(t, nb, wt_, stride_, t.const(0), X_, width, samples, z_, ahead, always)

        t.choose(nb_, PAIR_WIDTHS, tile)
        return context.get_dummy_value()

    return sig, codegen


def _forward_tile_ir(t, nb, wt_, stride_, c_, X_, width, rows, z_, aheads, wants_prefetch) -> None:
    """The tile of len(rows) samples by nb vectors from column c_: each sum over
    the features in order."""
    b = t.builder
    x = [t.at(X_, b.mul(r, width)) for r in rows]
    ahead = [t.at(X_, b.mul(r, width)) for r in aheads]
    line = CACHE_LINE // t.size
    samples = len(rows)

    def step(k, acc):
        on_line = b.icmp_signed("==", b.and_(k, t.const(line - 1)), t.const(0))
        with b.if_then(b.and_(wants_prefetch, on_line), likely=False):
            for row in ahead:
                t.prefetch_l2(row, k)
        base = b.add(b.mul(k, stride_), c_)
        w = [t.load_vector(wt_, b.add(base, t.const(v * t.lanes))) for v in range(nb)]
        new = []
        for q in range(samples):
            xb = t.broadcast(x[q], k)
            new += [b.call(t.fma, [w[v], xb, acc[q * nb + v]]) for v in range(nb)]
        return new

    acc = t.loop(t.const(0), width, [t.zeros()] * (samples * nb), step)
    for q in range(samples):
        for v in range(nb):
            offset = b.add(b.mul(t.const(q), stride_), b.add(c_, t.const(v * t.lanes)))
            t.store_vector(acc[q * nb + v], z_, offset)


@intrinsic
def update_tile(typingctx, nb, kb, wt, stride, c, k, X, rows, nd, s0, s1):
    """W1ᵀ[k + r, c:c + nb*lanes] += X[rows[i], k + r] nd[i, c:c + nb*lanes] for
    r < kb and the samples s0 <= i < s1 in order, the tile in registers; kb is
    SWEEP or (any other value) 1."""
    sig = types.void(nb, kb, wt, stride, c, k, X, rows, nd, s0, s1)

    def codegen(context, builder, signature, args):
        t = TileIR(context, builder, signature, args, 2)
        nb_, kb_, wt_, stride_, c_, k_, X_, rows_, nd_, s0_, s1_ = t.args
        width = t.columns(6)
        b = builder
        tile = t.at(wt_, b.add(b.mul(k_, stride_), c_))

        def tile_of(nb: int, kb: int) -> None:
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

        t.choose(kb_, (SWEEP, 1), lambda kb: t.choose(nb_, WIDTHS, lambda nb: tile_of(nb, kb)))
        return context.get_dummy_value()

    return sig, codegen


def _set_control_word(builder, slot) -> None:
    """Load MXCSR from the int32 at ``slot``."""
    i8p = ir.IntType(8).as_pointer()
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p]), "llvm.x86.sse.ldmxcsr")
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def control_word(typingctx, flush):
    """Sets the CPU's float control word (MXCSR) to flush subnormals, when
    ``flush``; returns the word before. On other CPUs, nothing: 0."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        i8p = ir.IntType(8).as_pointer()
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p]), "llvm.x86.sse.stmxcsr")
        builder.call(store, [builder.bitcast(slot, i8p)])
        before = builder.load(slot)
        wanted = builder.icmp_signed("!=", args[0], ir.Constant(args[0].type, 0))
        flushing = builder.or_(before, ir.Constant(i32, FLUSH_BITS))
        builder.store(builder.select(wanted, flushing, before), slot)
        _set_control_word(builder, slot)
        return before

    return types.int32(flush), codegen


@intrinsic
def restore_control_word(typingctx, word):
    """Puts back the control word ``control_word`` returned."""

    def codegen(context, builder, signature, args):
        if X86:
            _set_control_word(builder, cgutils.alloca_once_value(builder, args[0]))
        return context.get_dummy_value()

    return types.void(word), codegen
