"""Backends that misbehave on purpose, loaded through $NNDL_BENCH_PLUGINS so
that worker processes find them too."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from backends.numpy_gemm import NumpyGemm


class _Counting(NumpyGemm):
    def __init__(self, params, dtype="float64", threads=None):
        super().__init__(params, dtype, threads)
        self.calls = 0

    def train_epoch(self, X, y, order, batch_size, eta):
        self.calls += 1
        super().train_epoch(X, y, order, batch_size, eta)


class FailsInSecondEpoch(_Counting):
    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        if self.calls == 2:
            raise RuntimeError("deliberate failure in the second epoch")


class CrashesInSecondTimedEpoch(_Counting):
    """Killed as the out-of-memory killer would: after the warm-up and one timed epoch."""

    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        if self.calls == 3:
            os.kill(os.getpid(), signal.SIGKILL)


class Diverges(_Counting):
    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        self.weights[0][0, 0] = np.nan


class Sleepy(NumpyGemm):
    """numpy-gemm plus a pause per epoch: slow enough to interrupt, or to time out."""

    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        time.sleep(float(os.environ.get("FAKE_SLEEP_SECONDS", "1.0")))


class SixTimesSlowerGemm(NumpyGemm):
    """numpy-gemm doing every epoch six times: a real slowdown of the same kind of
    work, registered under numpy-gemm's own name to play a regression. Six, not
    three: on a 2-core Xeon whose cores faltered, three times the work once
    measured 1.20x the twin's time, with an interval of 0.82-2.88."""

    def train_epoch(self, X, y, order, batch_size, eta):
        for _ in range(6):
            super().train_epoch(X, y, order, batch_size, eta)


class GemmWithStep(NumpyGemm):
    """numpy-gemm plus a step of pure Python per epoch, a function of its own that a
    profile can find; ``GemmWithSlowerStep`` makes that one function slower."""

    STEP_ITERATIONS = 1_000

    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        self.bookkeeping_step(self.STEP_ITERATIONS)

    @staticmethod
    def bookkeeping_step(iterations: int) -> int:
        total = 0
        for i in range(iterations):
            total += i * i % 7
        return total


class GemmWithSlowerStep(GemmWithStep):
    STEP_ITERATIONS = 200_000


PLUGINS = ",".join(
    f"{name}=fake_backends:{cls}"
    for name, cls in [("fails", "FailsInSecondEpoch"), ("crashes", "CrashesInSecondTimedEpoch"),
                      ("diverges", "Diverges"), ("sleepy", "Sleepy"),
                      ("allocates", "AllocatesPerBatch"),
                      ("allocates-nothing", "AllocatesNothingPerBatch")]
)


class ChoosesItsKernel(NumpyGemm):
    """numpy-gemm reporting a choice that depends on the batch size, as a trainer
    that picks its kernel for the machine does."""

    def choices(self, batch_size):
        return {"kernel": "gemm" if batch_size >= 32 else "sweep", "batch_size": batch_size}


class PredictsOnlyOnOneBlasThread(NumpyGemm):
    """numpy-gemm whose predictions are right only while NumPy's BLAS runs on
    one thread: its accuracy says how the harness evaluated it."""

    def predict(self, X):
        from threadpoolctl import threadpool_info

        threads = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
        labels = super().predict(X)
        return labels if threads == {1} else np.full_like(labels, -1)


class AllocatesPerBatch(NumpyGemm):
    """Trains nothing: per mini-batch, ARRAYS_PER_BATCH fresh arrays of ARRAY_BYTES each,
    a known number of allocations for the allocation count to find."""

    ARRAYS_PER_BATCH, ARRAY_BYTES = 4, 80_000

    def train_epoch(self, X, y, order, batch_size, eta):
        for _ in range(0, len(order), batch_size):
            # kept until the next batch replaces them, so none is reused from a cache
            self.kept = [np.ones(self.ARRAY_BYTES // 8) for _ in range(self.ARRAYS_PER_BATCH)]


class AllocatesNothingPerBatch(NumpyGemm):
    """Trains nothing: per mini-batch, arithmetic in place on a buffer made once."""

    def train_epoch(self, X, y, order, batch_size, eta):
        for _ in range(0, len(order), batch_size):
            np.multiply(self.weights[0], 1.0, out=self.weights[0])


class GemmWithExtraExp(NumpyGemm):
    """numpy-gemm plus ``np.exp`` over a share of X's rows every epoch: about 2% more
    instructions per epoch (counted under valgrind), a regression too small for a
    time on a shared machine to show and large enough for a count to."""

    EXTRA_ROWS_SHARE = 0.055

    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
        np.exp(X[: max(1, int(len(X) * self.EXTRA_ROWS_SHARE))])


class FixesForCounting(_Counting):
    """numpy-gemm that says whether ``fix_for_counting`` came before its first epoch."""

    instances: list = []

    def __init__(self, params, dtype="float64", threads=None):
        super().__init__(params, dtype, threads)
        self.fixed_before_first_epoch = False
        FixesForCounting.instances.append(self)

    def fix_for_counting(self):
        self.fixed_before_first_epoch = self.calls == 0

    def choices(self, batch_size):
        return {"kernel": "fixed" if self.fixed_before_first_epoch else "timed"}
