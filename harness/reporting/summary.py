"""The figures of a run, computed once in a summary frame, and the files and
tables that show them. Files are written atomically: a reader, or a run
stopped half-way, only ever sees a complete CSV."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness.records import BackendOutcome, EpochRecord

EPOCH_COLUMNS = list(EpochRecord.__dataclass_fields__)

SUMMARY_COLUMNS = [
    "run_id", "backend", "status", "message", "dtype", "sizes", "batch_size", "eta", "seed",
    "dataset", "n_train", "threads", "epochs", "median_s", "min_s", "max_s",
    "samples_per_s", "gflops", "pct_peak", "speedup", "peak_rss_mb", "accuracy",
    "warmup_seconds", "compile_seconds",
]


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from other users
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, frame.to_csv(index=False))


def write_json(data: dict, path: Path) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def epochs_frame(records: Iterable[EpochRecord]) -> pd.DataFrame:
    return pd.DataFrame([r.to_row() for r in records], columns=EPOCH_COLUMNS)


def summarize(
    run_id: str, outcomes: list[BackendOutcome], config_row: dict, reference: str,
    peak_gflops: float | None = None,
) -> pd.DataFrame:
    """One row per backend: the figures every table and file of the run shows.

    ``speedup`` is the reference backend's median epoch time over this one's,
    and ``pct_peak`` the backend's GFLOP/s as a percentage of the all-thread
    GEMM peak, both measured in this run.
    """
    rows = [_summary_row(run_id, o, config_row) for o in outcomes]
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    ref = frame.loc[frame["backend"] == reference, "median_s"]
    frame["speedup"] = ref.iloc[0] / frame["median_s"] if len(ref) else float("nan")
    frame["pct_peak"] = 100 * frame["gflops"] / peak_gflops if peak_gflops else float("nan")
    return frame


def _summary_row(run_id: str, outcome: BackendOutcome, config_row: dict) -> dict:
    row = {"run_id": run_id, "backend": outcome.backend, "status": outcome.status,
           "message": outcome.message, **config_row, "threads": outcome.threads,
           "epochs": len(outcome.epochs), "peak_rss_mb": outcome.peak_rss_mb,
           "warmup_seconds": sum(outcome.warmup_seconds) if outcome.warmup_seconds else None,
           "compile_seconds": outcome.compile_seconds}
    timed = outcome.epochs
    if timed:
        seconds = pd.Series([e.seconds for e in timed])
        median = float(seconds.median())
        row.update(
            median_s=median, min_s=float(seconds.min()), max_s=float(seconds.max()),
            samples_per_s=timed[-1].n_train / median,
            # The epoch's work over the median time, so that gflops agrees with
            # median_s (a median of rates is not the rate of the median time).
            gflops=timed[-1].gflops * timed[-1].seconds / median,
            accuracy=timed[-1].accuracy,
        )
    return row


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a plain-text table for the terminal."""
    headers = ["backend", "s/epoch (min-max)", "samples/s", "GFLOP/s", "% peak", "speed-up",
               "peak MB", "accuracy", "status"]
    lines = []
    for _, r in summary.iterrows():
        if pd.notna(r["median_s"]):
            timing = f"{r['median_s']:.3f} ({r['min_s']:.3f}-{r['max_s']:.3f})"
            figures = [f"{r['samples_per_s']:,.0f}", f"{r['gflops']:.2f}",
                       _or_dash(r["pct_peak"], "{:.1f}%"), _or_dash(r["speedup"], "{:.2f}x"),
                       _or_dash(r["peak_rss_mb"], "{:.0f}"),
                       f"{r['accuracy']:.2%}"]
        else:
            timing, figures = "-", ["-"] * 6
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['message']}"
        lines.append([r["backend"], timing, *figures, status])
    return _align([headers, *lines])


def _or_dash(value, fmt: str) -> str:
    return fmt.format(value) if pd.notna(value) else "-"


def _align(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows[:] if i < len(row)) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(w) if i in (0, len(row) - 1) else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
