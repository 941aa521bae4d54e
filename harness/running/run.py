"""A run: check the settings and the data, run every backend in its own worker,
and write the run folder as the epochs come in (its page is the command's to
write, from the folder: ``harness.reporting.pages``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from backends import REFERENCE
from harness import storage
from harness.config import RunConfig, UsageError
from harness.jobs.job import Job
from harness.profiling import instructions
from harness.profiling.allocations import AllocationResult, count_backends
from harness.profiling.profile import ProfileResult, ProfileSettings, profile_backends
from harness.records import INTERRUPTED, BackendOutcome, EpochRecord
from harness.running import machine
from harness.running.manager import Interrupted, run_worker
from harness.running.peak import calibrate
from harness.running.peak import instability as peak_instability
from harness.summary import summarize, with_allocations

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class Observer:
    """Progress of a run, for a front end to show; the core itself prints nothing."""

    def notice(self, message: str) -> None: ...
    def backend_started(self, backend: str, epochs: int, warmup_epochs: int) -> None: ...
    def warmup_done(self, backend: str, seconds: float) -> None: ...
    def epoch_done(self, record: EpochRecord) -> None: ...
    def backend_finished(self, outcome: BackendOutcome) -> None: ...
    def counting_allocations(self, backend: str) -> None: ...

    def poll(self) -> None:
        """Called about every quarter second while a backend's worker runs; raising
        KeyboardInterrupt here stops the run as Ctrl-C would (a sweep's cell whose
        client has gone)."""


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    summary: pd.DataFrame
    outcomes: list[BackendOutcome] = field(default_factory=list)
    interrupted: bool = False
    profile: ProfileResult | None = None  # flamegraphs and time breakdown, when asked for
    allocations: AllocationResult | None = None  # allocations per epoch, counted with them
    count_failures: dict[str, str] = field(default_factory=dict)  # backend: why not counted
    unstable: dict = field(default_factory=dict)  # run.json's "unstable": see unstable()

    @property
    def exit_code(self) -> int:
        """130 if interrupted (timing, profiling or counting), 1 if a backend failed, or
        its profile or its instruction count did, else 0; py-spy unable to run here is
        said, and is no failure, and so is an allocation count that failed (its cells
        are left empty)."""
        stopped = [self.profile, self.allocations]
        if self.interrupted or any(step is not None and step.interrupted for step in stopped):
            return EXIT_INTERRUPTED
        failed = not all(o.ok for o in self.outcomes) or bool(self.count_failures) or (
            self.profile is not None and self.profile.failed)
        return EXIT_FAILED if failed else EXIT_OK


def new_run_id() -> str:
    """UTC time plus a random suffix: sortable, and unique across concurrent runs."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def check_data(config: RunConfig, notice: Callable[[str], None]) -> tuple[str, int]:
    """Load the data once in the parent: the dataset a worker will load (never
    'auto') and its number of training samples, with unusable data or settings
    that do not fit it raised here."""
    from harness.data.catalogue import load_dataset

    data = load_dataset(config.dataset, data_dir=config.data_dir, n_train=config.n_train,
                        input_size=config.sizes[0], seed=config.seed, notice=notice,
                        download_timeout=config.download_timeout)
    if data.input_size != config.sizes[0]:
        raise UsageError(
            f"--sizes starts with {config.sizes[0]} inputs but {data.name} has "
            f"{data.input_size} per sample; use --sizes {data.input_size},"
            f"{','.join(map(str, config.sizes[1:]))}"
        )
    if config.sizes[-1] < int(data.train_labels.max()) + 1:
        raise UsageError(f"--sizes ends with {config.sizes[-1]} outputs but {data.name} has "
                         f"{int(data.train_labels.max()) + 1} classes")
    if config.batch_size > data.n_train:
        raise UsageError(f"--batch-size {config.batch_size} is larger than the "
                         f"{data.n_train} training samples of {data.name}")
    return data.name, data.n_train


@dataclass(frozen=True)
class CountSettings:
    """``run --count-instructions``: which backends to count (default: every one of
    the run's but those ``instructions.LEFT_OUT`` names), how many at a time."""

    backends: tuple[str, ...] | None = None
    jobs: int | None = None

    def chosen(self, config: RunConfig) -> tuple[list[str], dict[str, str]]:
        """The backends to count, and those left out with the reason."""
        if self.backends is not None:
            return list(self.backends), {}
        left_out = {b: instructions.LEFT_OUT[b] for b in config.backends
                    if b in instructions.LEFT_OUT}
        return [b for b in config.backends if b not in left_out], left_out


def execute(config: RunConfig, observer: Observer | None = None,
            budget: float | None = None, profile: ProfileSettings | None = None,
            count: CountSettings | None = None) -> RunResult:
    """Run every backend of ``config`` and write ``results/<run-id>/``; with ``count``,
    then count every timed backend's instructions per epoch under valgrind; with
    ``profile``, then profile every backend that ran well and count its allocations
    per epoch, each apart from the timed epochs."""
    observer = observer or Observer()
    version = _check_counting(count)
    dataset, n_train = check_data(config, observer.notice)
    run_id = new_run_id()
    run_dir = Path(config.results_dir) / run_id
    meta = {"run_id": run_id, "started": _now(), "dataset": dataset,
            "config": config.to_dict(), **machine.metadata(config.argv)}
    meta["gemm_peak"] = _calibrate(config, observer)
    reports = storage.RunWriter(run_dir, meta)
    outcomes, interrupted = [], False
    try:
        for backend in config.backends:
            outcomes.append(_run_backend(config, Job(config, backend, dataset, run_id),
                                         observer, reports, budget))
    except Interrupted as stop:
        outcomes.append(stop.outcome)
        observer.backend_finished(stop.outcome)
        interrupted = True
    except KeyboardInterrupt:  # between workers, or while one starts: nothing in flight
        interrupted = True
    config_row = {"dtype": config.dtype, "sizes": config.sizes_label,
                  "batch_size": config.batch_size, "eta": config.eta, "seed": config.seed,
                  "dataset": dataset, "n_train": n_train}
    _keep_diagnostics(run_dir, outcomes)
    peak = (meta["gemm_peak"] or {}).get("gemm_peak_gflops_all")
    counted, count_failures = {}, {}
    if count is not None and not interrupted:
        try:
            counted, count_failures = _count(config, count, [o.backend for o in outcomes if o.ok],
                                             run_id, version, reports, observer)
        except KeyboardInterrupt:  # the timings stand: keep them, with no counts
            interrupted = True
    summary = summarize(run_id, outcomes, config_row, REFERENCE, peak,
                        {b: c.median for b, c in counted.items()})
    result = RunResult(run_id, run_dir, summary, outcomes, interrupted,
                       count_failures=count_failures, unstable=unstable(summary, meta))
    reports.summary(summary)
    reports.update_meta(finished=_now(), failures=_failures(outcomes), unstable=result.unstable,
                        choices={o.backend: o.choices for o in outcomes if o.choices})
    if profile is not None and not interrupted:
        ran_well = [o.backend for o in outcomes if o.ok]
        result.profile = _profile(config, ran_well, dataset, run_id, run_dir, profile, observer)
        reports.update_meta(finished=_now(), flamegraphs=_folder(result.profile))
        if not result.profile.interrupted:
            result.allocations = count_backends(config, ran_well, dataset, run_id, run_dir,
                                                on_backend=observer.counting_allocations)
            result.summary = with_allocations(summary, result.allocations.per_backend())
            reports.summary(result.summary)
            reports.update_meta(finished=_now(), allocations=result.allocations.to_meta())
    reports.update_meta(exit_code=result.exit_code)  # last: the code the command exits with
    return result


def profile_only(config: RunConfig, settings: ProfileSettings,
                 observer: Observer | None = None) -> RunResult:
    """Profile the backends of ``config`` without timing them: their flamegraphs and
    time breakdown, in a run folder of their own."""
    observer = observer or Observer()
    dataset, _ = check_data(config, observer.notice)
    run_id = new_run_id()
    run_dir = Path(config.results_dir) / run_id
    meta = {"run_id": run_id, "started": _now(), "dataset": dataset, "profile_only": True,
            "config": config.to_dict(), **machine.metadata(config.argv)}
    folder = storage.RunWriter(run_dir, meta, with_epochs=False)
    result = RunResult(run_id, run_dir, summarize(run_id, [], {}, REFERENCE))
    result.profile = _profile(config, config.backends, dataset, run_id, run_dir, settings,
                              observer)
    folder.update_meta(finished=_now(), flamegraphs=_folder(result.profile),
                       exit_code=result.exit_code)
    return result


def unstable(summary: pd.DataFrame, meta: dict) -> dict:
    """What may make the run's times unstable: each backend whose epochs spread
    widely (``stats.instability``), and a GEMM median far below its best
    (``peak.instability``); empty when nothing does."""
    found = {}
    backends = {r["backend"]: r["unstable"] for _, r in summary.iterrows()
                if isinstance(r["unstable"], str) and r["unstable"]}
    if backends:
        found["backends"] = backends
    if gemm := peak_instability(meta.get("gemm_peak")):
        found["gemm"] = gemm
    return found


def _check_counting(count: CountSettings | None) -> str | None:
    """valgrind's version when counting; a usage error before anything runs when
    counting is asked for and valgrind is missing."""
    if count is None:
        return None
    version = instructions.available()
    if version is None:
        raise UsageError("--count-instructions needs valgrind, which is not installed "
                         "(apt-get install valgrind)")
    return version


def _count(config, count: CountSettings, ran_well: list[str], run_id: str, version: str,
           reports: storage.RunWriter, observer: Observer):
    """Count the instructions of the backends that ran well; (counts, failures)."""
    chosen, left_out = count.chosen(config)
    chosen = [b for b in chosen if b in ran_well]
    observer.notice(f"counting instructions per epoch under valgrind: {', '.join(chosen)}"
                    + (f" (left out: {', '.join(left_out)})" if left_out else ""))
    found = instructions.count_all(config, chosen, run_id, count.jobs)
    counted = {b: c for b, c in found.items() if isinstance(c, instructions.InstructionCount)}
    failures = {b: c for b, c in found.items() if isinstance(c, str)}
    for message in failures.values():
        observer.notice(f"not counted: {message}")
    reports.instructions(instructions.frame(list(counted.values()), config))
    reports.update_meta(instructions={
        **instructions.description(config, version, left_out),
        "backends": {b: instructions.summary(c) for b, c in counted.items()},
        "failures": failures})
    return counted, failures


def _calibrate(config: RunConfig, observer: Observer) -> dict | None:
    """The machine's GEMM peak in the run's dtype, measured before the workers
    start; every backend's GFLOP/s is then also a share of it (pct_peak)."""
    if not config.peak_seconds:
        return None
    observer.notice(f"measuring the {config.dtype} GEMM peak ({config.peak_seconds:g} s)")
    return calibrate(config.dtype, config.peak_seconds / 2)


def _keep_diagnostics(run_dir: Path, outcomes: list[BackendOutcome]) -> None:
    """Each failure's whole diagnostic in errors/<backend>.log, which its message (in
    summary.csv, run.json and the printed table) then names."""
    for outcome in outcomes:
        if not outcome.ok and outcome.status != INTERRUPTED:
            log = storage.write_failure_log(run_dir, outcome).relative_to(run_dir)
            outcome.message = f"{outcome.message} (all of it: {log})"


def _failures(outcomes: list[BackendOutcome]) -> list[dict]:
    return [{"backend": o.backend, "status": o.status, "message": o.message,
             "traceback": o.traceback} for o in outcomes if not o.ok]


def _folder(profile: ProfileResult) -> str | None:
    return str(profile.folder) if profile.folder else None


def _profile(config, backends, dataset, run_id, run_dir, settings, observer) -> ProfileResult:
    return profile_backends(
        config, backends, dataset, run_id, run_dir, settings,
        on_backend=lambda backend: observer.notice(f"profiling {backend}"))


def _run_backend(config, job, observer, reports, budget) -> BackendOutcome:
    observer.backend_started(job.backend, config.epochs, config.warmup_epochs)

    def on_epoch(record: EpochRecord) -> None:
        reports.add(record)
        observer.epoch_done(record)

    outcome = run_worker(job, on_epoch=on_epoch,
                         on_warmup=lambda s: observer.warmup_done(job.backend, s),
                         on_poll=observer.poll, timeout=config.timeout, budget=budget)
    observer.backend_finished(outcome)
    return outcome


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
