"""One backend, in a process of its own, streaming its epoch records.

Each backend runs in a fresh process, as pyperf and asv run benchmarks: one
backend's heap, JIT state or crash cannot touch another's figures, and the
process's peak resident memory is that backend's. The worker loads the data,
builds the trainer from the seeded parameters and trains, sending a message
after every epoch through a pipe; the parent writes the reports.
"""

from __future__ import annotations

import resource
import sys
import time
import traceback
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from harness.jobs.job import Job, epoch_orders, prepare
from harness.jobs.lifeline import die_with_parent
from harness.records import DIVERGED, FAILED, OK, EpochRecord


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
