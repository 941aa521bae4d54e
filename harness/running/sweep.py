"""A sweep: one run per cell of a grid of batch sizes, widths, dtypes and thread
counts, to show which backend wins where.

Each cell is an ordinary run (``harness.running.run.execute``), run here or on a
cluster's worker by an executor (``harness.running.executors``), its folder under
``<sweep-dir>/cells/``, with every backend in its own worker and a time budget
per backend, so that the slow ones (per-sample code at batch 1) record the
epochs they finished instead of holding up the sweep. The figures are computed
once, in two frames that the CSVs, the printed table and the plots all read:
``frame`` (a row per attempt at a cell and backend: the run's summary, the cell's
settings and where it ran) and ``winners`` (a row per cell and machine
fingerprint: the fastest backend, its lead over the next, and the best of ours
against the best peer).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import backends
from harness import stats, storage
from harness.config import RunConfig, UsageError
from harness.records import INTERRUPTED, LOST, BackendOutcome
from harness.running import machine, provenance
from harness.running.executors import (
    DONE,
    CellOutcome,
    Executor,
    Pending,
    SerialExecutor,
    SweepObserver,
)
from harness.running.run import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_data,
    new_run_id,
)
from harness.summary import SUMMARY_COLUMNS, summarize

DEFAULT_BUDGET = 60.0
DEFAULT_BATCH_SIZES = (1, 10, 100, 1000)
DEFAULT_SIZES = ((784, 30, 10), (784, 100, 10))
DEFAULT_DTYPES = ("float64", "float32")
# A cell is these settings; ``threads_requested`` is the grid's value (empty: the
# libraries' default), ``threads`` the count each backend reports it ran with.
CELL_KEYS = ["sizes", "dtype", "threads_requested", "batch_size"]
# Each row also says where it ran: the attempt, the worker, the cell's start and end
# (UTC), and the machine (``harness.running.provenance``), its fingerprint last;
# ``epoch_seconds`` keeps every timed epoch, for the bootstrap of the lead.
SWEEP_COLUMNS = ["sweep_id", "cell", "threads_requested", "run_dir", *SUMMARY_COLUMNS,
                 "epoch_seconds", "attempt", "worker", "started", "finished", *provenance.COLUMNS]
# Winners are per cell and per machine type: two fingerprints are never compared.
WINNER_COLUMNS = [*CELL_KEYS, "fingerprint", *stats.WINNER_FIGURES]
# What draws a sweep's figures and pages from its folder, its frame and its winners
# while cells arrive (the command's: ``harness.reporting.pages.draw_sweep``).
Draw = Callable[[Path, pd.DataFrame, pd.DataFrame], object]


@dataclass(frozen=True)
class Grid:
    """The values a sweep crosses; every combination is a cell."""

    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    sizes: tuple[tuple[int, ...], ...] = DEFAULT_SIZES
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    threads: tuple[int | None, ...] = (None,)

    def cells(self, base: RunConfig) -> list[RunConfig]:
        """The run settings of every cell: ``base`` with the grid's values, width and
        dtype varying slowest and batch size fastest (the order of the plots' panels)."""
        grid = itertools.product(_unique(self.sizes), _unique(self.dtypes),
                                 _unique(self.threads), _unique(self.batch_sizes))
        return [replace(base, sizes=tuple(s), dtype=d, threads=t, batch_size=b)
                for s, d, t, b in grid]


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


@dataclass
class SweepResult:
    sweep_id: str
    sweep_dir: Path
    frame: pd.DataFrame
    winners: pd.DataFrame
    runs: list[CellOutcome] = field(default_factory=list)  # this invocation's attempts
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """130 if interrupted, 1 if a backend failed in any cell or a cell's last
        attempt was lost (cut short is not a failure; a backend with no timed epoch
        within the budget is), else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        last = {run.index: run for run in self.runs}
        return EXIT_OK if all(r.exit_code == EXIT_OK for r in last.values()) else EXIT_FAILED


def check_cells(cells: Sequence[RunConfig], notice: Callable[[str], None]) -> list[RunConfig]:
    """Check the data against every cell before the first one runs, and name the
    dataset each cell will use (never 'auto'), so a bad setting costs no run."""
    if not cells:
        raise UsageError("the sweep has no cell to run")
    checked = {}
    for cell in sorted(cells, key=lambda c: -c.batch_size):  # the largest batch first
        key = (cell.dataset, cell.sizes)
        if key not in checked:
            checked[key] = check_data(cell, notice)[0]
    return [replace(cell, dataset=checked[(cell.dataset, cell.sizes)]) for cell in cells]


def run_sweep(
    cells: Sequence[RunConfig],
    budget: float | None = DEFAULT_BUDGET,
    observer: SweepObserver | None = None,
    executor: Executor | None = None,
    draw: Draw | None = None,
) -> SweepResult:
    """Run every cell and write ``<results_dir>/<sweep-id>/``: sweep.csv and winners.csv
    (rewritten as each cell arrives), sweep.json, and cells/<run-id>/; ``draw``, when
    given, draws the plots and the report as the cells arrive. ``executor`` runs the
    cells (default: here, one by one)."""
    _check_budget(budget)
    observer = observer or SweepObserver()
    executor = executor or SerialExecutor()
    cells = check_cells(cells, observer.notice)
    sweep_id = new_run_id()
    sweep_dir = Path(cells[0].results_dir) / sweep_id
    meta = {"sweep_id": sweep_id, "started": _now(), "budget_seconds": budget,
            "executor": executor.name, "cells": [c.to_dict() for c in cells],
            **machine.metadata(cells[0].argv)}
    folder = storage.SweepWriter(sweep_dir, meta)
    work = [Pending(index, 1, cell) for index, cell in enumerate(cells)]
    return _drive(folder, cells, work, pd.DataFrame(columns=SWEEP_COLUMNS), budget, observer,
                  executor, draw)


def resume_sweep(sweep_dir: Path, observer: SweepObserver | None = None,
                 executor: Executor | None = None, draw: Draw | None = None) -> SweepResult:
    """Run again the cells of ``sweep_dir`` that did not finish (never started,
    interrupted, or lost on their last attempt), with the grid and settings of its
    sweep.json, adding them to its files; the finished cells are kept as they are."""
    observer = observer or SweepObserver()
    executor = executor or SerialExecutor()
    folder = storage.SweepWriter.reopen(sweep_dir)
    try:
        cells = [RunConfig.from_dict(c) for c in folder.meta["cells"]]
    except (TypeError, ValueError) as e:
        raise storage.RunFolderError(f"{sweep_dir}/{storage.SWEEP_JSON}: a cell that is not "
                                     f"a run's settings ({e})") from None
    cells = [replace(c, results_dir=folder.sweep_dir.parent) for c in check_cells(
        cells, observer.notice)]
    frame = storage.read_sweep_frame(sweep_dir)
    done = finished_cells(frame, cells)
    kept = frame[frame["cell"].isin(done) | (frame["status"] == LOST)] if len(frame) else frame
    work = [Pending(index, _next_attempt(frame, index), cell)
            for index, cell in enumerate(cells) if index not in done]
    folder.update_meta(resumed=[*folder.meta.get("resumed", []),
                                {"at": _now(), "executor": executor.name,
                                 "cells": [p.index for p in work]}])
    return _drive(folder, cells, work, kept, folder.meta.get("budget_seconds"), observer,
                  executor, draw)


def finished_cells(frame: pd.DataFrame, cells: Sequence[RunConfig]) -> set[int]:
    """The cells of a sweep.csv whose every backend has a row from an attempt that
    ended: not lost, not interrupted."""
    if frame.empty:
        return set()
    done = set()
    for index, cell in enumerate(cells):
        rows = frame[(frame["cell"] == index) & (frame["status"] != LOST)]
        if not (rows["status"] == INTERRUPTED).any() and set(cell.backends) <= set(
                rows["backend"]):
            done.add(index)
    return done


def _next_attempt(frame: pd.DataFrame, index: int) -> int:
    if frame.empty or "attempt" not in frame:
        return 1
    attempts = frame.loc[frame["cell"] == index, "attempt"].dropna()
    return int(attempts.max()) + 1 if len(attempts) else 1


def _drive(folder: storage.SweepWriter, cells: list[RunConfig], work: list[Pending],
           prior: pd.DataFrame, budget: float | None, observer: SweepObserver,
           executor: Executor, draw: Draw | None) -> SweepResult:
    """Hand ``work`` to ``executor`` and write the folder as each cell arrives; the
    folder is complete however the executor ends (Ctrl-C, a cluster gone)."""
    sweep_id = folder.meta["sweep_id"]
    files = _SweepFiles(folder, prior, draw)
    runs: list[CellOutcome] = []

    def on_cell(outcome: CellOutcome) -> None:
        if outcome.files is not None:
            folder.run_files(outcome.run_dir, outcome.files)
        runs.append(outcome)
        files.add(cell_rows(sweep_id, cells[outcome.index], outcome))

    observer.sweep_started([p.cell for p in work], grid_size=len(cells))
    interrupted = False
    try:
        interrupted = executor.run(work, budget, folder.cells_dir, observer, on_cell)
    except KeyboardInterrupt:  # between two backends' workers: the finished cells stand
        interrupted = True
    finally:
        result = SweepResult(sweep_id, folder.sweep_dir, files.frame, files.winners, runs,
                             interrupted)
        files.finish()
        result.frame, result.winners = files.frame, files.winners
        folder.update_meta(finished=_now(), exit_code=result.exit_code)
    return result


class _SweepFiles:
    """sweep.csv and winners.csv after every cell; with ``draw``, the plots and the
    report too, at most every ``REFRESH_SECONDS`` while cells arrive (drawing them
    takes a second or two); the last drawing, at the end, is the command's."""

    REFRESH_SECONDS = 20.0

    def __init__(self, folder: storage.SweepWriter, prior: pd.DataFrame,
                 draw: Draw | None = None):
        self.folder, self.frames, self.draw = folder, [prior] if len(prior) else [], draw
        self.frame = pd.DataFrame(columns=SWEEP_COLUMNS)
        self.winners = winner_map(self.frame)
        self._drawn = time.monotonic()

    def add(self, rows: pd.DataFrame) -> None:
        self.frames.append(rows)
        self._write()
        if time.monotonic() - self._drawn > self.REFRESH_SECONDS:
            self._draw()

    def finish(self) -> None:
        self._write()

    def _write(self) -> None:
        frames = [f for f in self.frames if len(f)]
        self.frame = (pd.concat(frames, ignore_index=True).sort_values(
            ["cell", "attempt"], kind="stable", ignore_index=True) if frames
                      else pd.DataFrame(columns=SWEEP_COLUMNS))
        self.winners = winner_map(self.frame)
        self.folder.frame(self.frame)
        self.folder.winners(self.winners)

    def _draw(self) -> None:
        if self.draw is not None and not self.frame.empty:
            self.draw(self.folder.sweep_dir, self.frame, self.winners)
        self._drawn = time.monotonic()


def cell_rows(sweep_id: str, cell: RunConfig, outcome: CellOutcome) -> pd.DataFrame:
    """An attempt's rows of sweep.csv: the run's summary (for an attempt without a
    run, a row per backend with its status, ``lost`` or ``failed``), the cell's
    settings and where it ran."""
    if outcome.status != DONE:
        config_row = {"dtype": cell.dtype, "sizes": cell.sizes_label,
                      "batch_size": cell.batch_size, "eta": cell.eta, "seed": cell.seed,
                      "dataset": cell.dataset, "n_train": cell.n_train}
        rows = summarize("", [BackendOutcome(b, outcome.status, outcome.message)
                              for b in cell.backends], config_row, backends.REFERENCE)
    elif outcome.rows:
        rows = pd.DataFrame(outcome.rows)
    else:  # stopped before its first backend had a row
        return pd.DataFrame(columns=SWEEP_COLUMNS)
    facts = outcome.provenance
    extra = {"sweep_id": sweep_id, "cell": outcome.index, "threads_requested": cell.threads,
             "run_dir": outcome.run_dir, "attempt": outcome.attempt, "worker": outcome.worker,
             "started": outcome.started, "finished": outcome.finished,
             **{column: facts.get(column) for column in provenance.COLUMNS}}
    for column, value in extra.items():
        rows[column] = value
    if "epoch_seconds" not in rows:  # an attempt without a run has no epochs
        rows["epoch_seconds"] = ""
    # A summary column another module adds (pct_peak) is kept, after the known ones.
    return rows[SWEEP_COLUMNS + [c for c in rows.columns if c not in SWEEP_COLUMNS]]


def _check_budget(budget: float | None) -> None:
    if budget is not None and not budget > 0:
        raise UsageError(f"--max-seconds-per-cell must be positive seconds, got {budget}")


def winner_map(frame: pd.DataFrame, peers: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per cell and machine fingerprint (``stats.winners``: the fastest
    backend, its lead, the best of ours against the best peer), from the rows of
    sweep.csv, their ``epoch_seconds`` read through storage. ``peers`` defaults to
    the registry's."""
    peers = backends.peers() if peers is None else peers
    keys = CELL_KEYS + (["fingerprint"] if "fingerprint" in frame else [])
    if "epoch_seconds" in frame.columns:
        frame = frame.assign(epoch_seconds=frame["epoch_seconds"].map(
            storage.split_epoch_seconds))
    return stats.winners(frame, keys, peers, WINNER_COLUMNS)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
