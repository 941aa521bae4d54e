"""Every run under a results folder in one table, and epoch time per backend over
commits, the way airspeed velocity shows a project's history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import stats, storage
from harness.storage import (
    CONFIG_COLUMNS,
    NoTimedEpochs,
    RunFolderError,
    config_label,
    load_run,
)

HISTORY_COLUMNS = ["run_dir", "run_id", "date", "commit", "backend", *CONFIG_COLUMNS,
                   "epochs", "median_s"]
PLOT_SUFFIXES = (".png", ".svg")


def gather(results_dir: Path | str) -> pd.DataFrame:
    """One row per run, backend and configuration, ordered by date.

    Every folder below ``results_dir`` holding an epochs.csv counts as a run; one
    without a timed epoch (stopped before its first, or still running) is skipped,
    and one that cannot be read raises RunFolderError naming its file.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise RunFolderError(f"{results_dir}: no such results folder; runs are written there "
                             "by `python -m harness run --results-dir DIR`")
    rows = []
    for epochs_csv in sorted(results_dir.rglob(storage.EPOCHS_CSV)):
        try:
            run = load_run(epochs_csv.parent)
        except NoTimedEpochs:
            continue
        rows += _run_rows(run, epochs_csv.parent.relative_to(results_dir).as_posix())
    if not rows:
        raise RunFolderError(f"{results_dir}: no run with timed epochs found")
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return frame.sort_values(["date", "run_dir", "backend"], kind="stable").reset_index(drop=True)


def _run_rows(run, run_dir: str) -> list[dict]:
    meta = run.meta
    date = meta.get("started") or str(run.epochs["timestamp"].min()
                                       if "timestamp" in run.epochs else "")
    rows = []
    for (backend, *config), group in run.epochs.groupby(["backend", *CONFIG_COLUMNS],
                                                       sort=False, dropna=False):
        rows.append({"run_dir": run_dir, "run_id": run.label, "date": date,
                     "commit": meta.get("git_commit") or "", "backend": backend,
                     **dict(zip(CONFIG_COLUMNS, config)),
                     "epochs": len(group), "median_s": stats.median(group["seconds"])})
    return rows


def short_commit(commit: str) -> str:
    """``abc1234`` from a full hash, keeping the mark of a tree with changes."""
    if not commit:
        return "unknown"
    return commit[:7] + ("+" if "+dirty" in commit else "")


def check_plot_path(path: Path | str) -> Path:
    """The plot's file, whose name says its format."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise RunFolderError(f"--plot {path}: the file name must end in "
                             f"{' or '.join(PLOT_SUFFIXES)}")
    return path


def plot(history: pd.DataFrame, path: Path) -> None:
    """Epoch time per backend over runs: one line per backend, one panel per
    configuration, runs ordered by date and labelled by short commit."""
    path = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = history[CONFIG_COLUMNS].drop_duplicates().itertuples(index=False, name=None)
    configs = list(configs)
    fig, axes = plt.subplots(len(configs), 1, squeeze=False,
                             figsize=(max(6.0, 0.6 * history["run_dir"].nunique() + 3),
                                      3.6 * len(configs)))
    # One colour per backend in every panel.
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {b: cycle[i % len(cycle)] for i, b in enumerate(sorted(history["backend"].unique()))}
    for ax, config in zip(axes[:, 0], configs):
        _plot_panel(ax, _select(history, config), config, colors)
    fig.tight_layout()
    storage.write_figure(fig, path)
    plt.close(fig)


def _select(history: pd.DataFrame, config: tuple) -> pd.DataFrame:
    mask = pd.Series(True, index=history.index)
    for column, value in zip(CONFIG_COLUMNS, config):
        mask &= (history[column] == value) | (history[column].isna() & pd.isna(value))
    return history[mask]


def _plot_panel(ax, rows: pd.DataFrame, config: tuple, colors: dict[str, str]) -> None:
    runs = rows.drop_duplicates("run_dir")[["run_dir", "commit"]].reset_index(drop=True)
    position = {run_dir: i for i, run_dir in enumerate(runs["run_dir"])}
    for backend, group in rows.groupby("backend", sort=True):
        ax.plot(group["run_dir"].map(position), group["median_s"], marker="o", label=backend,
                color=colors[backend])
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([short_commit(c) for c in runs["commit"]], rotation=45, ha="right",
                       fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median s / epoch")
    ax.set_xlabel("run (by date), labelled by commit")
    ax.set_title(config_label(config), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
