"""The profiled child: ``python -m harness.profiling.profile_worker FOLDER``, sampled by py-spy.

It loads the data and builds the trainer exactly as the timed worker does
(``harness.jobs.job.prepare``, from the same pickled ``Job``, so the two cannot
drift apart), runs the warm-up epochs, at least one, so that JIT compilation
stays out of the profiled epochs, then trains in ``profiled_epochs`` until
they have lasted long enough for the sampler to take the samples asked for.
``profiled_epochs`` is the frame the time breakdown anchors on: the warm-up
epochs pass through ``train_epoch`` too, but not through it.

FOLDER holds the job (``job.pickle``, a ``ProfileJob``), the handshake files of
``harness.profiling.pyspy`` (phase 1: start-up and warm-up, phase 2: the profiled
epochs) and, at the end, ``result.json``: how many epochs were profiled, how
long each phase took by this process's clock, and with how many threads.
Nothing heavy is imported before phase 1 starts, so that it sees every import.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.jobs.child import child_main, read_job
from harness.profiling.pyspy import allow_parent_to_trace, wait_for_sampler

if TYPE_CHECKING:
    from harness.jobs.job import Job, Setup

# The name of the function whose frames mark the profiled epochs.
PROFILED_FRAME = "profiled_epochs"
# However short an epoch, this many at most: a bound on the profile of a tiny run.
MAX_EPOCHS = 1000


@dataclass(frozen=True)
class ProfileJob:
    job: Job
    min_seconds: float  # train at least this long in the profiled epochs
    # Whether every thread is sampled (perf): the job then keeps its threads. Else
    # py-spy alone samples, which sees only threads that run Python, and the job's
    # config has threads=1 and BLAS is held to one thread here.
    all_threads: bool = False


def profiled_epochs(setup: Setup, cfg, orders, min_seconds: float,
                    windows: list[tuple[int, int]] | None = None) -> tuple[int, float]:
    """Train whole epochs until ``min_seconds`` have passed; (epochs, seconds).
    Each epoch's start and end on CLOCK_MONOTONIC go to ``windows``: perf stamps
    its samples on that clock, and so tells the training's samples on every
    thread from the rest."""
    epochs, seconds = 0, 0.0
    while epochs < 1 or (seconds < min_seconds and epochs < MAX_EPOCHS):
        order = next(orders)
        start, stamp = time.perf_counter(), time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        setup.trainer.train_epoch(setup.X, setup.y, order, cfg.batch_size, cfg.eta)
        seconds += time.perf_counter() - start
        if windows is not None:
            windows.append((stamp, time.clock_gettime_ns(time.CLOCK_MONOTONIC)))
        epochs += 1
    return epochs, seconds


def run(profile_job: ProfileJob, folder: Path, started: float) -> dict:
    """Start-up, warm-up, then the profiled epochs; ``started`` is when phase 1 began."""
    from threadpoolctl import threadpool_limits

    from harness.jobs.job import epoch_orders, prepare

    cfg = profile_job.job.config
    setup = prepare(profile_job.job)
    prepared = time.perf_counter()
    orders = epoch_orders(cfg.seed, len(setup.X))
    for _ in range(max(cfg.warmup_epochs, 1)):
        setup.trainer.train_epoch(setup.X, setup.y, next(orders), cfg.batch_size, cfg.eta)
    if not profile_job.all_threads:
        # Once more: a BLAS library loaded since the first limit, by the backend's
        # import or its JIT compilation (Numba's np.dot loads SciPy's BLAS), escaped
        # it, and its worker threads would be invisible to py-spy.
        threadpool_limits(limits=1, user_api="blas")
    warm = time.perf_counter()
    windows: list[tuple[int, int]] = []
    wait_for_sampler(folder, 2)
    epochs, seconds = profiled_epochs(setup, cfg, orders, profile_job.min_seconds, windows)
    return {"epochs": epochs, "seconds": seconds, "threads": setup.threads,
            "blas_threads": _blas_threads(), "startup_seconds": prepared - started,
            "warmup_seconds": warm - prepared, "windows": windows, "pid": os.getpid(),
            "numba": "numba" in sys.modules}


def _blas_threads() -> int | None:
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


def work(folder: Path) -> dict:
    """Phase 1 begins once py-spy samples this process: only then is the job
    read, so that the sampler sees every import it brings."""
    allow_parent_to_trace()
    wait_for_sampler(folder, 1)
    started = time.perf_counter()
    return run(read_job(folder), folder, started)


if __name__ == "__main__":
    child_main(work)  # it dies with its parent; py-spy, sampling it, ends with it
