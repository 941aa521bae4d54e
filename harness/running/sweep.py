"""A sweep: one run per cell of a grid of batch sizes, widths, dtypes and thread
counts, to show which backend wins where.

Each cell is an ordinary run (``harness.running.run.execute``), its folder under
``<sweep-dir>/cells/``, with every backend in its own worker and a time budget
per backend, so that the slow ones (per-sample code at batch 1) record the
epochs they finished instead of holding up the sweep. The figures are computed
once, in two frames that the CSVs, the printed table and the plots all read:
``frame`` (a row per cell and backend: the run's summary plus the cell's
settings) and ``winners`` (a row per cell: the fastest backend, its lead over
the next, and the best of ours against the best peer).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import backends
from backends.base import DTYPES
from harness import stats, storage
from harness.config import RunConfig, UsageError
from harness.records import STANDING
from harness.reporting.summary import SUMMARY_COLUMNS
from harness.running import machine
from harness.running.run import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Observer,
    RunResult,
    check_data,
    execute,
    new_run_id,
)

DEFAULT_BUDGET = 60.0
DEFAULT_BATCH_SIZES = (1, 10, 100, 1000)
DEFAULT_SIZES = ((784, 30, 10), (784, 100, 10))
DEFAULT_DTYPES = ("float64", "float32")
# A cell is these settings; ``threads_requested`` is the grid's value (empty: the
# libraries' default), ``threads`` the count each backend reports it ran with.
CELL_KEYS = ["sizes", "dtype", "threads_requested", "batch_size"]
SWEEP_COLUMNS = ["sweep_id", "cell", "threads_requested", "run_dir", *SUMMARY_COLUMNS,
                 "epoch_seconds"]
WINNER_COLUMNS = [
    *CELL_KEYS, "winner", "winner_s", "runner_up", "runner_up_s", "lead",
    "best_ours", "best_ours_s", "best_peer", "best_peer_s", "ours_vs_peer",
    "ours_vs_peer_low", "ours_vs_peer_high", "ours_lead", "backends_timed",
]
# ``ours_lead``: the best of ours against the best peer, as the bootstrap reads it.
LEAD_SUPPORTED, LEAD_NOT_SUPPORTED, PEER_LEADS = "ours", "not supported", "peer"


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


def parse_list(option: str, text: str, convert: Callable[[str], object], example: str) -> tuple:
    """'1,10,100' -> (1, 10, 100), with an error that names the option and the form."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if not all(parts):
            raise ValueError(text)
        return tuple(convert(part) for part in parts)
    except ValueError:
        raise UsageError(f"{option} {text!r} must be a comma list, e.g. {example}") from None


def parse_dtype(text: str) -> str:
    if text not in DTYPES:
        raise ValueError(text)
    return text


def parse_threads(text: str) -> int | None:
    """A thread count, or 'default' for the libraries' own choice."""
    return None if text == "default" else int(text)


class SweepObserver(Observer):
    """Progress of a sweep, for a front end to show; also receives every run's events."""

    def sweep_started(self, cells: Sequence[RunConfig]) -> None: ...
    def cell_started(self, index: int, cell: RunConfig) -> None: ...


@dataclass
class SweepResult:
    sweep_id: str
    sweep_dir: Path
    frame: pd.DataFrame
    winners: pd.DataFrame
    runs: list[RunResult] = field(default_factory=list)
    interrupted: bool = False
    report: Path | None = None  # the sweep's index.html

    @property
    def exit_code(self) -> int:
        """130 if interrupted, 1 if a backend failed in any cell (cut short is not a
        failure; a backend with no timed epoch within the budget is), else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if all(r.exit_code == EXIT_OK for r in self.runs) else EXIT_FAILED


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
) -> SweepResult:
    """Run every cell and write ``<results_dir>/<sweep-id>/``: sweep.csv (rewritten
    after every cell), winners.csv, sweep.json, the plots, and cells/<run-id>/."""
    from harness.reporting import pages, plots

    if budget is not None and not budget > 0:
        raise UsageError(f"--max-seconds-per-cell must be positive seconds, got {budget}")
    observer = observer or SweepObserver()
    cells = check_cells(cells, observer.notice)
    sweep_id = new_run_id()
    sweep_dir = Path(cells[0].results_dir) / sweep_id
    meta = {"sweep_id": sweep_id, "started": _now(), "budget_seconds": budget,
            "cells": [c.to_dict() for c in cells], **machine.metadata(cells[0].argv)}
    folder = storage.SweepWriter(sweep_dir, meta)
    observer.sweep_started(cells)
    runs, frames, interrupted = [], [], False
    try:
        for index, cell in enumerate(cells):
            observer.cell_started(index, cell)
            run = execute(replace(cell, results_dir=folder.cells_dir), observer, budget)
            runs.append(run)
            frames.append(cell_rows(sweep_id, index, cell, run, sweep_dir))
            folder.frame(pd.concat(frames, ignore_index=True))
            if run.interrupted:
                interrupted = True
                break
    except KeyboardInterrupt:  # between two backends' workers: the finished cells stand
        interrupted = True
    frame = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame(columns=SWEEP_COLUMNS))
    winners = winner_map(frame)
    folder.frame(frame)
    folder.winners(winners)
    if not frame.empty:
        plots.write_all(frame, winners, sweep_dir)
    result = SweepResult(sweep_id, sweep_dir, frame, winners, runs, interrupted)
    folder.update_meta(finished=_now(), exit_code=result.exit_code)
    result.report = pages.write_report(sweep_dir)
    return result


def cell_rows(sweep_id: str, index: int, cell: RunConfig, run: RunResult,
              sweep_dir: Path) -> pd.DataFrame:
    """The run's summary with the cell's settings: its rows of sweep.csv."""
    rows = run.summary.copy()
    extra = {"sweep_id": sweep_id, "cell": index, "threads_requested": cell.threads,
             "run_dir": run.run_dir.relative_to(sweep_dir).as_posix()}
    for column, value in extra.items():
        rows[column] = value
    # Every timed epoch, for the bootstrap of the winner map's lead ("0.091;0.090").
    timed = {o.backend: ";".join(f"{e.seconds:.6g}" for e in o.epochs) for o in run.outcomes}
    rows["epoch_seconds"] = [timed.get(b, "") for b in rows["backend"]]
    # A summary column another module adds (pct_peak) is kept, after the known ones.
    return rows[SWEEP_COLUMNS + [c for c in rows.columns if c not in SWEEP_COLUMNS]]


def winner_map(frame: pd.DataFrame, peers: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per cell: the fastest backend by median epoch time, its lead (the
    next backend's time over its own; 1.0 for a tie, whose winners are joined by
    ' = '), and the best of ours against the best peer (``ours_vs_peer`` > 1: ours
    is faster). Only backends whose epochs stand (ok, cut short) take part; a
    cell where none did has no winner. ``peers`` defaults to the registry's.

    ``ours_vs_peer_low``/``_high`` are the 95% bootstrap interval of that ratio,
    from the two backends' epoch times, and ``ours_lead`` says what it supports:
    "ours" where the whole interval is above 1, "peer" where the peer is faster,
    "not supported" where ours is faster at the medians but the interval
    reaches below 1."""
    peers = backends.peers() if peers is None else peers
    groups = frame.groupby(CELL_KEYS, sort=False, dropna=False)
    rows = [{**dict(zip(CELL_KEYS, key)), **_cell_winner(group, peers)} for key, group in groups]
    return pd.DataFrame(rows, columns=WINNER_COLUMNS)


def _cell_winner(group: pd.DataFrame, peers: Sequence[str]) -> dict:
    timed = group[group["status"].isin(STANDING) & group["median_s"].notna()]
    timed = timed.sort_values("median_s", kind="stable")
    seconds = dict(zip(timed["backend"], timed["median_s"]))
    row = {"backends_timed": len(seconds)}
    if not seconds:
        return row
    best = min(seconds.values())
    tied = [name for name, s in seconds.items() if s == best]
    slower = [(name, s) for name, s in seconds.items() if s > best]
    row.update(winner=" = ".join(tied), winner_s=best)
    if len(tied) > 1:
        row.update(runner_up=tied[1], runner_up_s=best, lead=1.0)
    elif slower:
        row.update(runner_up=slower[0][0], runner_up_s=slower[0][1], lead=slower[0][1] / best)
    ours = [(name, s) for name, s in seconds.items() if name not in peers]
    theirs = [(name, s) for name, s in seconds.items() if name in peers]
    if ours:
        row.update(best_ours=ours[0][0], best_ours_s=ours[0][1])
    if theirs:
        row.update(best_peer=theirs[0][0], best_peer_s=theirs[0][1])
    if ours and theirs:
        row["ours_vs_peer"] = theirs[0][1] / ours[0][1]
        row.update(_lead_interval(timed, ours[0][0], theirs[0][0]))
    return row


def _lead_interval(timed: pd.DataFrame, ours: str, peer: str) -> dict:
    if "epoch_seconds" not in timed.columns:
        return {}  # rows from before the epochs were kept: no interval
    samples = {}
    for name in (ours, peer):
        text = timed.loc[timed["backend"] == name, "epoch_seconds"]
        text = "" if text.empty or pd.isna(text.iloc[0]) else str(text.iloc[0])
        samples[name] = np.array([float(v) for v in text.split(";") if v])
    if not all(len(v) for v in samples.values()):
        return {}  # rows from before the epochs were kept: no interval
    estimate = stats.ratio_of_medians([samples[peer]], [samples[ours]],
                                      np.random.default_rng(0))
    lead = (PEER_LEADS if estimate.ratio <= 1 else
            LEAD_SUPPORTED if estimate.low > 1 else LEAD_NOT_SUPPORTED)
    return {"ours_vs_peer_low": estimate.low, "ours_vs_peer_high": estimate.high,
            "ours_lead": lead}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
