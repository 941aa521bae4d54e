"""The report pages of a run folder and of a sweep folder, built from their files
alone (so ``python -m harness report`` can rebuild them at any time), written
as ``index.html`` beside the files they show."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from harness import flamegraph, report
from harness.reporting import html

INDEX = "index.html"
OK_STATUSES = ("ok", "cut-short")
SWEEP_PLOTS = ("seconds_per_epoch.svg", "throughput.svg", "winners.svg")


class NotARunFolder(ValueError):
    """The folder holds neither a run nor a sweep; the message names it."""


def write_report(folder: Path) -> Path:
    """``folder/index.html`` for a run folder (run.json) or a sweep folder (sweep.json)."""
    folder = Path(folder)
    if (folder / "sweep.json").is_file():
        text = sweep_report(folder)
    elif (folder / "run.json").is_file():
        text = run_report(folder)
    else:
        raise NotARunFolder(f"{folder}: neither a run folder (run.json) nor a sweep folder "
                            "(sweep.json), as written by `python -m harness run` or `sweep`")
    path = folder / INDEX
    report.write_atomic(path, text)
    return path


def run_report(run_dir: Path) -> str:
    meta = _json(run_dir / "run.json")
    summary = _rows(run_dir / "summary.csv")
    failures = meta.get("failures") or [
        {"backend": r["backend"], "status": r["status"], "message": r.get("message") or ""}
        for r in summary if r.get("status") not in OK_STATUSES]
    return html.run_page(meta, summary, _rows(run_dir / "epochs.csv"),
                         _rows(run_dir / "time_breakdown.csv"),
                         _rows(run_dir / "hot_functions.csv"), failures,
                         _flamegraphs(run_dir, meta))


def sweep_report(sweep_dir: Path) -> str:
    meta = _json(sweep_dir / "sweep.json")
    winners, cells = _rows(sweep_dir / "winners.csv"), _rows(sweep_dir / "sweep.csv")
    keys = ("sizes", "dtype", "threads_requested", "batch_size")
    run_of = {tuple(str(c.get(k)) for k in keys): c["run_dir"] for c in cells}
    links = {}
    for i, row in enumerate(winners):
        run = run_of.get(tuple(str(row.get(k)) for k in keys))
        if run and (sweep_dir / run).is_dir():
            links[i] = f"{run}/{INDEX}"
    plots = [name for name in SWEEP_PLOTS if (sweep_dir / name).is_file()]
    return html.sweep_page(meta, winners, links, plots)


def _flamegraphs(run_dir: Path, meta: dict) -> dict[str, str]:
    folder = flamegraph.flamegraph_folder(run_dir, meta)
    if folder is None:
        return {}
    return {backend: Path(os.path.relpath(folder / f"{backend}.svg", run_dir)).as_posix()
            for backend in flamegraph.profiled_backends(folder)
            if (folder / f"{backend}.svg").is_file()}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise NotARunFolder(f"{path}: not readable JSON ({e})") from None


def _rows(path: Path) -> list[dict]:
    """A CSV's rows as dicts, NaN for empty cells; [] for a missing or empty file."""
    if not path.is_file():
        return []
    try:
        frame = pd.read_csv(path, dtype={"sizes": str})
    except pd.errors.EmptyDataError:
        return []
    return frame.to_dict("records")
