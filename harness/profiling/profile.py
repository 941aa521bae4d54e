"""Profiling: one profiled process per backend under py-spy, its flamegraph, and
the breakdown of where its training time goes.

Each backend is profiled in a process of its own, after (and apart from) the
timed epochs, so that the sampler never touches a reported time. The process
(``harness.profiling.profile_worker``) is sampled in two phases: start-up and warm-up at
``startup_rate``, then the profiled epochs at ``rate``, long enough for at
least ``min_samples`` samples. Threads are pinned to one (BLAS through
threadpoolctl, Numba and PyTorch through ``--threads``): py-spy samples only
threads that run Python, so the work of BLAS's worker threads would be missed.
The breakdown is therefore that of single-threaded training, as the SVG title
and the CSV say.

What py-spy cannot see: JAX runs its compiled programs on XLA's own threads,
so its samples show the calling thread waiting for them (sampled because
py-spy runs with ``--idle``), all counted as ``xla`` without detail. Running
the programs on the calling thread instead (``jax_cpu_enable_async_dispatch``
off) was measured: py-spy cannot unwind XLA's compiled code and lost 95% of
the samples. Numba's compiled code unwinds, but py-spy reloads every library's
symbols on each sample in it, so the process runs much slower while profiled
and the margin below is needed; the shares are unaffected (a paused process is
not sampled).

Files: ``<flamegraph-dir>/<run-id>/<backend>.svg`` with its ``.folded`` and
``.speedscope.json`` (see ``harness.profiling.flamegraph``), ``<backend>.txt`` (py-spy's raw
output for the profiled epochs) and ``<backend>.startup.txt`` (for start-up and
warm-up); in the run folder ``time_breakdown.csv`` and ``hot_functions.csv``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

import backends
from harness import storage
from harness.config import RunConfig
from harness.profiling import classify, flamegraph, pyspy
from harness.profiling.classify import Stack
from harness.profiling.profile_worker import JOB_FILE, PROFILED_FRAME, RESULT_FILE, ProfileJob
from harness.running.worker import Job

BREAKDOWN_COLUMNS = ["run_id", "backend", "category", "samples", "share", "total_samples",
                     "outside_training_share", "blas_threads", "rate_hz", "profiled_epochs",
                     "failed_samples"]
HOT_COLUMNS = ["backend", "rank", "function", "library", "samples", "share"]
WITHIN = (PROFILED_FRAME, "train_epoch")
# The profiled epochs run this much longer than min_samples / rate: py-spy falls
# behind its rate when a sample is slow to unwind (Numba's code: about 600 Hz of 1000).
MARGIN = 2.0
RETRY_SECONDS = 60.0  # the longest a second attempt trains for
# The longest one profiled process may take without --timeout: start-up, warm-up
# and the profiled epochs of the slowest backend on full MNIST, with room to spare.
DEFAULT_DEADLINE = 900.0


@dataclass(frozen=True)
class ProfileSettings:
    out_dir: Path = Path("flamegraphs")
    rate: int = 1000  # Hz; py-spy --native keeps up to about 2 kHz here, and 1 kHz costs less
    startup_rate: int = 100  # Hz; at 1 kHz loading libraries slows the process tenfold
    min_samples: int = 1000
    py_spy: str | None = None  # None: pyspy.locate()


@dataclass
class BackendProfile:
    backend: str
    breakdown: classify.Breakdown | None = None
    outside_share: float = float("nan")
    epochs: int = 0
    blas_threads: int | None = None
    failed_samples: int = 0  # samples py-spy took but could not unwind
    rate: int = 0
    svg: Path | None = None
    message: str = ""  # why this backend has no profile


@dataclass
class ProfileResult:
    profiles: list[BackendProfile] = field(default_factory=list)
    unavailable: str = ""  # why nothing could be profiled; '' when py-spy worked
    notes: list[str] = field(default_factory=list)
    folder: Path | None = None  # <flamegraph-dir>/<run-id>, when a flamegraph was drawn
    interrupted: bool = False  # Ctrl-C: the backends profiled before it are kept

    @property
    def failed(self) -> bool:
        return any(p.message for p in self.profiles)


def profile_backends(config: RunConfig, backends: Sequence[str], dataset: str, run_id: str,
                     run_dir: Path, settings: ProfileSettings,
                     on_backend: Callable[[str], None] = lambda backend: None) -> ProfileResult:
    """Profile ``backends`` one after the other and write the files; never raises for a
    profiler that cannot run here, or for Ctrl-C: the result says so instead."""
    py_spy = settings.py_spy or pyspy.locate()
    result = ProfileResult(folder=Path(settings.out_dir) / run_id)
    for backend in backends:
        on_backend(backend)
        try:
            profile = _profile_one(config, backend, dataset, run_id, settings, py_spy,
                                   result.folder)
        except pyspy.ProfilerUnavailable as e:
            result.unavailable = f"no flamegraphs: {e}"
            break
        except pyspy.ProfileFailed as e:
            log = storage.write_error_log(run_dir, f"{backend}.profile", e.log or str(e))
            profile = BackendProfile(backend, message=f"{e} (all of it: {log})")
            result.notes.append(f"{backend}: profile failed: {profile.message}")
        except KeyboardInterrupt:  # the processes are stopped; what was profiled is kept
            result.interrupted = True
            break
        result.profiles.append(profile)
        if profile.breakdown is not None and profile.breakdown.total < settings.min_samples:
            result.notes.append(f"{backend}: the breakdown rests on {profile.breakdown.total} "
                                f"samples only (asked for {settings.min_samples})")
    if not any(p.svg for p in result.profiles):
        result.folder = None  # nothing was written there
    write_reports(result, run_id, run_dir)
    return result


def _profile_one(config, backend, dataset, run_id, settings, py_spy, out_dir) -> BackendProfile:
    """Record, and once more for longer if py-spy fell so far behind its rate (a
    loaded machine, slow-to-unwind code) that fewer than min_samples were taken."""
    job = Job(replace(config, threads=1), backend, dataset, run_id)
    deadline = config.timeout or DEFAULT_DEADLINE
    limit = backends.entry(backend).profile_rate  # code py-spy unwinds slowly
    settings = replace(settings, rate=min(settings.rate, limit or settings.rate))
    min_seconds = MARGIN * settings.min_samples / settings.rate
    phases, child = _record(job, min_seconds, settings, py_spy, deadline)
    inside = _training_samples(phases)
    if inside < settings.min_samples:
        longer = min_seconds * 1.5 * settings.min_samples / max(inside, 1)
        retry = _record(job, min(longer, RETRY_SECONDS), settings, py_spy,
                        deadline)
        if _training_samples(retry[0]) > inside:
            phases, child = retry
    startup, training = phases
    storage.write_atomic(out_dir / f"{backend}.txt", training.collapsed)
    storage.write_atomic(out_dir / f"{backend}.startup.txt", startup.collapsed)
    weighted = _weighted_stacks(phases)
    counted = classify.breakdown({s: n for s, (_, n) in weighted.items()}, within=WITHIN,
                                 ignore=(pyspy.WAIT_FRAME,))
    profile = BackendProfile(backend, counted, _outside_share(weighted), child["epochs"],
                             child["blas_threads"], startup.errors + training.errors,
                             training.rate)
    profile.svg = flamegraph.write(out_dir, backend, flamegraph.views(phases, WITHIN),
                                   _title(config, backend, dataset, profile),
                                   _subtitle(profile, settings)
                                   + classify.unsampled_threads_note(weighted))
    return profile


def _record(job: Job, min_seconds: float, settings: ProfileSettings, py_spy: str | None,
            timeout: float | None) -> tuple[list[pyspy.Phase], dict]:
    """One profiled process: its two phases and what it said of itself."""
    with tempfile.TemporaryDirectory(prefix="nndl-profile-") as tmp:
        folder = Path(tmp)
        (folder / JOB_FILE).write_bytes(pickle.dumps(ProfileJob(job, min_seconds)))
        command = [sys.executable, "-m", "harness.profiling.profile_worker", str(folder)]
        phases = pyspy.record(py_spy, command, folder, [settings.startup_rate, settings.rate],
                              env=_child_env(), timeout=timeout)
        return phases, json.loads((folder / RESULT_FILE).read_text())


def _training_samples(phases: Sequence[pyspy.Phase]) -> int:
    stacks = classify.parse_collapsed(phases[-1].collapsed)
    return sum(n for stack, n in stacks.items() if classify.passes_through(stack, WITHIN))


def _child_env() -> dict[str, str]:
    """The environment, with this checkout first on the path: the child runs
    ``-m harness.profiling.profile_worker`` whether or not the package is installed."""
    root = str(Path(__file__).resolve().parents[2])  # harness/profiling/ -> the checkout
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, path]))}


def _weighted_stacks(phases: Sequence[pyspy.Phase]) -> dict[Stack, tuple[float, int]]:
    """Every phase's processed stacks (``flamegraph.processed``), each weighted by the
    wall time a sample of its phase stands for: (seconds, samples)."""
    merged: dict[Stack, tuple[float, int]] = {}
    for phase, stacks in zip(phases, flamegraph.processed(phases)):
        total = sum(classify.parse_collapsed(phase.collapsed).values())
        per_sample = phase.seconds / total if total else 0.0
        for stack, n in stacks.items():
            seconds, samples = merged.get(stack, (0.0, 0))
            merged[stack] = (seconds + n * per_sample, samples + n)
    return merged


def _outside_share(weighted: dict[Stack, tuple[float, int]]) -> float:
    """The share of the process's time outside the profiled epochs' train_epoch."""
    inside = sum(s for stack, (s, _) in weighted.items() if classify.passes_through(stack, WITHIN))
    total = sum(s for s, _ in weighted.values())
    return 1 - inside / total if total else float("nan")


def _title(config: RunConfig, backend: str, dataset: str, profile: BackendProfile) -> str:
    n = f" n={config.n_train}" if config.n_train else ""
    return (f"{backend}: [{config.sizes_label}], batch {config.batch_size}, {config.dtype}, "
            f"{dataset}{n}, BLAS threads {profile.blas_threads} (pinned to one for profiling)")


def _subtitle(profile: BackendProfile, settings: ProfileSettings) -> str:
    b = profile.breakdown
    shares = ", ".join(f"{c} {v:.0%}" for c, v in b.shares().items() if v >= 0.005)
    return (f"{b.total} samples in {profile.epochs} profiled epoch(s) at {profile.rate} Hz "
            f"({shares}); {profile.outside_share:.0%} of the process outside training "
            f"(start-up and warm-up, sampled at {settings.startup_rate} Hz)")


def breakdown_frame(result: ProfileResult, run_id: str) -> pd.DataFrame:
    rows = []
    for p in result.profiles:
        if p.breakdown is None:
            continue
        shares = p.breakdown.shares()
        rows += [{"run_id": run_id, "backend": p.backend, "category": c,
                  "samples": p.breakdown.samples[c], "share": shares[c],
                  "total_samples": p.breakdown.total, "outside_training_share": p.outside_share,
                  "blas_threads": p.blas_threads, "rate_hz": p.rate, "profiled_epochs": p.epochs,
                  "failed_samples": p.failed_samples} for c in classify.CATEGORIES]
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)


def hot_frame(result: ProfileResult, top: int = 10) -> pd.DataFrame:
    rows = []
    for p in result.profiles:
        if p.breakdown is None:
            continue
        hot = classify.hot_functions(p.breakdown.leaves, top)
        rows += [{"backend": p.backend, "rank": rank, "function": name, "library": library,
                  "samples": n, "share": n / p.breakdown.total}
                 for rank, (name, library, n) in enumerate(hot, 1)]
    return pd.DataFrame(rows, columns=HOT_COLUMNS)


def write_reports(result: ProfileResult, run_id: str, run_dir: Path) -> None:
    storage.write_profile(run_dir, breakdown_frame(result, run_id), hot_frame(result))


def format_breakdown(result: ProfileResult) -> str:
    """Backend by category shares of the training samples, for the terminal."""
    rows = [p for p in result.profiles if p.breakdown is not None]
    if not rows:
        return ""
    headers = ["backend", *classify.CATEGORIES, "samples", "outside"]
    lines = [[p.backend, *(f"{v:.0%}" for v in p.breakdown.shares().values()),
              str(p.breakdown.total), f"{p.outside_share:.0%}"] for p in rows]
    widths = [max(len(r[i]) for r in [headers, *lines]) for i in range(len(headers))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))) for r in [headers, *lines]]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "where the training time goes (py-spy samples, BLAS pinned to 1 thread):\n" + \
        "\n".join(text)
