"""Instructions per epoch, counted under valgrind's callgrind: a measure of a
backend's work that a shared machine's load does not move.

Epoch times on a shared 2-core machine move by tens of percent between runs of
unchanged code; the instructions an epoch executes move by hundredths of a
percent (docs/regression.md). Each
backend is counted in a child process of its own
(``harness.profiling.instructions_worker``) on a small fixed workload, on one
thread (BLAS, Numba, PyTorch), with the interpreter's hash seed fixed and
address-space randomisation off (``setarch -R``), so that the same code counts
the same instructions. The child marks the start of every counted epoch and the
end of the last with a call that callgrind dumps its counts before; start-up,
imports, JIT compilation and the warm-up epoch fall into the part before the
first mark and are not counted. Every counted epoch is a sample, so a count
comes with its own spread.

valgrind emulates no AVX-512: a Rust kernel that picks its instruction set at
run time takes its AVX2 path under valgrind whatever the CPU, so the count is
of that path; ``choices`` records what each trainer chose under valgrind.
"""

from __future__ import annotations

import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from harness import stats
from harness.config import RunConfig
from harness.jobs import child
from harness.jobs.child import JOB_FILE, RESULT_FILE
from harness.jobs.job import Job
from harness.profiling.instructions_worker import MARKER
from harness.storage import INSTRUCTION_COLUMNS

TOOL = "callgrind"
# The fixed workload: 2,000 samples of the MNIST sample (about 180 million
# instructions per numpy-gemm epoch, a minute under valgrind with start-up), and
# three counted epochs, whose spread says how stable the count is.
N_TRAIN = 2000
EPOCHS = 3
OUT_PREFIX = "callgrind.out"
# Backends left out of counting by default, and why (docs/regression.md): the
# peers, whose libraries are slow to emulate and not this project's code. They can
# still be counted when named with --count-backends.
_TORCH = ("a peer, slow under valgrind: PyTorch loads some gigabyte of libraries and "
          "starts an intra-op thread pool of its own")
LEFT_OUT = {
    "torch": _TORCH,
    "torch-compile": _TORCH + ", and compiles the step with inductor at start-up",
    "jax": "a peer, slow under valgrind: XLA compiles the epoch at start-up and runs "
           "thread pools of its own",
}
AVX512_NOTE = ("valgrind emulates no AVX-512: under it, kernels that pick their instruction "
               "set at run time take their AVX2 (or narrower) paths, so their counts are of "
               "those paths, whatever this CPU runs when timed")
# valgrind's many-fold slowdown: a count that takes longer than this is stopped.
TIMEOUT_SECONDS = 1800.0


class CountError(RuntimeError):
    """A count that could not be made: valgrind missing, the child failing, or its
    profile not split as expected. The message says which."""


@dataclass(frozen=True)
class InstructionCount:
    """The instructions of each counted epoch of one backend, and what it ran."""

    backend: str
    per_epoch: tuple[int, ...]
    setup: int  # start-up, imports, JIT compilation and warm-up: not counted
    seconds: float  # how long the count took, valgrind's slowdown included
    threads: int | None = None
    choices: dict | None = None  # what the trainer chose under valgrind

    @property
    def median(self) -> float:
        return stats.median(self.per_epoch)

    @property
    def spread_pct(self) -> float:
        """(max - min) / median of the counted epochs, in percent."""
        return stats.spread_pct(self.per_epoch)


def available() -> str | None:
    """valgrind's version (e.g. ``valgrind-3.19.0``), or None when it is not installed."""
    if shutil.which("valgrind") is None:
        return None
    found = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    return found.stdout.strip() or None


def workload(config: RunConfig) -> RunConfig:
    """The run's network, batch size, dtype and seed on the fixed counted workload:
    2,000 MNIST samples (synthetic ones for another input width), one thread."""
    dataset = "mnist-sample" if config.sizes[0] == 784 else "synthetic"
    return replace(config, dataset=dataset, data_dir=None, n_train=N_TRAIN, threads=1,
                   warmup_epochs=max(config.warmup_epochs, 1), epochs=EPOCHS)


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: one thread everywhere, a fixed hash seed, and this
    harness first on the path (``child.environment``)."""
    env = child.environment(base)
    env.update(PYTHONHASHSEED="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1", RAYON_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def command(folder: Path) -> list[str]:
    """valgrind on the counted child, under ``setarch -R`` where it exists: without
    address-space randomisation, hash tables keyed by addresses lay out the same."""
    valgrind = ["valgrind", f"--tool={TOOL}", f"--dump-before={MARKER}",
                f"--callgrind-out-file={folder / OUT_PREFIX}.%p",
                sys.executable, "-m", "harness.profiling.instructions_worker", str(folder)]
    if shutil.which("setarch"):
        return ["setarch", platform.machine(), "-R", *valgrind]
    return valgrind


def count(job: Job, epochs: int = EPOCHS, timeout: float = TIMEOUT_SECONDS,
          on_start: Callable[[subprocess.Popen], None] | None = None) -> InstructionCount:
    """Count ``job``'s backend: ``epochs`` epochs after set-up and warm-up, each apart;
    ``on_start`` is handed the valgrind process as it starts."""
    if available() is None:
        raise CountError("valgrind is not installed; install it (apt-get install valgrind) "
                         "to count instructions")
    with tempfile.TemporaryDirectory(prefix="nndl-count-") as tmp:
        folder = Path(tmp)
        (folder / JOB_FILE).write_bytes(pickle.dumps((job, epochs)))
        started = time.monotonic()
        process = subprocess.Popen(command(folder), env=environment(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        if on_start is not None:
            on_start(process)
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise CountError(f"{job.backend}: counting took over {timeout:g} s under "
                             "valgrind; stopped") from None
        done = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
        seconds = time.monotonic() - started
        result_file = folder / RESULT_FILE
        if done.returncode != 0 or not result_file.is_file():
            raise CountError(f"{job.backend}: the counted child exited with "
                             f"{done.returncode}: {_tail(done.stderr)}")
        parts = read_parts(folder)
        result = _json(result_file)
    if len(parts) != epochs + 2 or not result.get("finite", False):
        raise CountError(f"{job.backend}: expected {epochs + 2} callgrind parts (set-up, "
                         f"{epochs} epochs, teardown), found {len(parts)}; something else "
                         f"called {MARKER}, or training diverged")
    return InstructionCount(job.backend, tuple(parts[1:-1]), parts[0], seconds,
                            result.get("threads"), result.get("choices"))


def count_all(config: RunConfig, backends: list[str], run_id: str,
              jobs: int | None = None) -> dict[str, InstructionCount | str]:
    """Every backend counted on ``workload(config)``, ``jobs`` children at a time
    (default: the cores; a count does not depend on the load); an error message
    for a backend that could not be counted."""
    counted = workload(config)
    running: list[subprocess.Popen] = []

    def one(backend: str) -> InstructionCount | str:
        try:
            return count(Job(counted, backend, counted.dataset, run_id),
                         on_start=running.append)
        except CountError as e:
            return str(e)

    pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    try:
        return dict(zip(backends, pool.map(one, backends)))
    except KeyboardInterrupt:
        # Ctrl-C reaches valgrind too from a terminal, but not a SIGINT sent to this
        # process alone: stop every count, or the pool would wait out their minutes.
        pool.shutdown(wait=False, cancel_futures=True)
        for process in running:
            process.kill()
        raise
    finally:
        pool.shutdown(wait=True)


def description(config: RunConfig, version: str | None, left_out: dict[str, str]) -> dict:
    """How the counts were made, for run.json."""
    counted = workload(config)
    return {"tool": TOOL, "valgrind": version, "marker": MARKER,
            "workload": {"dataset": counted.dataset, "n_train": counted.n_train,
                         "sizes": counted.sizes_label, "batch_size": counted.batch_size,
                         "dtype": counted.dtype, "threads": 1,
                         "warmup_epochs": counted.warmup_epochs, "counted_epochs": EPOCHS},
            "environment": {k: v for k, v in environment({}).items() if k != "PYTHONPATH"},
            "aslr": "off (setarch -R)" if shutil.which("setarch") else "on (no setarch)",
            "note": AVX512_NOTE, "left_out": left_out}


def frame(counts: list[InstructionCount], config: RunConfig) -> pd.DataFrame:
    """instructions.csv's rows: one per counted epoch, keyed by the counted workload."""
    counted = workload(config)
    key = {"dtype": counted.dtype, "sizes": counted.sizes_label,
           "batch_size": counted.batch_size, "eta": counted.eta, "dataset": counted.dataset,
           "n_train": counted.n_train, "threads": 1}
    rows = [{"backend": c.backend, **key, "count": 0, "epoch": epoch, "instructions": n}
            for c in counts for epoch, n in enumerate(c.per_epoch, start=1)]
    return pd.DataFrame(rows, columns=INSTRUCTION_COLUMNS)


def summary(c: InstructionCount) -> dict:
    """One backend's count for run.json."""
    return {"median": c.median, "per_epoch": list(c.per_epoch), "spread_pct": c.spread_pct,
            "setup_and_warmup": c.setup, "seconds": round(c.seconds, 1),
            "threads": c.threads, "choices": c.choices}


def read_parts(folder: Path) -> list[int]:
    """The ``totals`` of every callgrind part in order: the dumps ``.1``, ``.2``, ...
    made at the marks, then the final one (no suffix) made at exit."""
    numbered, final = [], []
    for path in folder.glob(f"{OUT_PREFIX}.*"):
        suffix = path.name[len(OUT_PREFIX) + 1:].split(".")
        (numbered if len(suffix) == 2 else final).append((int(suffix[-1]), path))
    ordered = [p for _, p in sorted(numbered)] + [p for _, p in final]
    return [_totals(p) for p in ordered]


def _totals(path: Path) -> int:
    match = re.search(r"^totals:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise CountError(f"{path}: no totals line; not a complete callgrind profile")
    return int(match.group(1))


def _json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])
