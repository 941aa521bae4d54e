"""Profiling: short real profiles under perf and py-spy, and under py-spy alone, the
threads of rust-rayon, a run where py-spy may not attach, and a profiled process
that fails."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace

import pandas as pd
import pytest
from harness_runs import TINY, finish, start, the_run

from harness.__main__ import main
from harness.config import RunConfig
from harness.profiling import classify, perf, pyspy
from harness.profiling.profile import (
    BREAKDOWN_COLUMNS,
    HOT_COLUMNS,
    HOT_TOP,
    PERF_SAMPLER,
    PYSPY_SAMPLER,
    ProfileSettings,
)
from harness.running.run import execute


def test_missing_py_spy_is_a_reason_not_an_error(tmp_path):
    with pytest.raises(pyspy.ProfilerUnavailable, match="pip install py-spy"):
        pyspy.record(None, ["true"], tmp_path, [100])


def small(tmp_path, backends) -> RunConfig:
    return RunConfig(backends=tuple(backends), epochs=1, warmup_epochs=1,
                     dataset="mnist-sample", n_train=1000, results_dir=tmp_path / "results",
                     peak_seconds=0)  # no test here reads the GEMM peak


def _profiled(tmp_path, backends, **settings):
    result = execute(small(tmp_path, backends),
                     profile=ProfileSettings(out_dir=tmp_path / "flamegraphs", **settings))
    if result.profile.unavailable:
        pytest.skip(f"py-spy cannot profile on this machine: {result.profile.unavailable}")
    assert result.exit_code == 0 and not result.profile.failed, result.profile.notes
    return result


@pytest.mark.slow
@pytest.mark.parametrize("use_perf", [True, False], ids=["perf", "py-spy alone"])
def test_a_short_run_records_flamegraphs_and_the_breakdown(tmp_path, use_perf):
    result = _profiled(tmp_path, ["numpy-gemm", "numpy-per-sample"], use_perf=use_perf)
    with_perf = result.profile.sampler == PERF_SAMPLER
    if use_perf and not with_perf:
        pytest.skip(f"perf cannot sample here: {result.profile.notes}")
    folder = tmp_path / "flamegraphs" / result.run_id
    # A reader of the folder sees a flamegraph per backend; the stacks are apart.
    assert sorted(p.name for p in folder.iterdir()) == [
        "numpy-gemm.svg", "numpy-per-sample.svg", "stacks"]
    for backend, method in [("numpy-gemm", "NumpyGemm._update_mini_batch"),
                            ("numpy-per-sample", "NumpyPerSample._backprop")]:
        svg = (folder / f"{backend}.svg").read_text()
        assert method in svg and "train_epoch" in svg and backend in svg
        stacks = folder / "stacks" / backend
        assert {p.name for p in stacks.iterdir()} >= {
            f"{backend}{s}" for s in (".folded", ".epochs.folded", ".startup.folded",
                                      ".speedscope.json", ".txt", ".startup.txt")}
        assert classify.parse_collapsed((stacks / f"{backend}.txt").read_text())
        python_view = stacks / (f"{backend}.python.folded" if with_perf else f"{backend}.folded")
        assert method in python_view.read_text()
        if with_perf:  # the training view is perf's: native frames under the thread
            training = (stacks / f"{backend}.folded").read_text()
            assert "[main thread]" in training and "gemm" in training
    breakdown = pd.read_csv(result.run_dir / "time_breakdown.csv")
    assert list(breakdown.columns) == BREAKDOWN_COLUMNS
    for _, rows in breakdown.groupby("backend"):
        assert rows["share"].sum() == pytest.approx(1.0)
        assert (rows["total_samples"] == rows["samples"].sum()).all()
        assert set(rows["sampler"]) == {PERF_SAMPLER if with_perf else PYSPY_SAMPLER}
        if not with_perf:  # py-spy sees only the main thread: BLAS is held to one
            assert set(rows["blas_threads"]) == {1}
        assert 0 < rows["outside_training_share"].iloc[0] < 1
    gemm = breakdown[breakdown["backend"] == "numpy-gemm"].set_index("category")
    assert gemm.loc["blas", "share"] > 0
    hot = pd.read_csv(result.run_dir / "hot_functions.csv")
    assert list(hot.columns) == HOT_COLUMNS
    assert set(hot["backend"]) == {"numpy-gemm", "numpy-per-sample"}
    assert hot.groupby("backend")["rank"].max().max() <= HOT_TOP
    for text in [*hot["function"], *(folder / "numpy-gemm.svg").read_text().split('"')]:
        assert not re.match(r"^_(R|ZN)[0-9A-Za-z_]+$", text), text


@pytest.mark.slow
def test_rayon_workers_and_their_blas_are_in_the_profile(tmp_path):
    pytest.importorskip("nndl_bench_rust")
    if perf.unavailable(perf.locate()):
        pytest.skip(perf.unavailable(perf.locate()))
    result = execute(replace(small(tmp_path, ["rust-rayon"]), threads=2),
                     profile=ProfileSettings(out_dir=tmp_path / "flamegraphs"))
    assert result.exit_code == 0, result.profile.notes
    breakdown = pd.read_csv(result.run_dir / "time_breakdown.csv").set_index("category")
    assert breakdown.loc["blas", "share"] > 0.05
    assert "rayon workers" in breakdown["threads"].iloc[0]
    svg = (tmp_path / "flamegraphs" / result.run_id / "rust-rayon.svg").read_text()
    assert "[rayon workers]" in svg
    hot = pd.read_csv(result.run_dir / "hot_functions.csv")
    workers_blas = hot[(hot["thread"] == "rayon workers") & hot["function"].str.contains("gemm")]
    assert not workers_blas.empty, hot


@pytest.fixture
def py_spy_refused(tmp_path, monkeypatch):
    """A py-spy that fails as it does without the ptrace permission."""
    script = tmp_path / "py-spy"
    script.write_text("#!/bin/sh\necho 'Error: Permission denied (os error 13)' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(pyspy, "locate", lambda: str(script))


@pytest.mark.slow
def test_a_run_where_py_spy_may_not_attach_still_succeeds(tmp_path, py_spy_refused, capsys):
    code = main(["run", "--backend", "numpy-gemm,numpy-per-sample", "--dataset", "mnist-sample",
                 "--n-train", "500", "--epochs", "1", "--results-dir", str(tmp_path / "results"),
                 "--flamegraph-dir", str(tmp_path / "flamegraphs")])
    out, err = capsys.readouterr()
    assert code == 0
    assert "speed-up" in out
    assert err.lower().count("permission denied") == 1 and "SYS_PTRACE" in err
    (run_dir,) = (tmp_path / "results").iterdir()
    for name in ("epochs.csv", "summary.csv", "time_breakdown.csv", "hot_functions.csv"):
        assert (run_dir / name).is_file()
    assert pd.read_csv(run_dir / "summary.csv")["status"].eq("ok").all()
    assert not list((tmp_path / "flamegraphs").glob("*/*.svg"))


def test_profile_command_without_ptrace_says_why_and_exits_0(tmp_path, py_spy_refused, capsys):
    code = main(["profile", "--backend", "numpy-gemm", "--dataset", "mnist-sample",
                 "--n-train", "500", "--results-dir", str(tmp_path / "results"),
                 "--flamegraph-dir", str(tmp_path / "flamegraphs")])
    err = capsys.readouterr().err
    assert code == 0
    assert err.count("no flamegraphs") == 1 and "kernel.yama.ptrace_scope" in err
    (run_dir,) = (tmp_path / "results").iterdir()
    assert pd.read_csv(run_dir / "time_breakdown.csv").empty


@pytest.mark.slow
def test_a_failed_profile_keeps_the_whole_output_of_the_profiled_process(tmp_path):
    results = tmp_path / "results"
    harness = start(["profile", "--backend", "fails", "--results-dir", str(results),
                     "--flamegraph-dir", str(tmp_path / "f"), *TINY], tmp_path)
    code, out, err = finish(harness)
    if code == 0 and "no flamegraphs" in err:
        pytest.skip(f"py-spy cannot profile here: {err.strip()}")
    assert code == 1, err
    log = the_run(results) / "errors" / "fails.profile.log"
    assert str(log) in err  # the note says where the whole output is
    text = log.read_text()
    assert "== child.stderr" in text and "Traceback (most recent call last)" in text
    assert "RuntimeError: deliberate failure in the second epoch" in text
    assert "== phase-1.log" in text  # py-spy's own words too
    assert json.loads((the_run(results) / "run.json").read_text())["exit_code"] == 1
