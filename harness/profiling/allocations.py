"""Allocations per epoch: how many blocks each backend asks the C allocator for in
an epoch, and how many bytes, counted by memray.

The post this project reproduces said of the book's code ported to Rust that
"the rest of the time is spent doing addition between arrays ... and allocating
arrays"; these counts put a number on the allocating, for every backend.

Each backend is counted in a process of its own
(``harness.profiling.allocation_worker``), after (and apart from) the timed
epochs, so that the Tracker, which slows every allocation down, never touches a
reported time. The process runs on the threads of the timed run: the counts
barely depend on them (a BLAS team's buffers are made once, in the warm-up),
and the same threads keep the trainer the same one that was timed. What counts
as an allocation is said in ``allocation_worker.ALLOCATING``.

A backend whose count fails, or a machine without memray, leaves empty cells
and a note, never a failed run.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import storage
from harness.config import RunConfig
from harness.jobs.child import JOB_FILE, RESULT_FILE, environment
from harness.jobs.job import Job
from harness.profiling.allocation_worker import AllocationJob

EPOCHS = 1  # counted per backend: an epoch's allocations repeat from one epoch to the next
# The longest one counting process may take without --timeout: start-up, warm-up and
# a tracked epoch of the slowest backend on full MNIST, with room to spare.
DEFAULT_DEADLINE = 900.0
MISSING = "memray is not installed here (pip install memray; Linux and macOS only)"


@dataclass
class AllocationCount:
    """One backend's count; ``message`` says why there is none."""

    backend: str
    allocations_per_epoch: int | None = None
    bytes_per_epoch: int | None = None
    mmaps_per_epoch: int | None = None  # apart: see allocation_worker.ALLOCATING
    epochs: int = 0  # counted, after the warm-up
    threads: int | None = None
    seconds: float = 0.0  # the counting process's wall time: what counting added to the run
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.allocations_per_epoch is not None


@dataclass
class AllocationResult:
    counts: list[AllocationCount] = field(default_factory=list)
    unavailable: str = ""  # why nothing could be counted; '' when memray is there
    interrupted: bool = False  # Ctrl-C: the backends counted before it are kept

    @property
    def notes(self) -> list[str]:
        """One line per backend left uncounted (one in all when memray is missing)."""
        if self.unavailable:
            return [f"no allocation counts: {self.unavailable}"]
        return [f"{c.backend}: allocations not counted: {c.message}"
                for c in self.counts if c.message]

    def per_backend(self) -> dict[str, tuple[int, int]]:
        """(allocations, bytes) per epoch of every backend counted."""
        return {c.backend: (c.allocations_per_epoch, c.bytes_per_epoch)
                for c in self.counts if c.ok}

    def to_meta(self) -> dict:
        """What run.json keeps: every count with its epochs, threads and seconds, and
        the notes the report shows."""
        return {"epochs": EPOCHS, "counts": [asdict(c) for c in self.counts],
                "notes": self.notes}


def memray_missing() -> str:
    """Why memray cannot count here; '' when it can."""
    try:
        import memray  # noqa: F401
    except ImportError:
        return MISSING
    return ""


def count_backends(config: RunConfig, backends: Sequence[str], dataset: str, run_id: str,
                   run_dir: Path, on_backend: Callable[[str], None] = lambda backend: None,
                   epochs: int = EPOCHS) -> AllocationResult:
    """Count ``backends`` one after the other; never raises for memray missing, a
    count that fails, or Ctrl-C: the result says so instead."""
    result = AllocationResult(unavailable=memray_missing())
    if result.unavailable:
        result.counts = [AllocationCount(b, message=result.unavailable) for b in backends]
        return result
    for backend in backends:
        on_backend(backend)
        try:
            result.counts.append(count_allocations(Job(config, backend, dataset, run_id),
                                                   epochs, config.timeout, run_dir))
        except KeyboardInterrupt:  # the child is killed; what was counted is kept
            result.interrupted = True
            break
    return result


def count_allocations(job: Job, epochs: int = EPOCHS, timeout: float | None = None,
                      run_dir: Path | None = None) -> AllocationCount:
    """Count one backend's allocations per epoch in a child process. A failure is
    the count's ``message``; with ``run_dir`` the child's whole output is kept in
    ``errors/<backend>.allocations.log``, which the message names."""
    if missing := memray_missing():
        return AllocationCount(job.backend, message=missing)
    start = time.perf_counter()
    try:
        child = _count(AllocationJob(job, epochs), timeout or DEFAULT_DEADLINE)
    except _Failed as e:
        message = str(e)
        if run_dir is not None and e.log:
            log = storage.write_error_log(run_dir, f"{job.backend}.allocations", e.log)
            message += f" (all of it: {log.relative_to(run_dir)})"
        return AllocationCount(job.backend, seconds=time.perf_counter() - start,
                               message=message)
    n = child["epochs"]
    return AllocationCount(job.backend, round(child["allocations"] / n),
                           round(child["bytes"] / n), round(child["mmaps"] / n), n,
                           child["threads"], time.perf_counter() - start)


class _Failed(Exception):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def _count(allocation_job: AllocationJob, timeout: float) -> dict:
    """Run the counting child and read its result.json."""
    with tempfile.TemporaryDirectory(prefix="nndl-allocations-") as tmp:
        folder = Path(tmp)
        (folder / JOB_FILE).write_bytes(pickle.dumps(allocation_job))
        command = [sys.executable, "-m", "harness.profiling.allocation_worker", str(folder)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=environment(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise _Failed(f"stopped after {timeout:g} s", _text(e.stdout) + _text(e.stderr)) \
                from None
        log = done.stdout + done.stderr
        if done.returncode != 0 or not (folder / RESULT_FILE).is_file():
            lines = done.stderr.strip().splitlines()
            raise _Failed(f"the counting process exited with {done.returncode}"
                          + (f": {lines[-1]}" if lines else ""), log)
        return json.loads((folder / RESULT_FILE).read_text())


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""

