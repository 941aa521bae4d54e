"""The figures of a run, computed once in a summary frame that the tables,
summary.csv and the sweep all read."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from harness import stats
from harness.records import BackendOutcome

SUMMARY_COLUMNS = [
    "run_id", "backend", "status", "message", "dtype", "sizes", "batch_size", "eta", "seed",
    "dataset", "n_train", "threads", "epochs", "median_s", "min_s", "max_s",
    "samples_per_s", "gflops", "pct_peak", "speedup", "peak_rss_mb", "accuracy",
    "warmup_seconds", "compile_seconds", "instructions_per_epoch", "unstable",
    # Counted by memray apart from the timed epochs (harness.profiling.allocations),
    # when the run profiles; empty otherwise, and in folders written before them.
    "allocations_per_epoch", "bytes_allocated_per_epoch",
]


def summarize(
    run_id: str, outcomes: list[BackendOutcome], config_row: dict, reference: str,
    peak_gflops: float | None = None, instructions: dict[str, float] | None = None,
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
    frame["instructions_per_epoch"] = frame["backend"].map(instructions or {}).astype(float)
    return frame


def with_allocations(summary: pd.DataFrame,
                     counts: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """The summary with each counted backend's allocations and bytes allocated per
    epoch (``counts``: backend -> (allocations, bytes)); the others' cells stay empty."""
    frame = summary.copy()
    for i, column in enumerate(("allocations_per_epoch", "bytes_allocated_per_epoch")):
        values = {backend: figures[i] for backend, figures in counts.items()}
        # Nullable integers: whole counts in the CSV, an empty cell where none was made.
        frame[column] = frame["backend"].map(values).astype("Int64")
    return frame


def _summary_row(run_id: str, outcome: BackendOutcome, config_row: dict) -> dict:
    row = {"run_id": run_id, "backend": outcome.backend, "status": outcome.status,
           "message": outcome.message, **config_row, "threads": outcome.threads,
           "epochs": len(outcome.epochs), "peak_rss_mb": outcome.peak_rss_mb,
           "warmup_seconds": sum(outcome.warmup_seconds) if outcome.warmup_seconds else None,
           "compile_seconds": outcome.compile_seconds}
    timed = outcome.epochs
    if timed:
        seconds = [e.seconds for e in timed]
        median = stats.median(seconds)
        low, high = stats.spread(seconds)
        row.update(
            median_s=median, min_s=low, max_s=high, unstable=stats.instability(seconds),
            samples_per_s=timed[-1].n_train / median,
            # The epoch's work over the median time, so that gflops agrees with
            # median_s (a median of rates is not the rate of the median time).
            gflops=timed[-1].gflops * timed[-1].seconds / median,
            accuracy=timed[-1].accuracy,
        )
    return row
