"""harness/reporting/tables.py: the run's summary as a terminal table."""

from __future__ import annotations

import pandas as pd

from harness.reporting.tables import format_table
from harness.summary import SUMMARY_COLUMNS


def summary(**extra) -> pd.DataFrame:
    row = {c: None for c in SUMMARY_COLUMNS}
    row.update(backend="numpy-gemm", status="ok", median_s=0.05, min_s=0.04, max_s=0.06,
               samples_per_s=1000.0, gflops=2.0, pct_peak=float("nan"), speedup=1.0,
               peak_rss_mb=100.0, accuracy=0.9, instructions_per_epoch=float("nan"))
    row.update(extra)
    return pd.DataFrame([row], columns=SUMMARY_COLUMNS)


def test_the_instructions_column_shows_only_in_counted_runs():
    assert "instr/epoch" not in format_table(summary())
    table = format_table(summary(instructions_per_epoch=181630528.0))
    assert "instr/epoch" in table and "181,630,528" in table


def test_instability_is_a_warning_per_backend_and_for_the_gemm():
    from harness.reporting.tables import format_instability

    assert format_instability({}) == []
    lines = format_instability({"backends": {"numba": "robust CV 12% > 10%"},
                                "gemm": "all-core GEMM median ..."})
    assert lines == ["warning: numba may be unstable: robust CV 12% > 10%",
                     "warning: the run may be unstable: all-core GEMM median ..."]
