"""One cell of a sweep, run where a cluster's worker is: plain data in (the cell's
settings as ``RunConfig.to_dict``, the budget, the client's identity), plain data
out (the summary rows, the run folder's files as bytes, where and when it ran).

Nothing of a backend crosses the wire: the cell runs the harness's own worker
processes, as a run does, into a temporary folder that is read back and removed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.config import RunConfig
from harness.running import provenance
from harness.running.executors import now, rows_with_epochs
from harness.running.run import Observer, execute


class _StopWhen(Observer):
    """Stops the run, as Ctrl-C would, once ``should_stop`` says so."""

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def poll(self) -> None:
        if self.should_stop():
            raise KeyboardInterrupt


def task(cell: RunConfig, budget: float | None, expected: dict) -> dict:
    """The message a client sends for one cell."""
    return {"config": cell.to_dict(), "budget": budget, "identity": expected}


def run_cell(message: dict, should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Run the cell of ``message`` here, unless this harness is not the client's
    (``refused`` then says why)."""
    provenance.pin_thread()
    facts = provenance.describe()
    refused = provenance.mismatch(message["identity"], facts)
    if refused:
        return {"refused": refused, "provenance": facts}
    config = RunConfig.from_dict(message["config"])
    with tempfile.TemporaryDirectory(prefix="nndl-bench-cell-") as folder:
        started = now()
        run = execute(replace(config, results_dir=Path(folder)), _StopWhen(should_stop),
                      message["budget"])
        finished = now()
        files = {path.relative_to(run.run_dir).as_posix(): path.read_bytes()
                 for path in sorted(run.run_dir.rglob("*")) if path.is_file()}
    return {"refused": None, "provenance": facts, "run_id": run.run_id,
            "rows": rows_with_epochs(run), "files": files,
            "exit_code": run.exit_code, "interrupted": run.interrupted,
            "started": started, "finished": finished}

