"""Counting instructions per epoch under callgrind: the parts, the workload, the
command, a failing child. Real counts, stable and seeing a 2% change, are
tests/test_run.py's, made through the run command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config import RunConfig
from harness.jobs.job import Job
from harness.profiling import instructions
from harness.profiling.instructions import CountError, InstructionCount
from harness.storage import INSTRUCTION_COLUMNS


def _profile(path: Path, total: int) -> None:
    path.write_text(f"# callgrind format\nevents: Ir\nsummary: {total}\ntotals: {total}\n")


def test_the_parts_are_read_in_the_order_callgrind_dumped_them(tmp_path):
    prefix = instructions.OUT_PREFIX
    for n, total in [(1, 1000), (2, 10), (3, 11), (10, 12)]:
        _profile(tmp_path / f"{prefix}.4242.{n}", total)
    _profile(tmp_path / f"{prefix}.4242", 5)  # the final dump, at exit
    assert instructions.read_parts(tmp_path) == [1000, 10, 11, 12, 5]


def test_a_part_without_totals_is_an_error_that_names_it(tmp_path):
    (tmp_path / f"{instructions.OUT_PREFIX}.1.1").write_text("events: Ir\n")
    with pytest.raises(CountError, match=r"callgrind.out.1.1: no totals"):
        instructions.read_parts(tmp_path)


def test_the_workload_is_fixed_whatever_the_run_times():
    run = RunConfig(backends=("numpy-gemm",), epochs=30, warmup_epochs=0, dataset="mnist",
                    n_train=60000, threads=2, batch_size=20, dtype="float32")
    counted = instructions.workload(run)
    assert (counted.dataset, counted.n_train, counted.threads) == ("mnist-sample", 2000, 1)
    assert counted.warmup_epochs == 1 and counted.epochs == instructions.EPOCHS
    assert (counted.batch_size, counted.dtype) == (20, "float32")  # the run's own work
    other = instructions.workload(RunConfig(backends=("numpy-gemm",), sizes=(50, 10)))
    assert other.dataset == "synthetic"


def test_the_child_runs_under_callgrind_with_the_marker_and_one_thread(tmp_path):
    cmd = instructions.command(tmp_path)
    assert f"--dump-before={instructions.MARKER}" in cmd and "--tool=callgrind" in cmd
    if shutil.which("setarch"):
        assert cmd[0] == "setarch" and "-R" in cmd
    env = instructions.environment({"OPENBLAS_NUM_THREADS": "4"})
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"


def test_a_count_has_a_median_a_spread_and_a_row_per_epoch():
    counts = [InstructionCount("numpy-gemm", (1000, 1010, 990), 5, 1.0),
              InstructionCount("numba", (50, 50, 50), 5, 1.0)]
    assert counts[0].median == 1000 and counts[0].spread_pct == pytest.approx(2.0)
    frame = instructions.frame(counts, RunConfig(backends=("numpy-gemm", "numba")))
    assert list(frame.columns) == INSTRUCTION_COLUMNS and len(frame) == 6
    assert set(frame["threads"]) == {1} and set(frame["n_train"]) == {instructions.N_TRAIN}
    assert frame["epoch"].tolist() == [1, 2, 3, 1, 2, 3]


def test_a_child_that_fails_is_a_count_error_with_its_message(tmp_path, monkeypatch):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    # No valgrind run: the command is swapped for one that fails as a broken child would.
    monkeypatch.setattr(instructions, "command",
                        lambda folder: ["sh", "-c", "echo 'ImportError: no module x' >&2; exit 3"])
    job = Job(instructions.workload(RunConfig(backends=("numpy-gemm",))), "numpy-gemm",
              "mnist-sample", "t")
    with pytest.raises(CountError, match=r"numpy-gemm: the counted child exited with 3: "
                                         r"ImportError: no module x"):
        instructions.count(job)
