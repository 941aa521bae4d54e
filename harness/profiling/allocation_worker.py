"""The child that counts allocations: ``python -m harness.profiling.allocation_worker FOLDER``.

It builds the trainer exactly as the timed worker does (``harness.jobs.job.prepare``, from
the same pickled ``Job``, on the threads the timed run asked for, so the
two cannot drift apart), trains the warm-up epochs, at least one, so that JIT
compilation and the buffers a trainer makes once stay out of the count, then
trains ``epochs`` more under memray's ``Tracker`` and tallies the capture.

memray interposes the C allocator's entry points and ``mmap`` in every loaded
shared object and on every thread, so NumPy's arrays, the Rust extension's
(Rust's global allocator calls ``malloc``), Numba's NRT, libtorch's and XLA's
buffers are all seen, and so are BLAS's worker threads. The shuffles are
drawn before tracking starts, so a trainer that allocates nothing in an epoch
counts 0 (tests/test_allocations.py checks a near-0).

FOLDER holds the job (``job.pickle``, an ``AllocationJob``), the capture
(``capture.bin``, which the parent deletes with the folder) and, at the end,
``result.json``: the totals over the counted epochs, how many, on how many
threads, and how long each phase took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.jobs.child import child_main, read_job

if TYPE_CHECKING:
    from harness.jobs.job import Job

CAPTURE_FILE = "capture.bin"
# What counts as an allocation: a call that asks the C allocator for a block.
# A realloc counts once, at its new size (it may move the block). mmap is
# counted apart: a library maps pages with it (pymalloc's arenas, JIT code,
# thread stacks), not the per-array blocks the post spoke of, and a large
# malloc that glibc serves with mmap is already counted as its malloc (glibc's
# own mmap call does not pass through the interposed symbol).
ALLOCATING = ("MALLOC", "CALLOC", "REALLOC", "POSIX_MEMALIGN", "ALIGNED_ALLOC", "MEMALIGN",
              "VALLOC", "PVALLOC")


@dataclass(frozen=True)
class AllocationJob:
    job: Job  # the timed run's job, threads and all
    epochs: int  # counted after the warm-up; the totals are divided by it


def tally(capture: Path) -> dict[str, int]:
    """Allocating calls, the bytes they asked for, and mmap calls, in a memray capture
    of every allocation (``FileFormat.ALL_ALLOCATIONS``)."""
    import memray

    allocating = {int(memray.AllocatorType[name]) for name in ALLOCATING}
    mmap = int(memray.AllocatorType.MMAP)
    allocations = nbytes = mmaps = 0
    for record in memray.FileReader(capture).get_allocation_records():
        allocator = int(record.allocator)
        if allocator in allocating:
            allocations += record.n_allocations
            nbytes += record.size
        elif allocator == mmap:
            mmaps += record.n_allocations
    return {"allocations": allocations, "bytes": nbytes, "mmaps": mmaps}


def tracked_epochs(setup, cfg, orders, epochs: int, capture: Path) -> float:
    """Train ``epochs`` epochs under the Tracker; the seconds they took, tracked."""
    import memray

    # Every allocation, not the aggregated format: that one keeps only what is
    # live at the peak and at the end, and its total counts aggregated records.
    # No native stacks and no pymalloc: not needed to count, and both slow the
    # epoch down; a Python object too big for pymalloc (over 512 bytes) reaches
    # malloc and is counted as it is.
    tracker = memray.Tracker(capture, native_traces=False, trace_python_allocators=False,
                             file_format=memray.FileFormat.ALL_ALLOCATIONS)
    shuffles = [next(orders) for _ in range(epochs)]  # drawn outside: not the trainer's
    start = time.perf_counter()
    with tracker:
        for order in shuffles:
            setup.trainer.train_epoch(setup.X, setup.y, order, cfg.batch_size, cfg.eta)
    return time.perf_counter() - start


def run(allocation_job: AllocationJob, folder: Path) -> dict:
    """Start-up, warm-up, the counted epochs and their tally, as result.json says them."""
    from harness.jobs.job import epoch_orders, prepare

    started = time.perf_counter()
    cfg = allocation_job.job.config
    setup = prepare(allocation_job.job)
    orders = epoch_orders(cfg.seed, len(setup.X))
    prepared = time.perf_counter()
    for _ in range(max(cfg.warmup_epochs, 1)):
        setup.trainer.train_epoch(setup.X, setup.y, next(orders), cfg.batch_size, cfg.eta)
    warm = time.perf_counter()
    tracked = tracked_epochs(setup, cfg, orders, allocation_job.epochs, folder / CAPTURE_FILE)
    counted = time.perf_counter()
    totals = tally(folder / CAPTURE_FILE)
    return {**totals, "epochs": allocation_job.epochs, "threads": setup.threads,
            "startup_seconds": prepared - started, "warmup_seconds": warm - prepared,
            "tracked_seconds": tracked, "tally_seconds": time.perf_counter() - counted}


def work(folder: Path) -> dict:
    return run(read_job(folder), folder)


if __name__ == "__main__":
    child_main(work)
