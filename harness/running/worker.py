"""One backend, in a process of its own, streaming its epoch records.

Each backend runs in a fresh process, as pyperf and asv run benchmarks: one
backend's heap, JIT state or crash cannot touch another's figures, and the
process's peak resident memory is that backend's. The worker loads the data,
builds the trainer from the seeded parameters and trains, sending a message
after every epoch through a pipe; the parent writes the reports.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from harness.config import RunConfig
from harness.records import DIVERGED, FAILED, OK, EpochRecord
from harness.running.lifeline import die_with_parent

if TYPE_CHECKING:
    from backends.base import Trainer
    from harness.data.catalogue import Dataset


@dataclass(frozen=True)
class Job:
    """What a worker needs: the run's settings, the backend, the dataset to load."""

    config: RunConfig
    backend: str
    dataset: str  # resolved: never "auto", so every worker loads the same data
    run_id: str


def epoch_orders(seed: int, n_samples: int):
    """The shuffle of every epoch, warm-up included: the same for every backend.

    Drawn from its own stream so that it does not depend on how the parameters
    were initialised.
    """
    rng = np.random.default_rng([seed, 1])
    while True:
        yield rng.permutation(n_samples)


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux; a no-op elsewhere), so that
    the temporaries of loading or generating the data do not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB.

    On Linux, VmHWM: ru_maxrss would carry over the parent's peak through the
    fork that starts a spawned worker, so every backend would report at least
    the parent's memory. Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _limit_threads(threads: int | None):
    """Set BLAS (and Numba) threads before the backend's modules are imported."""
    if threads is not None:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    from threadpoolctl import threadpool_info, threadpool_limits

    limiter = threadpool_limits(limits=threads, user_api="blas") if threads else None
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return limiter, (threads or (blas[0] if blas else os.cpu_count() or 1))


def main(job: Job, conn: Connection) -> None:
    """Entry point of the worker process; every outcome becomes a message."""
    die_with_parent()
    try:
        _train(job, conn)
    except KeyboardInterrupt:
        pass  # the parent saw the same Ctrl-C and records the interruption
    except BaseException as e:  # noqa: BLE001 - any failure is a result to report
        conn.send(("error", FAILED, f"{type(e).__name__}: {e}", traceback.format_exc()))
    finally:
        conn.close()


@dataclass
class Setup:
    """A trainer ready to train, and the arrays it trains and is evaluated on."""

    trainer: Trainer
    data: Dataset
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    threads: int


def prepare(job: Job) -> Setup:
    """Limit threads, load the data and build the trainer, as every child process does.

    Shared by the timed worker and the profiled one, so that both train on the
    same arrays from the same parameters.
    """
    import backends
    from backends.base import init_params, trainer_threads
    from harness.data.catalogue import load_dataset

    cfg = job.config
    _, threads = _limit_threads(cfg.threads)
    data = load_dataset(
        job.dataset, data_dir=cfg.data_dir, n_train=cfg.n_train,
        input_size=cfg.sizes[0], seed=cfg.seed, download=False,
    )
    # Converted once, outside the timed region: every backend gets contiguous
    # arrays of its dtype and starts from the same parameters.
    X = np.ascontiguousarray(data.train_images, dtype=cfg.dtype)
    y = np.ascontiguousarray(data.train_labels)
    X_test = np.ascontiguousarray(data.test_images, dtype=cfg.dtype)
    # None unless --threads was given: each backend then keeps its own default
    # (numpy-gemm: one BLAS thread) and reports the count it uses as ``threads``.
    trainer = backends.create(job.backend, init_params(cfg.sizes, cfg.seed), cfg.dtype,
                              cfg.threads)
    threads = trainer_threads(trainer) or threads
    return Setup(trainer, data, X, y, X_test, threads)


def _train(job: Job, conn: Connection) -> None:
    from backends.base import compile_seconds, epoch_flops, trainer_choices

    cfg = job.config
    setup = prepare(job)
    reset_peak_rss()  # the backend's peak: its data and training, not how the data was made
    trainer, data, X, y, X_test = setup.trainer, setup.data, setup.X, setup.y, setup.X_test
    threads = setup.threads
    conn.send(("started", {"threads": threads}))

    n = len(X)
    flops = epoch_flops(cfg.sizes, n, cfg.batch_size)
    orders = epoch_orders(cfg.seed, n)
    for _ in range(cfg.warmup_epochs):
        start = time.perf_counter_ns()
        trainer.train_epoch(X, y, next(orders), cfg.batch_size, cfg.eta)
        conn.send(("warmup", (time.perf_counter_ns() - start) / 1e9))

    for epoch in range(1, cfg.epochs + 1):
        order = next(orders)
        start = time.perf_counter_ns()
        trainer.train_epoch(X, y, order, cfg.batch_size, cfg.eta)
        seconds = (time.perf_counter_ns() - start) / 1e9
        finite = trainer.params().is_finite()
        start = time.perf_counter_ns()
        # NumPy's BLAS on one thread for the evaluation: OpenBLAS's workers spin
        # for a while after each call, and on 2 cores they held the next timed
        # epoch of a two-thread backend to 0.14 s against 0.087 s.
        with threadpool_limits(limits=1, user_api="blas"):
            accuracy = float(np.mean(np.asarray(trainer.predict(X_test)) == data.test_labels))
        eval_seconds = (time.perf_counter_ns() - start) / 1e9
        record = EpochRecord(
            run_id=job.run_id,
            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            backend=job.backend, dtype=cfg.dtype, sizes=cfg.sizes_label,
            batch_size=cfg.batch_size, eta=cfg.eta, seed=cfg.seed, dataset=data.name,
            n_train=n, threads=threads, epoch=epoch, seconds=seconds,
            samples_per_s=n / seconds, gflops=flops / seconds / 1e9,
            accuracy=accuracy, eval_seconds=eval_seconds, status=OK if finite else DIVERGED,
        )
        conn.send(("epoch", record, peak_rss_mb()))
        if not finite:
            message = f"parameters became NaN or infinite in epoch {epoch}"
            conn.send(("error", DIVERGED, message, ""))
            return
    conn.send(("done", {
        "compile_seconds": compile_seconds(trainer),
        "choices": trainer_choices(trainer, cfg.batch_size),
        "peak_rss_mb": peak_rss_mb(),
    }))
