"""The run-folder format: every file of a run folder (and of a sweep folder) is
written and read here.

A run folder holds ``run.json`` (the settings, the machine, ``failures``: each
failed backend's status, message and traceback, and ``format_version``),
``epochs.csv`` (one row per timed epoch, rewritten as each arrives),
``summary.csv`` (one row per backend), when counted ``instructions.csv`` (one
row per counted epoch: ``run --count-instructions``), when profiled ``time_breakdown.csv``
and ``hot_functions.csv``, after a failure ``errors/<backend>.log`` (or
``<backend>.profile.log``, ``<backend>.allocations.log``) with everything the
failure said, and ``index.html``, the report page built from the others (a sweep
folder has one too). Files are written atomically: a reader, or a run stopped
half-way, only ever sees a complete file. A folder written before the
format carried a version reads as version 1, which it is.

A new optional column or run.json key extends the current version: readers take
columns by name and read a cell or key that is absent as empty, so older
folders stay readable and an older harness ignores what it does not know (so
came summary.csv's ``allocations_per_epoch`` and ``bytes_allocated_per_epoch``,
and run.json's ``allocations``). The version goes up, with the old one kept in
``READABLE_VERSIONS`` where it can still be read, only for a change an older
reader would misread: a column renamed, removed, or given another meaning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import stats
from harness.config import UsageError
from harness.files import StorageError as StorageError
from harness.files import write_atomic as write_atomic
from harness.files import write_csv as write_csv
from harness.files import write_figure as write_figure
from harness.files import write_json as write_json
from harness.records import BackendOutcome, EpochRecord

FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)

RUN_JSON = "run.json"
EPOCHS_CSV = "epochs.csv"
SUMMARY_CSV = "summary.csv"
TIME_BREAKDOWN_CSV = "time_breakdown.csv"
HOT_FUNCTIONS_CSV = "hot_functions.csv"
INSTRUCTIONS_CSV = "instructions.csv"  # optional: a folder without it was not counted
ERRORS_DIR = "errors"  # <backend>.log, <backend>.profile.log: a failure's whole output
RUN_FILES = (EPOCHS_CSV, SUMMARY_CSV, RUN_JSON)
SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
WINNERS_CSV = "winners.csv"
CELLS_DIR = "cells"
HISTORY_CSV = "history.csv"
INDEX_HTML = "index.html"  # the report page, rebuilt from the folder's other files
SWEEP_PLOTS = ("seconds_per_epoch", "throughput", "winners")  # each as .png and .svg

EPOCH_COLUMNS = list(EpochRecord.__dataclass_fields__)

# What makes two measurements comparable: the same work on the same number of
# threads. The seed is left out on purpose: it changes the numbers trained on,
# not the amount of work.
CONFIG_COLUMNS = ["dtype", "sizes", "batch_size", "eta", "dataset", "n_train", "threads"]
REQUIRED_COLUMNS = ["backend", *CONFIG_COLUMNS, "seconds"]
EPOCH_SECONDS_SEPARATOR = ";"  # sweep.csv's epoch_seconds: every timed epoch of a row
# A counted epoch: the configuration is the counted workload's (one thread, a
# fixed dataset), not the timed run's. ``count`` numbers the counts of a backend
# in a folder (pooled runs each add one).
INSTRUCTION_COLUMNS = ["backend", *CONFIG_COLUMNS, "count", "epoch", "instructions"]


def join_epoch_seconds(seconds: Iterable[float]) -> str:
    """A row's timed epochs in one cell of sweep.csv: "0.091;0.090"."""
    return EPOCH_SECONDS_SEPARATOR.join(f"{s:.6g}" for s in seconds)


def split_epoch_seconds(text) -> np.ndarray:
    """The timed epochs of a sweep.csv cell ("0.091;0.090"); none where it is empty
    (an attempt without a run, or a row from before the epochs were kept)."""
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    return np.array([float(v) for v in text.split(EPOCH_SECONDS_SEPARATOR) if v])


def epochs_frame(records: Iterable[EpochRecord]) -> pd.DataFrame:
    return pd.DataFrame([r.to_row() for r in records], columns=EPOCH_COLUMNS)


def write_meta(meta: dict, run_dir: Path) -> None:
    """run.json, stamped with the version of the format it belongs to."""
    write_json({"format_version": FORMAT_VERSION, **meta}, run_dir / RUN_JSON)


class RunWriter:
    """A run folder's files, rewritten whole (and atomically) as records arrive."""

    def __init__(self, run_dir: Path, meta: dict, with_epochs: bool = True):
        self.run_dir, self.meta, self.records = run_dir, meta, []
        write_meta(meta, run_dir)
        if with_epochs:
            write_csv(epochs_frame([]), run_dir / EPOCHS_CSV)

    def add(self, record: EpochRecord) -> None:
        self.records.append(record)
        write_csv(epochs_frame(self.records), self.run_dir / EPOCHS_CSV)

    def summary(self, summary: pd.DataFrame) -> None:
        write_csv(summary, self.run_dir / SUMMARY_CSV)

    def instructions(self, counts: pd.DataFrame) -> None:
        write_csv(counts[INSTRUCTION_COLUMNS], self.run_dir / INSTRUCTIONS_CSV)

    def update_meta(self, **extra) -> None:
        self.meta.update(**extra)
        write_meta(self.meta, self.run_dir)


def write_profile(run_dir: Path, breakdown: pd.DataFrame, hot: pd.DataFrame) -> None:
    """The profile's tables in the run folder: where the time goes, and the hottest functions."""
    write_csv(breakdown, run_dir / TIME_BREAKDOWN_CSV)
    write_csv(hot, run_dir / HOT_FUNCTIONS_CSV)


def write_failure_log(run_dir: Path, outcome: BackendOutcome) -> Path:
    """``errors/<backend>.log`` of a failed backend: its status, its message and the
    worker's whole traceback, when it sent one."""
    text = (f"backend: {outcome.backend}\nstatus: {outcome.status}\n"
            f"message: {outcome.message}\n")
    if outcome.traceback:
        text += f"\n{outcome.traceback}"
    return write_error_log(run_dir, outcome.backend, text)


def write_error_log(run_dir: Path, name: str, text: str) -> Path:
    """``errors/<name>.log``: all a failure said (a traceback, a child's stderr), which
    summary.csv and the printed notes refer to by this path."""
    path = Path(run_dir) / ERRORS_DIR / f"{name}.log"
    write_atomic(path, text if text.endswith("\n") else text + "\n")
    return path


class SweepWriter:
    """A sweep folder: sweep.json, sweep.csv and winners.csv (rewritten after every
    cell); its runs go in ``cells/``, written in place or from the bytes a cluster's
    worker sent back."""

    def __init__(self, sweep_dir: Path, meta: dict, write: bool = True):
        self.sweep_dir, self.meta = sweep_dir, meta
        self.cells_dir = sweep_dir / CELLS_DIR
        if write:
            write_json({"format_version": FORMAT_VERSION, **meta}, sweep_dir / SWEEP_JSON)

    @classmethod
    def reopen(cls, sweep_dir: Path) -> SweepWriter:
        """The writer of an existing sweep folder, to add cells to it."""
        return cls(Path(sweep_dir), read_sweep_meta(sweep_dir), write=False)

    def run_files(self, run_dir: str, files: dict[str, bytes]) -> Path:
        """A cell's run folder (``run_dir``, relative to the sweep folder, inside
        ``cells/``) from its files' bytes, each written atomically."""
        folder = (self.sweep_dir / run_dir).resolve()
        for name, content in files.items():
            path = (folder / name).resolve()
            if self.cells_dir.resolve() not in folder.parents or folder not in path.parents:
                raise StorageError(f"{self.sweep_dir}: refusing to write {run_dir}/{name}, "
                                   f"which is not inside {CELLS_DIR}/<run-id>/")
            write_atomic(path, content)
        return folder

    def frame(self, frame: pd.DataFrame) -> None:
        write_csv(frame, self.sweep_dir / SWEEP_CSV)

    def winners(self, winners: pd.DataFrame) -> None:
        write_csv(winners, self.sweep_dir / WINNERS_CSV)

    def update_meta(self, **extra) -> None:
        self.meta.update(**extra)
        write_json({"format_version": FORMAT_VERSION, **self.meta}, self.sweep_dir / SWEEP_JSON)


def read_sweep_meta(sweep_dir: Path) -> dict:
    """sweep.json of a sweep folder, its format version checked."""
    path = Path(sweep_dir) / SWEEP_JSON
    if not path.is_file():
        raise RunFolderError(f"{sweep_dir}: not a sweep folder (no {SWEEP_JSON}), as written "
                             "by `python -m harness sweep`")
    meta = read_meta(path)
    if not isinstance(meta.get("cells"), list):
        raise RunFolderError(f"{path}: no list of cells, as a sweep writes")
    return meta


def read_sweep_frame(sweep_dir: Path) -> pd.DataFrame:
    """sweep.csv of a sweep folder; an empty frame when no cell has finished."""
    rows = read_rows(Path(sweep_dir) / SWEEP_CSV)
    return pd.DataFrame(rows)


def write_history(history: pd.DataFrame, results_dir: Path) -> Path:
    path = Path(results_dir) / HISTORY_CSV
    write_csv(history, path)
    return path


class RunFolderError(UsageError):
    """A run folder or file that cannot be read as a run; the message names it."""


class NoTimedEpochs(RunFolderError):
    """A well-formed run with no timed epoch: stopped before its first, or still running."""


@dataclass(frozen=True)
class Run:
    """One run folder: its timed epochs (status ok only) and its run.json."""

    path: Path
    epochs: pd.DataFrame
    meta: dict = field(default_factory=dict)
    instructions: pd.DataFrame | None = None  # instructions.csv, when the run was counted

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
    parts = sorted(p.parent for p in folder.glob(f"*/{EPOCHS_CSV}"))
    if (folder / EPOCHS_CSV).exists() or not parts:
        return _one_run(folder)
    runs = [_one_run(part) for part in parts]
    meta = {**runs[0].meta, "run_id": folder.name, "pooled_runs": [r.label for r in runs]}
    counted = [r.instructions for r in runs if r.instructions is not None]
    return Run(folder, pd.concat([r.epochs for r in runs], ignore_index=True), meta,
               _pool_counts(counted) if counted else None)


def _one_run(folder: Path) -> Run:
    return Run(folder, read_epochs(folder / EPOCHS_CSV), read_meta(folder / RUN_JSON),
               read_instructions(folder / INSTRUCTIONS_CSV))


def _pool_counts(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The counts of several runs, each run's counts of a backend numbered apart."""
    renumbered, seen = [], {}
    for frame in frames:
        frame = frame.copy()
        offsets = frame["backend"].map(lambda b: seen.get(b, 0))
        frame["count"] = frame["count"] + offsets
        for backend, group in frame.groupby("backend"):
            seen[backend] = int(group["count"].max()) + 1
        renumbered.append(frame)
    return pd.concat(renumbered, ignore_index=True)


def read_instructions(path: Path) -> pd.DataFrame | None:
    """instructions.csv, or None for a run that was not counted."""
    rows = read_rows(path)
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    missing = [c for c in INSTRUCTION_COLUMNS if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"an instructions.csv has {', '.join(INSTRUCTION_COLUMNS)}")
    frame["sizes"] = frame["sizes"].astype(str)
    return frame


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
    _check_complete(frame, path)
    if len(frame) and not pd.api.types.is_numeric_dtype(frame["seconds"]):
        raise RunFolderError(f"{path}: the seconds column holds values that are not numbers")
    frame = stats.standing_epochs(frame)
    if frame.empty:
        raise NoTimedEpochs(f"{path}: no timed epoch in this run")
    return frame.reset_index(drop=True)


def _check_last_line(path: Path) -> None:
    """The harness ends every CSV with a newline: without one, the file was cut short."""
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise RunFolderError(f"{path}: the last line is incomplete (a truncated file?)")


def _check_complete(frame: pd.DataFrame, path: Path) -> None:
    """Every line whole: the harness ends the file with a newline and leaves no field
    of a record empty, so anything else is a file cut short or edited."""
    _check_last_line(path)
    known = [c for c in EPOCH_COLUMNS if c in frame.columns]
    incomplete = frame[known].isna().any(axis=1).to_numpy()
    if incomplete.any():
        line = int(incomplete.argmax()) + 2  # the header is line 1
        raise RunFolderError(f"{path}: line {line} has empty fields (a truncated or "
                             "edited file?)")


def read_rows(path: Path) -> list[dict]:
    """A CSV's rows as dicts, NaN for empty cells; [] for a missing or empty file
    (a run stopped early, or one that was not profiled)."""
    if not path.is_file():
        return []
    try:
        frame = pd.read_csv(path, dtype={"sizes": str})
    except pd.errors.EmptyDataError:
        return []
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: not a readable CSV ({e})") from None
    _check_last_line(path)
    return frame.to_dict("records")


def read_standing_rows(path: Path) -> list[dict]:
    """The epochs of an epochs.csv that stand as measurements, as rows; [] when none
    does. A file cut short, or without the columns a report shows, is an error."""
    rows = read_rows(path)
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    missing = [c for c in ("backend", "seconds") if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"an epochs.csv has {', '.join(REQUIRED_COLUMNS)}")
    _check_complete(frame, path)
    return stats.standing_epochs(frame).to_dict("records")


def read_meta(path: Path) -> dict:
    """run.json as a dict, its format version checked; {} when a run has none
    (an older or hand-made folder)."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunFolderError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(meta, dict):
        raise RunFolderError(f"{path}: expected a JSON object")
    check_version(meta, path)
    return meta


def check_version(meta: dict, path: Path) -> int:
    """The format version of a run.json; one written before versions were recorded is 1."""
    version = meta.get("format_version", 1)
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise RunFolderError(f"{path}: format_version {version!r} is not one this harness "
                             f"reads ({readable}); read it with the version that wrote it")
    return version


def config_label(key: tuple) -> str:
    """A configuration in one short line, e.g. ``float64 784,30,10 b10 eta3 mnist-sample
    n8000 t2``."""
    c = dict(zip(CONFIG_COLUMNS, key))
    return (f"{c['dtype']} [{c['sizes']}] batch {c['batch_size']} eta {c['eta']:g} "
            f"{c['dataset']} n={c['n_train']} threads={c['threads']}")
