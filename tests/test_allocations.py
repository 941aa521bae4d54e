"""Allocations per epoch: counted by memray in a process per backend, and carried
into summary.csv, run.json, the report and the printed table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from fake_backends import AllocatesPerBatch

from harness.config import RunConfig
from harness.jobs.job import Job
from harness.profiling.allocations import MISSING, count_allocations
from harness.profiling.profile import ProfileResult, ProfileSettings
from harness.reporting.pages import write_report
from harness.reporting.tables import format_table
from harness.running import run
from harness.running.run import execute

COLUMNS = ["allocations_per_epoch", "bytes_allocated_per_epoch"]
pytestmark = pytest.mark.slow  # every test starts child processes

pytest.importorskip("memray")


@pytest.fixture
def no_sampling(tmp_path, monkeypatch) -> ProfileSettings:
    """Profiling asked for, with the samplers' step made empty: the run goes on to
    count allocations at once, without seconds of sampling (tests/test_profile.py
    tests that step)."""
    monkeypatch.setattr(run, "profile_backends", lambda *args, **kw: ProfileResult())
    return ProfileSettings(out_dir=tmp_path / "flamegraphs")


def small(tmp_path, backends=("numpy-gemm",), n_train=500) -> RunConfig:
    return RunConfig(backends=tuple(backends), epochs=1, warmup_epochs=1,
                     dataset="mnist-sample", n_train=n_train, results_dir=tmp_path / "results",
                     peak_seconds=0)


def count(config: RunConfig, backend: str, run_dir: Path | None = None):
    return count_allocations(Job(config, backend, "mnist-sample", "test"), run_dir=run_dir)


def test_known_arrays_per_mini_batch_are_counted_and_none_are_not(tmp_path, plugins):
    config = small(tmp_path, n_train=1000)
    allocating, nothing = count(config, "allocates"), count(config, "allocates-nothing")
    assert allocating.ok and nothing.ok, (allocating.message, nothing.message)
    known = 1000 // config.batch_size * AllocatesPerBatch.ARRAYS_PER_BATCH
    assert allocating.allocations_per_epoch >= known
    assert allocating.bytes_per_epoch >= known * AllocatesPerBatch.ARRAY_BYTES
    # Far fewer: the shuffle is drawn outside the count, and memray's own work is not in it.
    assert nothing.allocations_per_epoch <= 10 and nothing.bytes_per_epoch < 100_000
    assert allocating.epochs == 1 and allocating.seconds > 0


def test_the_books_code_allocates_more_than_numpy_gemm(tmp_path):
    config = small(tmp_path, n_train=200)
    book, gemm = count(config, "numpy-book"), count(config, "numpy-gemm")
    assert book.ok and gemm.ok, (book.message, gemm.message)
    # Measured: about 12 allocations per sample against 1.4 (gemm's buffers are made once).
    assert book.allocations_per_epoch > 3 * gemm.allocations_per_epoch
    assert book.bytes_per_epoch > 3 * gemm.bytes_per_epoch


def test_a_count_that_fails_says_why_and_keeps_the_whole_output(tmp_path, plugins):
    # It raises in its second epoch: the first after the warm-up, the counted one.
    failed = count(small(tmp_path), "fails", run_dir=tmp_path)
    assert not failed.ok and failed.allocations_per_epoch is None
    assert "deliberate failure" in failed.message
    assert "errors/fails.allocations.log" in failed.message
    assert "Traceback" in (tmp_path / "errors" / "fails.allocations.log").read_text()


def test_a_profiled_run_fills_the_columns_the_report_and_the_table(tmp_path, no_sampling):
    result = execute(small(tmp_path, ["numpy-gemm", "numpy-per-sample"]), profile=no_sampling)
    assert result.exit_code == 0 and result.allocations.notes == []
    summary = pd.read_csv(result.run_dir / "summary.csv").set_index("backend")
    assert (summary[COLUMNS] > 0).all().all()
    assert pd.api.types.is_integer_dtype(summary["allocations_per_epoch"])
    per_sample = summary.loc["numpy-per-sample", "allocations_per_epoch"]
    assert per_sample > summary.loc["numpy-gemm", "allocations_per_epoch"]
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert [c["backend"] for c in meta["allocations"]["counts"]] == list(summary.index)
    page = write_report(result.run_dir).read_text()
    assert "allocations/epoch" in page and f"{per_sample:,}" in page
    assert "allocs/epoch" in format_table(result.summary)


def test_without_memray_the_cells_stay_empty_with_a_note_and_the_run_succeeds(
        tmp_path, no_sampling, monkeypatch):
    monkeypatch.setitem(sys.modules, "memray", None)  # `import memray` now fails
    result = execute(small(tmp_path), profile=no_sampling)
    assert result.exit_code == 0
    summary = pd.read_csv(result.run_dir / "summary.csv")
    assert list(summary.columns[-2:]) == COLUMNS and summary[COLUMNS].isna().all().all()
    assert result.allocations.notes == [f"no allocation counts: {MISSING}"]
    assert MISSING in write_report(result.run_dir).read_text()
    assert "allocs/epoch" not in format_table(result.summary)
