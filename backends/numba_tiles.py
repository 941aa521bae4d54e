"""Numba running rust-fused's tiles kernel: the first layer as register tiles over W1ᵀ.

The same algorithm as ``rust/src/kernels/tiles.rs`` (see "The tiles kernel" in the
README), in the same order of operations:

- W1 is held transposed for the epoch, (n_in, stride), each row of hidden units
  padded with zeros to whole vectors; it is transposed in at the start of the
  epoch and back at the end.
- forward: a tile of ``SWEEP`` samples by up to four vectors of hidden units
  stays in registers while the 784 input features pass; per feature k, one load
  of each vector of W1ᵀ[k] and a broadcast of each sample's x[k] feed
  ``SWEEP * nb`` multiply-adds (outer products: no sums across lanes); two
  sweeps in one tile where a row of W1ᵀ is at most two vectors and the
  registers hold ten samples' accumulators (``numba_vectors.pair_fits``).
  While the first tile of a sweep runs, the rows of X of the samples after it
  (past the batch's last sweep, the next batch's) are prefetched into L2.
- update: a tile of ``SWEEP`` features by the same vectors of W1ᵀ stays in
  registers while 64 samples of the padded mini-batch pass, each adding x_i[k]
  times its -delta1; W1ᵀ is read and written once per 64 samples.
- the deeper layers' forward pass and update run the same tiles over their
  own Wᵀ, each layer's outputs padded to whole vectors, as rust-fused's sweep
  and tiles run them (``sweep::Deeper``); W's rows are brought up to date from
  Wᵀ after every update for backprop, which, with the output error, runs as
  the numba backend's sweep does (``numba_fused``), the terms in the order
  of rust-fused's.
- a mini-batch whose rows of X take more than 1 MB (float64 from 166
  samples at width 784) goes forward, back to delta1 and into a copy of W1ᵀ
  in blocks of 60 samples, so that its rows come from memory once; the
  deeper layers' updates follow from the whole mini-batch, and the bits are
  those of one pass.

The machine facts are the Rust kernel's: the vector width and the register count
come from the host CPU's instruction set as LLVM reports it (AVX-512: 64 bytes
and 32 registers, so four vectors per tile; AVX2 with FMA: 32 bytes and 16, so
two; otherwise SSE2's 16 bytes), and the hidden units are cut into runs of at
most that many vectors, as even as the count allows.

The tiles are Numba intrinsics that emit LLVM vector IR, and two more flush
subnormals to zero around the epoch as the Rust epochs do
(``backends.numba_vectors``, which says why plain ``@njit`` code cannot keep
a tile in registers); the kernels that drive them are ordinary ``@njit``
code (``backends.numba_tiles_kernels``). What stays as Numba has it:
backprop's loops end in scalar remainders where Rust does one masked vector
step (6 of 30 float64 units, 14 in float32).
"""

from __future__ import annotations

import numpy as np

from backends.base import Params
from backends.numba_fused import SWEEP, NumbaFused, empty_at_offset, padded
from backends.numba_tiles_kernels import block_samples, train_epoch_kernel
from backends.numba_vectors import MAX_TILE, REGISTERS, VECTOR_BYTES, X86


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


class NumbaTiles(NumbaFused):
    name = "numba-tiles"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 flush_subnormals: bool = True):
        super().__init__(params, dtype, threads)
        self.flush_subnormals = flush_subnormals
        self.lanes = max(VECTOR_BYTES // self.dtype.itemsize, 1)
        # Per layer (index = layer): its outputs padded to whole vectors, cut
        # into runs of tiles; its Wᵀ; two sweeps' sums; the batch's -delta by
        # batch size (``_nd``).
        widths = [stride(n, self.lanes) for n in self.sizes[1:]]
        self._tiles = tuple(runs(w // self.lanes, tile_vectors()) for w in widths)
        self._wt = tuple(empty_at_offset((n_in, w), self.dtype, 0)
                         for n_in, w in zip(self.sizes[:-1], widths))
        self._z = tuple(empty_at_offset((2 * SWEEP, w), self.dtype, 0) for w in widths)
        # The next W1ᵀ while a mini-batch cut into blocks is updated.
        self._spare = empty_at_offset(self._wt[0].shape, self.dtype, 0)
        self._nd: dict[int, tuple[np.ndarray, ...]] = {}

    def choices(self, batch_size: int) -> dict:
        chosen = {"vector_bytes": VECTOR_BYTES, "lanes": self.lanes,
                  "tile_vectors": [int(n) for n in self._tiles[0][:, 1]], "kernel": "tiles"}
        if (blocks := self.block_samples(batch_size)) is not None:
            chosen["block_samples"] = blocks
        chosen["subnormals"] = "flushed to zero" if self.flush_subnormals and X86 else "kept"
        return chosen

    def block_samples(self, batch_size: int) -> int | None:
        """Samples per block where a mini-batch of ``batch_size`` is cut into
        blocks, by rust-fused's tiles kernel's rule; None in one pass."""
        size = block_samples(padded(batch_size), self.sizes[0], self.dtype.itemsize,
                             len(self.sizes) - 1)
        return int(size) or None

    def train_epoch(self, X, y, order, batch_size, eta):
        self._check_inputs(X)
        acts, deltas, rows, identity = self._buffers_for(batch_size)
        if batch_size not in self._nd:
            self._nd[batch_size] = tuple(
                empty_at_offset((padded(batch_size), wt.shape[1]), self.dtype, 0)
                for wt in self._wt)
        labels, order = np.asarray(y, np.intp), np.asarray(order, np.intp)
        self._run(
            train_epoch_kernel, X, labels, order, int(batch_size), float(eta), self.lanes,
            self._tiles, self._wt, self._spare, self._z, self._nd[batch_size], tuple(self.weights),
            tuple(self.biases), acts, deltas, rows, identity, self.flush_subnormals,
        )
