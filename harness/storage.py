"""Run folders read back: the per-epoch samples and the metadata of a finished
(or stopped) run, checked well enough that a comparison can trust them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.config import UsageError
from harness.records import OK

# What makes two measurements comparable: the same work on the same number of
# threads. The seed is left out on purpose: it changes the numbers trained on,
# not the amount of work.
CONFIG_COLUMNS = ["dtype", "sizes", "batch_size", "eta", "dataset", "n_train", "threads"]
REQUIRED_COLUMNS = ["backend", *CONFIG_COLUMNS, "seconds"]
RUN_FILES = ("epochs.csv", "summary.csv", "run.json")


class RunFolderError(UsageError):
    """A run folder or file that cannot be read as a run; the message names it."""


@dataclass(frozen=True)
class Run:
    """One run folder: its timed epochs (status ok only) and its run.json."""

    path: Path
    epochs: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.meta.get("run_id") or self.path.name


def run_dir(path: Path | str) -> Path:
    """The folder of a run, given the folder itself or one of its files."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name in RUN_FILES and path.parent.is_dir():
        return path.parent
    if not path.exists():
        raise RunFolderError(f"{path}: no such run folder or file")
    raise RunFolderError(f"{path}: expected a run folder or its {', '.join(RUN_FILES)}")


def load_run(path: Path | str) -> Run:
    """Read ``epochs.csv`` (required) and ``run.json`` (optional) of a run.

    A folder without epochs.csv whose subfolders are runs (a results folder of
    repeated runs of the same settings) is read as one run: their epochs pooled,
    so that a median spans the load a shared machine had over all of them.
    """
    folder = run_dir(path)
    parts = sorted(p.parent for p in folder.glob("*/epochs.csv"))
    if (folder / "epochs.csv").exists() or not parts:
        return Run(folder, read_epochs(folder / "epochs.csv"), read_meta(folder / "run.json"))
    runs = [Run(part, read_epochs(part / "epochs.csv"), read_meta(part / "run.json"))
            for part in parts]
    meta = {**runs[0].meta, "run_id": folder.name, "pooled_runs": [r.label for r in runs]}
    return Run(folder, pd.concat([r.epochs for r in runs], ignore_index=True), meta)


def read_epochs(path: Path) -> pd.DataFrame:
    """The timed epochs of ``path``, keeping only those that finished normally."""
    if not path.is_file():
        raise RunFolderError(f"{path}: not found; a run folder holds epochs.csv (or run "
                             "folders that do), written by `python -m harness run`")
    try:
        frame = pd.read_csv(path, dtype={"sizes": str})
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path}: empty file, not an epochs.csv") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"an epochs.csv has {', '.join(REQUIRED_COLUMNS)}")
    if "status" in frame.columns:
        frame = frame[frame["status"].fillna(OK) == OK]
    frame = frame.assign(seconds=pd.to_numeric(frame["seconds"], errors="coerce"))
    frame = frame[frame["seconds"] > 0]
    if frame.empty:
        raise RunFolderError(f"{path}: no timed epoch in this run")
    return frame.reset_index(drop=True)


def read_meta(path: Path) -> dict:
    """run.json as a dict; {} when a run has none (an older or hand-made folder)."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(meta, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
    return meta


def config_label(key: tuple) -> str:
    """A configuration in one short line, e.g. ``float64 784,30,10 b10 eta3 mnist-sample
    n8000 t2``."""
    c = dict(zip(CONFIG_COLUMNS, key))
    return (f"{c['dtype']} [{c['sizes']}] batch {c['batch_size']} eta {c['eta']:g} "
            f"{c['dataset']} n={c['n_train']} threads={c['threads']}")
