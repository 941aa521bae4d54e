"""Rust written for the machine: the counterpart of the numba backend.

One call trains the epoch, nothing is allocated inside it, and the inner loops
are compiled for AVX-512, for AVX2 with FMA and for plain x86-64, the widest
the running CPU reports being picked at run time (``rust/src/kernels/mod.rs``,
``rust/src/kernels/isa.rs``).

The first layer's products are done one of three ways: sweeping two weight
rows at a time with five samples (the numba backend's scheme, with each input
loaded once for two rows), as register tiles of five samples by up to four
vectors of hidden units over W1 held transposed (``rust/src/kernels/tiles.rs``: no
sums across lanes, and W1 read and written once per mini-batch), or as
OpenBLAS GEMMs on the gathered batch. Which is fastest depends on the
machine: on the batch size, the vector registers, and which kernels the
linked OpenBLAS picked for this CPU (Debian's OpenBLAS 0.3.21 does not know
recent Xeons and falls back to SSE3 "Prescott" kernels). So the first epoch
of each batch size times the sweep and the tiles (and, from
``CALIBRATE_GEMM_FROM``, the GEMMs) on a few of its own mini-batches, on
copies of the parameters, and keeps the fastest; ``choices(batch_size)``
reports the instruction set, the lanes, the kernel and the timings.
``kernel`` fixes the kernel, and ``gemm_from_batch`` the batch size from
which the GEMMs run (the sweep below it).
"""

from __future__ import annotations

from backends.base import Params
from backends.rust_extension import RustTrainer, extension, time_in_turns

# Below this a GEMM call costs more than its arithmetic: the GEMMs are not timed.
CALIBRATE_GEMM_FROM = 32
KERNELS = ("sweep", "tiles", "gemm")
NEVER = 2**62
# The kernel an instruction count runs (``fix_for_counting``): the sweep. The
# tiles, which the calibration picks more often, are counted through
# rust-fused-parallel, whose one part is rust-fused's tiles bit for bit, so
# the gate's counts cover both kernels.
COUNTED_KERNEL = "sweep"


class RustFused(RustTrainer):
    name = "rust-fused"
    strategy = "fused"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 isa: str | None = None, gemm_from_batch: int | None = None,
                 kernel: str | None = None):
        if kernel is not None and kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; one of {', '.join(KERNELS)}")
        super().__init__(params, dtype, threads, isa=isa, gemm_from_batch=gemm_from_batch)
        self._isa, self._fixed = isa, kernel is not None or gemm_from_batch is not None
        if kernel is not None:
            self._rust.set_kernel(kernel)
        self.calibration: dict[int, dict[str, float]] = {}

    def train_epoch(self, X, y, order, batch_size, eta):
        if not self._fixed and int(batch_size) >= 1:
            self._choose_kernel(X, y, order, int(batch_size), eta)
        super().train_epoch(X, y, order, batch_size, eta)

    def _choose_kernel(self, X, y, order, batch_size: int, eta: float) -> None:
        if batch_size not in self.calibration:
            self.calibration[batch_size] = self._time_kernels(X, y, order, batch_size, eta)
        seconds = self.calibration[batch_size]
        self._rust.set_kernel(min(seconds, key=seconds.get))

    def _time_kernels(self, X, y, order, batch_size: int, eta: float) -> dict[str, float]:
        """Seconds of this epoch's first mini-batches by each kernel, trained on
        copies: the trainer's own parameters are untouched."""
        p = self.params()
        kernels = KERNELS if batch_size >= CALIBRATE_GEMM_FROM else KERNELS[:2]
        copies = {}
        for kernel in kernels:
            copies[kernel] = extension().Trainer("fused", self.dtype.name, list(p.weights),
                                                 list(p.biases), threads=self.threads,
                                                 isa=self._isa)
            copies[kernel].set_kernel(kernel)
        return time_in_turns(copies, X, y, order, batch_size, eta)

    def fix_for_counting(self) -> None:
        """Train with the sweep from now on, calibrating nothing: an instruction count
        must run the same kernel every time, and under valgrind the calibration's
        timings of the sweep and the tiles came within 6% of each other."""
        self._rust.set_kernel(COUNTED_KERNEL)
        self._fixed = True

    def choices(self, batch_size: int) -> dict:
        chosen = dict(self._rust.choices(int(batch_size)))
        if chosen.get("gemm_from_batch", 0) >= NEVER:
            chosen["gemm_from_batch"] = None  # the GEMMs never run
        if int(batch_size) in self.calibration:
            chosen["calibration_seconds"] = self.calibration[int(batch_size)]
        return chosen
