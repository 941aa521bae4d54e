"""A run end to end: worker processes, failures, the files and the command line;
workers killed, a run interrupted while profiling, a full disk, concurrent runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fake_backends import PLUGINS
from harness_runs import TINY, descendants, finish, rows, start, the_run, wait_for, workers

from harness import storage
from harness.__main__ import main
from harness.config import RunConfig, UsageError
from harness.data.catalogue import DataError
from harness.profiling import instructions
from harness.records import CRASHED, DIVERGED, FAILED, OK, TIMEOUT
from harness.running.run import check_data, execute
from harness.summary import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def small(tmp_path, backends, **kw) -> RunConfig:
    settings = dict(epochs=2, warmup_epochs=1, dataset="mnist-sample", n_train=500,
                    results_dir=tmp_path, peak_seconds=0)
    settings.update(kw)
    return RunConfig(backends=tuple(backends), **settings)


def test_run_writes_epochs_summary_and_metadata(tmp_path):
    result = execute(small(tmp_path, ["numpy-per-sample", "numpy-gemm"], peak_seconds=0.4))
    assert result.exit_code == 0
    epochs = pd.read_csv(result.run_dir / "epochs.csv")
    assert list(epochs.columns) == storage.EPOCH_COLUMNS
    assert len(epochs) == 4 and set(epochs["status"]) == {OK}
    assert set(epochs["dataset"]) == {"mnist-sample"} and set(epochs["n_train"]) == {500}
    summary = pd.read_csv(result.run_dir / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    ref = summary.set_index("backend").loc["numpy-per-sample"]
    assert ref["speedup"] == pytest.approx(1.0)
    assert (summary["peak_rss_mb"] > 10).all()
    # Same parameters, same shuffles: the same model, so the same accuracy.
    assert summary["accuracy"].nunique() == 1
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["run_id"] == result.run_id and meta["config"]["batch_size"] == 10
    assert isinstance(meta["unstable"], dict) and set(meta["unstable"]) <= {"backends", "gemm"}
    peak = meta["gemm_peak"]["gemm_peak_gflops_all"]
    assert peak > 0 and meta["gemm_peak"]["dtype"] == "float64"
    want = (100 * summary["gflops"] / peak).to_list()
    assert summary["pct_peak"].to_list() == pytest.approx(want)
    assert meta["blas"] and meta["python"]
    assert meta["choices"] == {}  # neither backend reports choices of its own
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        assert meta["environment"].get(variable) == os.environ.get(variable)


def test_failures_are_recorded_and_the_run_goes_on(tmp_path, plugins):
    result = execute(small(tmp_path, ["fails", "crashes", "diverges", "numpy-gemm"]))
    status = {o.backend: o for o in result.outcomes}
    assert status["fails"].status == FAILED and "deliberate failure" in status["fails"].message
    assert status["crashes"].status == CRASHED and "SIGKILL" in status["crashes"].message
    assert status["diverges"].status == DIVERGED
    assert status["numpy-gemm"].status == OK
    assert result.exit_code == 1
    summary = pd.read_csv(result.run_dir / "summary.csv").set_index("backend")
    assert summary.loc["fails", "status"] == FAILED
    # The epoch that finished before the crash is kept.
    assert summary.loc["crashes", "epochs"] == 1


def test_timeout_stops_a_worker(tmp_path, plugins, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP_SECONDS", "30")
    started = time.monotonic()
    result = execute(small(tmp_path, ["sleepy"], timeout=3))
    assert result.outcomes[0].status == TIMEOUT
    assert time.monotonic() - started < 25


def test_settings_that_do_not_fit_the_data_are_usage_errors(tmp_path):
    with pytest.raises((UsageError, DataError), match="784"):
        check_data(small(tmp_path, ["numpy-gemm"], sizes=(100, 10)), print)
    with pytest.raises(UsageError, match="larger than"):
        check_data(small(tmp_path, ["numpy-gemm"], batch_size=501), print)
    with pytest.raises(UsageError, match="--epochs"):
        small(tmp_path, ["numpy-gemm"], epochs=0)


@pytest.mark.parametrize("args, message", [
    (["--backend", "nope"], "unknown backend 'nope'"),
    (["--batch-size", "0"], "--batch-size"),
    (["--sizes", "784,x"], "--sizes"),
    (["--dataset", "mnist-sample", "--sizes", "100,10"], "784"),
])
def test_cli_rejects_bad_arguments_with_one_line_and_exit_2(args, message, capsys, tmp_path):
    code = main(["run", "--results-dir", str(tmp_path), "--dataset", "mnist-sample", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def _cli(tmp_path, *args, env=None, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--dataset", "mnist-sample",
         "--results-dir", str(tmp_path), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})}, **kw)


def test_cli_end_to_end_prints_the_table_and_the_folder(tmp_path):
    proc = _cli(tmp_path, "--backend", "numpy-per-sample,numpy-gemm", "--epochs", "1",
                "--n-train", "1000", "--no-flamegraphs")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "numpy-gemm" in out and "speed-up" in out
    *_, results, report = out.strip().splitlines()
    run_dir = Path(results.split("results: ")[1])
    assert sorted(p.name for p in run_dir.iterdir()) == ["epochs.csv", "index.html", "run.json",
                                                          "summary.csv"]
    assert report == f"report: {(run_dir / 'index.html').resolve().as_uri()}"


def test_ctrl_c_keeps_every_completed_epoch_in_valid_csvs(tmp_path):
    env = {"NNDL_BENCH_PLUGINS": PLUGINS, "FAKE_SLEEP_SECONDS": "0.5",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = _cli(tmp_path, "--backend", "sleepy", "--epochs", "50", "--n-train", "500",
                "--no-flamegraphs", env=env)
    epochs_csv = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("*/epochs.csv"))
        if found and len(pd.read_csv(found[0])) >= 2:
            epochs_csv = found[0]
            break
        time.sleep(0.2)
    assert epochs_csv is not None, "no epoch was recorded"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    epochs = pd.read_csv(epochs_csv)
    assert len(epochs) >= 2 and list(epochs.columns) == storage.EPOCH_COLUMNS
    summary = pd.read_csv(epochs_csv.parent / "summary.csv")
    assert summary.loc[0, "status"] == "interrupted"
    assert summary.loc[0, "epochs"] == len(epochs)


def test_peak_memory_is_the_workers_own_not_the_parents(tmp_path):
    """A spawned worker starts with a fork: its peak must not include the parent's."""
    import numpy as np

    ballast = np.ones(80_000_000)  # 640 MB held by this process only
    result = execute(small(tmp_path, ["numpy-gemm"]))
    assert ballast[-1] == 1.0
    assert result.summary.loc[0, "peak_rss_mb"] < 500


def test_the_evaluation_between_epochs_runs_numpys_blas_on_one_thread(tmp_path, monkeypatch):
    # two BLAS threads for training, one for the evaluation
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", "one-blas=fake_backends:PredictsOnlyOnOneBlasThread")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    result = execute(small(tmp_path, ["one-blas"], threads=2))
    assert result.exit_code == 0
    assert (pd.read_csv(result.run_dir / "epochs.csv")["accuracy"] > 0).all()


def test_run_json_records_what_each_trainer_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", "chooser=fake_backends:ChoosesItsKernel")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    result = execute(small(tmp_path, ["chooser", "numpy-gemm"], batch_size=50))
    assert result.exit_code == 0
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["choices"] == {"chooser": {"kernel": "gemm", "batch_size": 50}}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counted_instructions_are_stable_see_two_percent_and_are_reported(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", "extra-exp=fake_backends:GemmWithExtraExp")
    # The counted child, unlike a timed worker, gets no path from this process but its
    # checkout's: the plug-in's module must be on PYTHONPATH.
    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get(
        "PYTHONPATH")])))
    # A quarter of the fixed workload: start-up under valgrind dominates either way.
    monkeypatch.setattr(instructions, "N_TRAIN", 500)
    code = main(["run", "--backend", "numpy-gemm,extra-exp", "--dataset", "mnist-sample",
                 "--n-train", "500", "--epochs", "1", "--no-flamegraphs", "--peak-seconds", "0",
                 "--results-dir", str(tmp_path), "--count-instructions"])
    assert code == 0
    assert "instr/epoch" in capsys.readouterr().out
    run_dir = next(tmp_path.iterdir())
    summary = pd.read_csv(run_dir / "summary.csv").set_index("backend")
    gemm, extra = summary["instructions_per_epoch"]
    assert 2e7 < gemm < 2e8  # 500 samples of numpy-gemm: about 45 million
    assert 1.01 < extra / gemm < 1.04  # GemmWithExtraExp's 2%, seen
    meta = json.loads((run_dir / "run.json").read_text())["instructions"]
    assert meta["tool"] == "callgrind" and meta["valgrind"].startswith("valgrind-")
    assert meta["workload"]["n_train"] == 500 and "AVX-512" in meta["note"]
    counted = meta["backends"]["numpy-gemm"]
    assert counted["median"] == gemm and counted["spread_pct"] < 0.2
    assert meta["backends"]["extra-exp"]["spread_pct"] < 0.2
    assert counted["setup_and_warmup"] > gemm  # start-up and warm-up stayed out of the epochs
    assert len(storage.load_run(run_dir).instructions) == 6


def test_ctrl_c_while_counting_keeps_the_timings_and_exits_130(tmp_path, monkeypatch):
    from harness.running.run import CountSettings

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(instructions, "available", lambda: "valgrind-3.19.0")
    monkeypatch.setattr(instructions, "count_all", interrupted)
    config = RunConfig(backends=("numpy-gemm",), epochs=2, dataset="mnist-sample", n_train=500,
                       peak_seconds=0, results_dir=tmp_path)
    result = execute(config, count=CountSettings())
    assert result.exit_code == 130 and result.interrupted
    summary = pd.read_csv(result.run_dir / "summary.csv")
    assert summary["status"].tolist() == ["ok"] and summary["instructions_per_epoch"].isna().all()
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["exit_code"] == 130 and "finished" in meta


def test_count_options_without_counting_are_a_usage_error(tmp_path, capsys):
    code = main(["run", "--backend", "numpy-gemm", "--count-jobs", "2",
                 "--results-dir", str(tmp_path)])
    assert code == 2 and "--count-instructions" in capsys.readouterr().err


# Faults in a run in a process of its own -----------------------------------


def epochs_written(results: Path, backend: str) -> int:
    folders = [p for p in results.glob("*/epochs.csv")] if results.exists() else []
    if not folders:
        return 0
    try:
        return int((rows(folders[0])["backend"] == backend).sum())
    except (pd.errors.EmptyDataError, KeyError):
        return 0


def test_a_worker_killed_in_its_second_epoch_is_crashed_and_the_others_run(tmp_path):
    results = tmp_path / "results"
    harness = start(["run", "--backend", "sleepy,numpy-gemm", "--epochs", "3",
                     "--no-flamegraphs", "--results-dir", str(results), *TINY], tmp_path)
    wait_for(lambda: epochs_written(results, "sleepy") == 1, what="sleepy's first epoch")
    (worker,) = workers(harness.pid)  # sleepy's, now in its second epoch (sleeping)
    os.kill(worker, signal.SIGKILL)
    code, out, err = finish(harness)
    assert code == 1, err
    run_dir = the_run(results)
    summary = rows(run_dir / "summary.csv").set_index("backend")
    assert summary.loc["sleepy", "status"] == "crashed"
    assert "SIGKILL" in summary.loc["sleepy", "message"]
    assert summary.loc["numpy-gemm", "status"] == "ok"
    epochs = rows(run_dir / "epochs.csv")
    assert epochs[epochs["backend"] == "sleepy"]["epoch"].tolist() == [1]
    assert epochs[epochs["backend"] == "numpy-gemm"]["epoch"].tolist() == [1, 2, 3]
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 1
    log = run_dir / "errors" / "sleepy.log"
    assert "status: crashed" in log.read_text() and "SIGKILL" in log.read_text()
    assert "errors/sleepy.log" in summary.loc["sleepy", "message"]
    assert "errors/sleepy.log" in out  # the printed table says where it is
    assert not (run_dir / "errors" / "numpy-gemm.log").exists()


def test_a_failed_backend_keeps_its_whole_traceback(tmp_path):
    results = tmp_path / "results"
    harness = start(["run", "--backend", "fails,numpy-gemm", "--epochs", "3",
                     "--no-flamegraphs", "--results-dir", str(results), *TINY], tmp_path)
    code, out, err = finish(harness)
    assert code == 1, err
    run_dir = the_run(results)
    text = (run_dir / "errors" / "fails.log").read_text()
    assert "status: failed" in text and "Traceback (most recent call last)" in text
    assert 'raise RuntimeError("deliberate failure in the second epoch")' in text
    assert "in train_epoch" in text  # every frame, not its last line
    summary = rows(run_dir / "summary.csv").set_index("backend")
    assert "errors/fails.log" in summary.loc["fails", "message"]
    assert "errors/fails.log" in out
    failures = json.loads((run_dir / "run.json").read_text())["failures"]
    assert [f["backend"] for f in failures] == ["fails"]
    assert "deliberate failure" in failures[0]["traceback"]


def test_sigint_while_profiling_exits_130_with_the_timings_and_summary_kept(tmp_path):
    results = tmp_path / "results"
    harness = start(["run", "--backend", "numpy-gemm,sleepy", "--epochs", "2",
                     "--results-dir", str(results), "--flamegraph-dir", str(tmp_path / "f"),
                     *TINY], tmp_path, sleep=3.0)
    wait_for(lambda: any("profile_worker" in c for c in descendants(harness.pid).values())
             or harness.poll() is not None, what="the profiled process")
    time.sleep(0.5)
    harness.send_signal(signal.SIGINT)
    code, out, err = finish(harness)
    assert code == 130, err
    assert "Traceback" not in err
    run_dir = the_run(results)
    assert len(rows(run_dir / "epochs.csv")) == 4  # two backends, two epochs each
    assert set(rows(run_dir / "summary.csv")["status"]) == {"ok"}
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 130


# Lowers RLIMIT_FSIZE, then becomes the harness: no preexec_fn forking this process.
_LIMITED = ("import os, resource, sys; n = int(sys.argv[1]); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
            "os.execv(sys.executable, [sys.executable, '-m', 'harness', *sys.argv[2:]])")


def test_a_full_disk_stops_the_run_with_one_line_and_the_last_complete_csvs(tmp_path):
    args = ["run", "--backend", "numpy-gemm", "--no-flamegraphs", *TINY]
    probe = start([*args, "--epochs", "1", "--results-dir", str(tmp_path / "probe")], tmp_path)
    assert finish(probe)[0] == 0
    probe_dir = the_run(tmp_path / "probe")
    row = len((probe_dir / "epochs.csv").read_text().splitlines()[1]) + 1
    # run.json fits (a little room for what its last rewrite adds); epochs.csv outgrows
    # the limit some epochs in.
    limit = (probe_dir / "run.json").stat().st_size + 400
    epochs = limit // row + 5
    results = tmp_path / "results"
    harness = start([*args, "--epochs", str(epochs), "--results-dir", str(results)], tmp_path,
                    wrapper=["-c", _LIMITED, str(limit)])
    code, out, err = finish(harness)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "epochs.csv" in lines[-1], err
    assert "Traceback" not in err and "File too large" in lines[-1]
    run_dir = the_run(results)
    kept = rows(run_dir / "epochs.csv")
    assert 1 <= len(kept) < epochs
    assert kept["epoch"].tolist() == list(range(1, len(kept) + 1))  # whole rows, in order
    assert kept["seconds"].notna().all()
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_dir.name
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_two_concurrent_runs_into_one_results_folder_keep_apart(tmp_path):
    results = tmp_path / "results"
    harnesses = [start(["run", "--backend", "numpy-gemm", "--epochs", "4", "--seed", str(seed),
                        "--no-flamegraphs", "--results-dir", str(results), *TINY], tmp_path)
                 for seed in (11, 22)]
    assert [finish(h)[0] for h in harnesses] == [0, 0]
    folders = sorted(p for p in results.iterdir() if p.is_dir())
    assert len(folders) == 2
    seeds = set()
    for folder in folders:
        meta = json.loads((folder / "run.json").read_text())
        epochs = rows(folder / "epochs.csv")
        assert set(epochs["run_id"]) == {meta["run_id"]} == {folder.name}
        assert epochs["epoch"].tolist() == [1, 2, 3, 4]
        assert set(epochs["seed"]) == {meta["config"]["seed"]}
        assert rows(folder / "summary.csv")["run_id"].tolist() == [folder.name]
        seeds.add(meta["config"]["seed"])
    assert seeds == {11, 22}
