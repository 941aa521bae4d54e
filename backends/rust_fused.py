"""Rust written for the machine: the counterpart of the numba backend.

One call trains the epoch, nothing is allocated inside it, and the inner loops
are compiled for AVX-512, for AVX2 with FMA and for plain x86-64, the widest
the running CPU reports being picked at run time (``rust/src/fused.rs``,
``rust/src/simd.rs``).

Each layer's products are done one of two ways: sweeping two weight rows at a
time with five samples (the numba backend's scheme, with each input loaded
once for two rows), or as OpenBLAS GEMMs on the gathered batch. Which is
faster depends on the machine: on the batch size, and on which kernels the
linked OpenBLAS picked for this CPU (Debian's OpenBLAS 0.3.21 does not know
recent Xeons and falls back to SSE3 "Prescott" kernels, which lose to the
sweep at every batch size). So for batches of ``CALIBRATE_FROM`` and more,
the first epoch of each batch size times both on a few of its own
mini-batches, on copies of the parameters, and keeps the faster;
``choices(batch_size)`` reports the instruction set, the lanes, the kernel
and the timings. ``gemm_from_batch`` fixes the choice instead.
"""

from __future__ import annotations

import time

from backends.base import Params
from backends.rust_extension import RustTrainer, _integers, extension

# Below this the sweep wins everywhere measured: a GEMM call costs more than its arithmetic.
CALIBRATE_FROM = 32
PROBE_BATCHES = 8
NEVER = 2**62


class RustFused(RustTrainer):
    name = "rust-fused"
    strategy = "fused"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 isa: str | None = None, gemm_from_batch: int | None = None):
        super().__init__(params, dtype, threads, isa=isa, gemm_from_batch=gemm_from_batch)
        self._isa, self._fixed = isa, gemm_from_batch is not None
        self.calibration: dict[int, dict[str, float]] = {}

    def train_epoch(self, X, y, order, batch_size, eta):
        if not self._fixed:
            self._choose_kernel(X, y, order, int(batch_size), eta)
        super().train_epoch(X, y, order, batch_size, eta)

    def _choose_kernel(self, X, y, order, batch_size: int, eta: float) -> None:
        if batch_size < CALIBRATE_FROM:
            self._rust.set_gemm_from_batch(NEVER)
            return
        if batch_size not in self.calibration:
            self.calibration[batch_size] = self._time_kernels(X, y, order, batch_size, eta)
        seconds = self.calibration[batch_size]
        self._rust.set_gemm_from_batch(batch_size if seconds["gemm"] < seconds["sweep"] else NEVER)

    def _time_kernels(self, X, y, order, batch_size: int, eta: float) -> dict[str, float]:
        """Seconds for the first few mini-batches of this epoch by each kernel,
        trained on copies: the trainer's own parameters are untouched."""
        p = self.params()
        probe = _integers(order, "order")[: batch_size * PROBE_BATCHES]
        labels = _integers(y, "y")
        seconds = {}
        for kernel, gemm_from in (("sweep", NEVER), ("gemm", 1)):
            copy = extension().Trainer("fused", self.dtype.name, list(p.weights), list(p.biases),
                                       threads=self.threads, isa=self._isa,
                                       gemm_from_batch=gemm_from)
            copy.train_epoch(X, labels, probe, batch_size, float(eta))  # first touch of the buffers
            start = time.perf_counter()
            copy.train_epoch(X, labels, probe, batch_size, float(eta))
            seconds[kernel] = time.perf_counter() - start
        return seconds

    def choices(self, batch_size: int) -> dict:
        chosen = dict(self._rust.choices(int(batch_size)))
        if int(batch_size) in self.calibration:
            chosen["calibration_seconds"] = self.calibration[int(batch_size)]
        return chosen
