"""The benchmark worker's side of a Dask cluster: its settings, the task that runs
one cell, the pinning of a local cluster's workers, and ``serve``, behind
``python -m harness worker``. Imports ``distributed``: only the cluster's own
code imports this module, so that the harness runs without Dask installed.

A benchmark worker runs one cell at a time, which every cell enforces by asking
for one unit of the worker resource ``bench`` (a worker offers one); it is not
daemonic, so that a cell can start the harness's worker processes; it has no
memory limit, which would count the memory of those processes against it and
kill it; and Dask's sampling profiler, its GIL monitor and its frequent ticks
of the event loop are off or slowed, so that they do not share the cores with
what is being timed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import dask
from distributed import Worker, WorkerPlugin, get_worker
from distributed.worker import thread_state

from harness.running import cell, provenance

BENCH = "bench"
# Dask's settings for a benchmark worker (and for a local cluster's nannies).
WORKER_CONFIG = {
    "distributed.worker.daemon": False,
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": False,
    "distributed.admin.tick.interval": "1s",  # default 20ms
    "distributed.admin.system-monitor.interval": "5s",  # default 500ms
    "distributed.admin.system-monitor.gil.enabled": False,
    # A nanny sets OMP_NUM_THREADS=1 and MKL_NUM_THREADS=1 by default, which would
    # change the threads every backend's libraries start with.
    "distributed.nanny.pre-spawn-environ": {},
}
WORKER_OPTIONS = {"nthreads": 1, "resources": {BENCH: 1}, "memory_limit": 0}


def cluster_cell(message: dict) -> dict:
    """The task of one cell (``harness.running.cell``), stopped as soon as the client
    cancels it or goes away."""
    worker, key = get_worker(), thread_state.key

    def cancelled() -> bool:
        task = worker.state.tasks.get(key)
        return task is None or task.state not in ("executing", "long-running")

    return cell.run_cell(message, should_stop=cancelled)


def describe_worker() -> dict:
    """The worker's machine, as its cells will record it."""
    provenance.pin_thread()
    return provenance.describe()


class PinCores(WorkerPlugin):
    """Holds each worker of a local cluster to its own set of cores, chosen by the
    worker's name (0 .. N-1), also when its nanny restarts it."""

    name = "nndl-bench-pin-cores"

    def __init__(self, core_sets: list[list[int]]):
        self.core_sets = core_sets

    def setup(self, worker) -> None:
        cores = set(self.core_sets[int(worker.name) % len(self.core_sets)])
        pin_process(cores)


def pin_process(cores: set[int]) -> None:
    """Every thread of this process, and whatever it starts, on ``cores``."""
    os.environ[provenance.CORES_VARIABLE] = provenance.format_cores(cores)
    if not hasattr(os, "sched_setaffinity"):
        return
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cores)
        except OSError:
            pass  # a thread that has just ended
    os.sched_setaffinity(0, cores)


def serve(address: str, name: str | None = None, cores: set[int] | None = None,
          timeout: float = 30.0) -> None:
    """Run a benchmark worker for the scheduler at ``address`` (tcp://HOST:PORT) until
    it closes or SIGINT/SIGTERM; OSError or TimeoutError when the scheduler cannot
    be reached within ``timeout`` seconds."""
    if cores:
        pin_process(cores)
    with dask.config.set(WORKER_CONFIG):
        asyncio.run(_serve(address, name, timeout))


async def _serve(address: str, name: str | None, timeout: float) -> None:
    worker = Worker(address, name=name, death_timeout=timeout, dashboard=False,
                    **WORKER_OPTIONS)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.close()))
    async with worker:
        await worker.finished()
