"""Profiling: one profiled process per backend, its flamegraph, and the
breakdown of where its training time goes.

Each backend is profiled in a process of its own, after (and apart from) the
timed epochs, so that the sampler never touches a reported time. The process
(``harness.profiling.profile_worker``) is sampled in two phases: start-up and
warm-up at ``startup_rate``, then the profiled epochs at ``rate``, long enough
for at least ``min_samples`` samples.

Two samplers share the profiled epochs. perf (``harness.profiling.perf``)
samples every thread on the CPU-time clock and names native frames from each
library's own symbol table: the breakdown, the hot functions and the first
view are its, with the process's threads as they run (rayon's, Numba's,
OpenBLAS's and XLA's workers included, each pool under a frame of its own,
``harness.profiling.native``). py-spy samples the Python frames of the main
thread alone, for the view of which Python function the time is spent in,
and the start-up. Where perf cannot run (not installed, not permitted), py-spy
samples native frames too, as it can: threads are then pinned to one (BLAS
through threadpoolctl, Numba and PyTorch through ``--threads``), since py-spy
samples only threads that run Python; its names of a library with two
executable segments are off by the segments' distance; the run says so.

Files: ``<flamegraph-dir>/<run-id>/<backend>.svg``, and under
``<flamegraph-dir>/<run-id>/stacks/<backend>/`` its ``.folded`` and ``.speedscope.json``
files (see ``harness.profiling.flamegraph``), ``<backend>.txt`` (py-spy's raw output for
the profiled epochs) and ``<backend>.startup.txt`` (for start-up and warm-up); in the
run folder ``time_breakdown.csv`` and ``hot_functions.csv``.
"""

from __future__ import annotations

import json
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
from harness.jobs.child import JOB_FILE, RESULT_FILE, environment
from harness.jobs.job import Job
from harness.profiling import classify, flamegraph, native, perf, pyspy
from harness.profiling.classify import Stack
from harness.profiling.profile_worker import PROFILED_FRAME, ProfileJob

BREAKDOWN_COLUMNS = ["run_id", "backend", "category", "samples", "share", "total_samples",
                     "outside_training_share", "blas_threads", "rate_hz", "profiled_epochs",
                     "failed_samples", "sampler", "threads"]
PERF_SAMPLER, PYSPY_SAMPLER = "perf", "py-spy"
HOT_COLUMNS = ["backend", "rank", "function", "library", "thread", "samples", "share"]
HOT_TOP = 15
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
    perf: str | None = None  # None: perf.locate()
    use_perf: bool = True  # False: py-spy alone, native frames and all


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
    sampler: str = PYSPY_SAMPLER  # who took the breakdown's samples
    threads: dict[str, float] = field(default_factory=dict)  # role -> share of the samples
    hot: list[tuple[str, str, str, int]] = field(default_factory=list)  # (function, library,
    # thread, samples) of the training's leaves, hottest first


@dataclass
class ProfileResult:
    profiles: list[BackendProfile] = field(default_factory=list)
    unavailable: str = ""  # why nothing could be profiled; '' when py-spy worked
    notes: list[str] = field(default_factory=list)
    sampler: str = PYSPY_SAMPLER  # perf where it could sample every thread
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
    perf_bin = _perf(settings, result)
    for backend in backends:
        on_backend(backend)
        try:
            profile = _profile_one(config, backend, dataset, run_id, settings, py_spy,
                                   result.folder, perf_bin)
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


def _perf(settings: ProfileSettings, result: ProfileResult) -> str | None:
    """perf, where it can sample here; else None, and the result says why."""
    if not settings.use_perf:
        return None
    found = settings.perf or perf.locate()
    reason = perf.unavailable(found)
    if reason:
        result.notes.append(f"py-spy alone: {reason}. Without it only the main thread is "
                            "sampled (threads pinned to one) and py-spy may misname functions "
                            "of libraries with two executable segments")
        return None
    result.sampler = PERF_SAMPLER
    return found


def _profile_one(config, backend, dataset, run_id, settings, py_spy, out_dir,
                 perf_bin: str | None = None) -> BackendProfile:
    """Record, and once more for longer if py-spy fell so far behind its rate (a
    loaded machine, slow-to-unwind code) that fewer than min_samples were taken."""
    # With perf every thread is seen: the backend keeps the threads it is timed with.
    job = Job(config if perf_bin else replace(config, threads=1), backend, dataset, run_id)
    deadline = config.timeout or DEFAULT_DEADLINE
    limit = backends.entry(backend).profile_rate  # code py-spy unwinds slowly
    if perf_bin is None:
        settings = replace(settings, rate=min(settings.rate, limit or settings.rate))
    min_seconds = MARGIN * settings.min_samples / settings.rate
    recorded = _record(job, min_seconds, settings, py_spy, deadline, perf_bin)
    inside = _training_samples(recorded)
    if inside < settings.min_samples:
        longer = min_seconds * 1.5 * settings.min_samples / max(inside, 1)
        retry = _record(job, min(longer, RETRY_SECONDS), settings, py_spy, deadline, perf_bin)
        if _training_samples(retry) > inside:
            recorded = retry
    phases, child, samples = recorded
    startup, training = phases
    stacks = flamegraph.stacks_dir(out_dir, backend)
    storage.write_atomic(stacks / f"{backend}.txt", training.collapsed)
    storage.write_atomic(stacks / f"{backend}.startup.txt", startup.collapsed)
    weighted = _weighted_stacks(phases)
    if samples is None:
        counted = classify.breakdown({s: n for s, (_, n) in weighted.items()}, within=WITHIN,
                                     ignore=(pyspy.WAIT_FRAME,))
        shown = flamegraph.views(phases, WITHIN)
        note = classify.unsampled_threads_note(weighted)
        hot = [(name, library, native.MAIN, n)
               for name, library, n in classify.hot_functions(counted.leaves, HOT_TOP)]
        threads = {native.MAIN: 1.0}
    else:
        windows = [tuple(w) for w in child["windows"]]
        in_training, in_phase = native.stacks(samples, child["pid"], windows,
                                                 numba=child.get("numba", False))
        counted = classify.breakdown(in_training, within=WITHIN, rules=native.RULES)
        shown = flamegraph.native_views(phases, in_training, in_phase, WITHIN, settings.rate)
        note = ""
        hot = native.hot_functions(in_training, HOT_TOP)
        threads = native.thread_shares(in_training)
    profile = BackendProfile(backend, counted, _outside_share(weighted), child["epochs"],
                             child["blas_threads"], startup.errors + training.errors,
                             training.rate, sampler=PERF_SAMPLER if samples is not None
                             else PYSPY_SAMPLER, threads=threads, hot=hot)
    profile.svg = flamegraph.write(out_dir, backend, shown,
                                   _title(config, backend, dataset, profile),
                                   _subtitle(profile, settings) + note)
    return profile


Recorded = tuple[list[pyspy.Phase], dict, "list[perf.Sample] | None"]


def _record(job: Job, min_seconds: float, settings: ProfileSettings, py_spy: str | None,
            timeout: float | None, perf_bin: str | None = None) -> Recorded:
    """One profiled process: its two phases, what it said of itself, and perf's
    samples of the profiled epochs' phase (None without perf)."""
    with tempfile.TemporaryDirectory(prefix="nndl-profile-") as tmp:
        folder = Path(tmp)
        (folder / JOB_FILE).write_bytes(
            pickle.dumps(ProfileJob(job, min_seconds, all_threads=perf_bin is not None)))
        command = [sys.executable, "-m", "harness.profiling.profile_worker", str(folder)]
        phases = pyspy.record(py_spy, command, folder, [settings.startup_rate, settings.rate],
                              env=environment(), timeout=timeout, native=perf_bin is None,
                              perf=perf_bin, perf_phases=(2,) if perf_bin else ())
        child = json.loads((folder / RESULT_FILE).read_text())
        samples = None
        if perf_bin is not None and phases[-1].perf_data is not None:
            try:
                samples = list(perf.parse(perf.script(perf_bin, phases[-1].perf_data)))
            except perf.PerfFailed as e:
                raise pyspy.ProfileFailed(str(e)) from None
        return phases, child, samples


def _training_samples(recorded: Recorded) -> int:
    """The samples of the profiled epochs: perf's of every thread where it sampled,
    else py-spy's of the main thread."""
    phases, child, samples = recorded
    if samples is not None:
        windows = [tuple(w) for w in child["windows"]]
        return sum(1 for s in samples if any(a <= s.time_ns <= b for a, b in windows))
    stacks = classify.parse_collapsed(phases[-1].collapsed)
    return sum(n for stack, n in stacks.items() if classify.passes_through(stack, WITHIN))



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
    threads = ("every thread sampled" if profile.sampler == PERF_SAMPLER
               else "pinned to one for profiling")
    return (f"{backend}: [{config.sizes_label}], batch {config.batch_size}, {config.dtype}, "
            f"{dataset}{n}, BLAS threads {profile.blas_threads} ({threads})")


def _subtitle(profile: BackendProfile, settings: ProfileSettings) -> str:
    b = profile.breakdown
    shares = ", ".join(f"{c} {v:.0%}" for c, v in b.shares().items() if v >= 0.005)
    if profile.sampler == PERF_SAMPLER:
        threads = ", ".join(f"{role} {v:.0%}" for role, v in profile.threads.items())
        what = (f"{b.total} samples of CPU time (perf, every thread, {settings.rate} Hz a "
                f"thread) in {profile.epochs} profiled epoch(s) ({shares}; by thread: "
                f"{threads})")
    else:
        what = (f"{b.total} samples in {profile.epochs} profiled epoch(s) at {profile.rate} Hz "
                f"({shares})")
    return (f"{what}; {profile.outside_share:.0%} of the process outside training "
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
                  "failed_samples": p.failed_samples, "sampler": p.sampler,
                  "threads": _threads_text(p.threads)} for c in classify.CATEGORIES]
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)


def _threads_text(threads: dict[str, float]) -> str:
    return "; ".join(f"{role} {share:.1%}" for role, share in threads.items())


def hot_frame(result: ProfileResult) -> pd.DataFrame:
    rows = []
    for p in result.profiles:
        if p.breakdown is None:
            continue
        rows += [{"backend": p.backend, "rank": rank, "function": name, "library": library,
                  "thread": thread, "samples": n, "share": n / p.breakdown.total}
                 for rank, (name, library, thread, n) in enumerate(p.hot, 1)]
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
    how = ("CPU time of every thread, perf samples" if result.sampler == PERF_SAMPLER
           else "py-spy samples, BLAS pinned to 1 thread")
    return f"where the training time goes ({how}):\n" + "\n".join(text)
