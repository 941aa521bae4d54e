"""Where a sweep's cells run: here, one after the other (``SerialExecutor``), or on
a Dask cluster (``harness.running.cluster.ClusterExecutor``). Both hand the sweep
the same ``CellOutcome`` as each cell ends, and the sweep writes its folder from
those alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from harness import storage
from harness.config import RunConfig
from harness.running import provenance
from harness.running.run import EXIT_FAILED, Observer, execute

DONE = "done"  # an attempt that ran; otherwise a backend status (lost, failed) for all


@dataclass(frozen=True)
class Pending:
    """A cell to run: its place in the grid, the attempt this will be, its settings."""

    index: int
    attempt: int
    cell: RunConfig
    fingerprint: str | None = None  # a retry runs on this machine type only


@dataclass
class CellOutcome:
    """One attempt at a cell, as plain data: the run's summary rows, the files of its
    run folder (None when it was written in place), and where and when it ran."""

    index: int
    attempt: int
    status: str = DONE  # or LOST, FAILED: the attempt produced no run
    rows: list[dict] = field(default_factory=list)
    run_dir: str | None = None  # relative to the sweep folder
    files: dict[str, bytes] | None = None
    provenance: dict = field(default_factory=dict)
    worker: str = "local"
    started: str | None = None
    finished: str | None = None
    exit_code: int = 0
    interrupted: bool = False
    message: str = ""  # why an attempt was lost


OnCell = Callable[[CellOutcome], None]


class SweepObserver(Observer):
    """Progress of a sweep, for a front end to show; also receives every run's events
    (on a cluster, ``backend_finished`` as each cell's results arrive)."""

    def sweep_started(self, cells: Sequence[RunConfig], grid_size: int | None = None) -> None:
        """``cells`` are those to run now; ``grid_size`` counts the whole grid (more,
        when a sweep is resumed), and numbers the cells of ``cell_started``."""

    def cell_started(self, index: int, cell: RunConfig) -> None: ...


class Executor:
    """Runs cells and reports each as it ends; ``run`` says whether it was interrupted."""

    name = "executor"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def run(self, work: Sequence[Pending], budget: float | None, cells_dir: Path,
            observer: SweepObserver, on_cell: OnCell) -> bool:
        raise NotImplementedError


class SerialExecutor(Executor):
    """Every cell here, one after the other, each run writing its own folder."""

    name = "serial"

    def run(self, work, budget, cells_dir, observer, on_cell) -> bool:
        facts = provenance.describe()
        for pending in work:
            observer.cell_started(pending.index, pending.cell)
            started = now()
            run = execute(replace(pending.cell, results_dir=cells_dir), observer, budget)
            on_cell(CellOutcome(
                pending.index, pending.attempt, rows=rows_with_epochs(run),
                run_dir=f"{cells_dir.name}/{run.run_id}", provenance=facts, started=started,
                finished=now(), exit_code=run.exit_code, interrupted=run.interrupted))
            if run.interrupted:
                return True
        return False


def rows_with_epochs(run) -> list[dict]:
    """The summary rows, each with its backend's timed epochs ("0.091;0.090"),
    for the bootstrap of the winner map's lead."""
    timed = {o.backend: storage.join_epoch_seconds(e.seconds for e in o.epochs)
             for o in run.outcomes}
    return [{**row, "epoch_seconds": timed.get(row["backend"], "")}
            for row in run.summary.to_dict("records")]


def unrun(pending: Pending, status: str, worker: str, facts: dict, started: str | None,
          message: str) -> CellOutcome:
    """An attempt that produced no run: its worker was lost (``LOST``), or the task
    itself failed there (``FAILED``); the sweep gives each backend a row saying so."""
    return CellOutcome(pending.index, pending.attempt, status=status, provenance=facts,
                       worker=worker, started=started, finished=now(), exit_code=EXIT_FAILED,
                       message=message)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
