"""The report pages of a run folder and of a sweep folder, built from their files
alone (so ``python -m harness report`` can rebuild them at any time), written
as ``index.html`` beside the files they show. The files are read through
``harness.storage``, the one owner of the run-folder format."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from harness import storage
from harness.profiling import flamegraph
from harness.records import STANDING
from harness.reporting import html


class NotARunFolder(storage.RunFolderError):
    """The folder holds neither a run nor a sweep; the message names it."""


def write_report(folder: Path) -> Path:
    """``folder/index.html`` for a run folder (run.json) or a sweep folder (sweep.json)."""
    folder = Path(folder)
    if (folder / storage.SWEEP_JSON).is_file():
        text = sweep_report(folder)
    elif (folder / storage.RUN_JSON).is_file():
        text = run_report(folder)
    else:
        raise NotARunFolder(f"{folder}: neither a run folder ({storage.RUN_JSON}) nor a sweep "
                            f"folder ({storage.SWEEP_JSON}), as written by `python -m harness "
                            "run` or `sweep`")
    path = folder / storage.INDEX_HTML
    storage.write_atomic(path, text)
    return path


def draw_sweep(sweep_dir: Path, frame: pd.DataFrame, winners: pd.DataFrame) -> Path:
    """A sweep's plots (once it has a row) and its report, as its files stand, with
    the report of every cell's run that has none yet (a run writes no page; a
    cluster's cell comes back as its files): what ``run_sweep`` draws as cells
    arrive, and the command once more at the end. Returns the sweep's index.html."""
    sweep_dir = Path(sweep_dir)
    runs = frame["run_dir"].dropna().unique() if "run_dir" in frame else []
    for run in runs:
        run_dir = sweep_dir / str(run)
        if (run_dir / storage.RUN_JSON).is_file() and not (run_dir / storage.INDEX_HTML).exists():
            write_report(run_dir)
    if not frame.empty:
        from harness.reporting import plots  # matplotlib, only once there is a figure

        plots.write_all(frame, winners, sweep_dir)
    return write_report(sweep_dir)


def run_report(run_dir: Path) -> str:
    meta = storage.read_meta(run_dir / storage.RUN_JSON)
    summary = storage.read_rows(run_dir / storage.SUMMARY_CSV)
    failures = meta.get("failures") or [
        {"backend": r["backend"], "status": r["status"], "message": r.get("message") or ""}
        for r in summary if r.get("status") not in STANDING]
    return html.run_page(meta, summary, storage.read_standing_rows(run_dir / storage.EPOCHS_CSV),
                         storage.read_rows(run_dir / storage.TIME_BREAKDOWN_CSV),
                         storage.read_rows(run_dir / storage.HOT_FUNCTIONS_CSV), failures,
                         _flamegraphs(run_dir, meta))


def sweep_report(sweep_dir: Path) -> str:
    meta = storage.read_meta(sweep_dir / storage.SWEEP_JSON)
    winners = storage.read_rows(sweep_dir / storage.WINNERS_CSV)
    cells = storage.read_rows(sweep_dir / storage.SWEEP_CSV)
    keys = ("sizes", "dtype", "threads_requested", "batch_size", "fingerprint")
    run_of = {tuple(str(c.get(k)) for k in keys): c["run_dir"] for c in cells
              if isinstance(c.get("run_dir"), str)}  # a lost attempt has no run
    links = {}
    for i, row in enumerate(winners):
        run = run_of.get(tuple(str(row.get(k)) for k in keys))
        if run and (sweep_dir / run).is_dir():
            links[i] = f"{run}/{storage.INDEX_HTML}"
    plots = [f"{name}.svg" for name in storage.SWEEP_PLOTS
             if (sweep_dir / f"{name}.svg").is_file()]
    return html.sweep_page(meta, winners, links, plots, _machines(cells))


def _machines(cells: list[dict]) -> list[dict]:
    """A row per worker and machine fingerprint that sweep.csv names."""
    keys = [key for key, _, _ in html.MACHINES]
    seen = {tuple(str(c.get(k)) for k in keys): {k: c.get(k) for k in keys}
            for c in cells if isinstance(c.get("fingerprint"), str)}
    return list(seen.values())


def _flamegraphs(run_dir: Path, meta: dict) -> dict[str, str]:
    folder = flamegraph.flamegraph_folder(run_dir, meta)
    if folder is None:
        return {}
    return {backend: Path(os.path.relpath(folder / f"{backend}.svg", run_dir)).as_posix()
            for backend in flamegraph.profiled_backends(folder)
            if (folder / f"{backend}.svg").is_file()}
