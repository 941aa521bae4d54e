"""Sweeps on a Dask cluster, all on 127.0.0.1: a local cluster of two pinned
workers, a real `dask scheduler` with `python -m harness worker` processes, a
worker SIGKILLed in the middle of a cell, Ctrl-C and --resume, bad addresses,
a scheduler without benchmark workers, and a worker of another commit."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed

from fake_backends import PLUGINS  # noqa: E402

from harness.__main__ import main  # noqa: E402
from harness.config import RunConfig  # noqa: E402
from harness.records import LOST, OK  # noqa: E402
from harness.reporting.pages import draw_sweep  # noqa: E402
from harness.running import provenance  # noqa: E402
from harness.running.cluster import (  # noqa: E402
    ClusterError,
    ClusterExecutor,
    core_sets,
    parse_address,
)
from harness.running.sweep import Grid, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "mnist-sample", "--n-train", "500", "--epochs", "1",
         "--warmup-epochs", "0", "--peak-seconds", "0", "--sizes", "784,30,10"]
WAIT = 60  # seconds any one step may take before the test fails instead of hanging


def test_addresses_parse_or_name_the_accepted_forms():
    assert parse_address("tcp://127.0.0.1:8786").value == "tcp://127.0.0.1:8786"
    assert parse_address("file:/tmp/s.json").value == "/tmp/s.json"
    assert parse_address("local:3").value == "3"
    for text in ("tcp://127.0.0.1", "tcp://:8786", "tcp://h:0", "udp://h:1", "local:0",
                 "local:x", "file:", "127.0.0.1:8786"):
        with pytest.raises(ClusterError, match="tcp://HOST:PORT"):
            parse_address(text)


def test_local_core_sets_split_the_cores_and_refuse_more_workers_than_cores():
    assert core_sets(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert core_sets(1, [3, 1]) == [[1, 3]]
    with pytest.raises(ClusterError, match="local:2 or fewer"):
        core_sets(3, [0, 1])


def test_cores_read_and_print_as_ranges():
    assert provenance.parse_cores("0-2,5") == {0, 1, 2, 5}
    assert provenance.format_cores({5, 0, 1, 2}) == "0-2,5"
    for text in ("", "2-1", "a", "-1"):
        with pytest.raises(ValueError):
            provenance.parse_cores(text)


def test_the_fingerprint_leaves_out_the_host_and_which_cores():
    facts = provenance.describe()
    other = {**facts, "hostname": "elsewhere", "pinned_cores": "7"}
    one_core = {**facts, "pinned_cores": "0"}
    assert provenance.fingerprint(one_core) == provenance.fingerprint(other)
    assert provenance.fingerprint({**facts, "blas": "mkl"}) != provenance.fingerprint(facts)
    assert provenance.fingerprint({**facts, "commit": "x"}) != provenance.fingerprint(facts)


def test_a_worker_of_other_versions_or_commit_is_refused_by_name():
    facts = provenance.describe()
    expected = provenance.identity(facts)
    assert provenance.mismatch(expected, facts) is None
    older = {**facts, "versions": {**facts["versions"], "numpy": "1.26.0"}}
    assert "numpy 1.26.0 (client: " in provenance.mismatch(expected, older)
    missing = {**facts, "versions": {k: v for k, v in facts["versions"].items()
                                     if k != "pandas"}}
    assert "pandas absent" in provenance.mismatch(expected, missing)
    assert "commit 0123abc" in provenance.mismatch(expected, {**facts, "commit": "0123abc"})


# -- processes on 127.0.0.1 ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NNDL_BENCH_COMMIT"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env.update(extra)
    return env


class Cluster:
    """A `dask scheduler` and workers as real processes, each in its own process
    group, every one of them killed at the end of the test."""

    def __init__(self, folder: Path):
        self.folder, self.processes = folder, []
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler_file = folder / "scheduler.json"

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                   env=env or _env(), start_new_session=True, cwd=self.folder)
        self.processes.append(process)
        return process

    def scheduler(self) -> None:
        self.start("scheduler", [sys.executable, "-m", "dask", "scheduler", "--host",
                                 "127.0.0.1", "--port", str(self.port), "--no-dashboard",
                                 "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + WAIT
        while not self.scheduler_file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)

    def worker(self, name: str, **env) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "harness", "worker", self.address,
                                 "--name", name], env=_env(**env))

    def wait_for_workers(self, n: int) -> dict[str, int]:
        """The workers' addresses and process ids, once ``n`` have joined."""
        with distributed.Client(self.address, timeout=WAIT, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=WAIT)
            return client.run(os.getpid)

    def close(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(WAIT)


@pytest.fixture
def cluster(tmp_path):
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = Cluster(folder)
    try:
        yield running
    finally:
        running.close()


def harness(*args, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, env=env or _env(), timeout=WAIT * 2, cwd=ROOT, **kw)


def sweep_frame(results: Path) -> tuple[Path, pd.DataFrame]:
    (sweep_dir,) = [p for p in results.iterdir() if (p / "sweep.json").exists()]
    return sweep_dir, pd.read_csv(sweep_dir / "sweep.csv", dtype={"sizes": str})


def _windows_never_overlap(frame: pd.DataFrame) -> None:
    for worker, rows in frame.drop_duplicates(["cell", "attempt"]).groupby("worker"):
        spans = sorted((datetime.fromisoformat(a), datetime.fromisoformat(b))
                       for a, b in zip(rows["started"], rows["finished"]))
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, f"two cells at once on {worker}"


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="local:2 needs two cores")
def test_a_local_cluster_of_two_pinned_workers_runs_one_cell_at_a_time_on_each(
        tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # a nanny sets it here
    grid = Grid(batch_sizes=(10, 100), sizes=((784, 30, 10),), dtypes=("float64", "float32"))
    cells = grid.cells(RunConfig(backends=("numpy-gemm",), epochs=1, warmup_epochs=0,
                                 dataset="mnist-sample", n_train=500, peak_seconds=0,
                                 results_dir=tmp_path))
    with ClusterExecutor("local:2", timeout=WAIT) as executor:
        result = run_sweep(cells, budget=60, executor=executor)
    assert result.exit_code == 0
    frame = pd.read_csv(result.sweep_dir / "sweep.csv", dtype={"sizes": str})
    assert sorted(frame["cell"]) == [0, 1, 2, 3] and set(frame["status"]) == {OK}
    assert set(frame["hostname"]) == {platform.node()}
    assert frame["fingerprint"].str.fullmatch("[0-9a-f]{12}").all()
    assert frame["fingerprint"].nunique() == 1  # two workers of one machine type
    assert frame["worker"].nunique() == 2 and frame["worker"].str.startswith("tcp://").all()
    cores = frame.groupby("worker")["pinned_cores"].agg(set)
    assert all(len(c) == 1 for c in cores) and len(set.union(*cores)) == 2  # disjoint
    _windows_never_overlap(frame)
    for run_dir in frame["run_dir"]:  # written here, from the bytes the workers sent
        summary = pd.read_csv(result.sweep_dir / run_dir / "summary.csv")
        assert list(summary["status"]) == [OK]
    winners = pd.read_csv(result.sweep_dir / "winners.csv")
    assert len(winners) == 4 and set(winners["fingerprint"]) == set(frame["fingerprint"])
    assert draw_sweep(result.sweep_dir, result.frame, result.winners).exists()


@pytest.mark.slow
def test_the_cli_sweeps_on_a_real_scheduler_and_harness_workers(cluster, tmp_path):
    cluster.scheduler()
    cluster.worker("w1")
    cluster.worker("w2")
    workers = cluster.wait_for_workers(2)
    done = harness("sweep", "--backend", "numpy-gemm,numpy-per-sample", *SMALL,
                   "--batch-size", "10,100", "--dtype", "float64", "--results-dir",
                   str(tmp_path / "results"), "--cluster", cluster.address)
    assert done.returncode == 0, done.stderr
    sweep_dir, frame = sweep_frame(tmp_path / "results")
    assert len(frame) == 2 * 2 and set(frame["status"]) == {OK}
    assert set(frame["worker"]) <= set(workers)
    assert set(frame["hostname"]) == {platform.node()} and frame["fingerprint"].notna().all()
    _windows_never_overlap(frame)
    assert {p.name for p in (sweep_dir / "cells").iterdir()} == set(frame["run_id"])
    assert "numpy-gemm" in done.stdout  # the winner map


def _descendants_of_a_busy_worker(workers: dict[str, int]) -> tuple[str, list]:
    """The worker whose cell has started the harness's worker process, and that
    process tree."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for address, pid in workers.items():
            children = psutil.Process(pid).children(recursive=True)
            if any("multiprocessing" in _command_line(c) for c in children):
                return address, children
        time.sleep(0.1)
    raise AssertionError("no cell started on any worker")


def _command_line(process) -> str:
    """The process's command line, or "" for one that has exited since it was
    listed: a worker's short-lived children (the machine probes among them) can
    end, or linger as zombies, between listing and reading."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess is one
        return ""


def _gone(process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_worker_killed_mid_cell_loses_the_attempt_and_the_cell_runs_again_elsewhere(
        cluster, tmp_path):
    env = _env(NNDL_BENCH_PLUGINS=PLUGINS, FAKE_SLEEP_SECONDS="0.4")
    cluster.scheduler()
    cluster.worker("w1", NNDL_BENCH_PLUGINS=PLUGINS, FAKE_SLEEP_SECONDS="0.4")
    cluster.worker("w2", NNDL_BENCH_PLUGINS=PLUGINS, FAKE_SLEEP_SECONDS="0.4")
    workers = cluster.wait_for_workers(2)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "harness", "sweep", "--backend", "sleepy", *SMALL,
         "--epochs", "4", "--batch-size", "100", "--dtype", "float64", "--results-dir",
         str(tmp_path / "results"), "--cluster", cluster.address],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed, children = _descendants_of_a_busy_worker(workers)
        os.kill(workers[killed], signal.SIGKILL)
        out, err = sweep.communicate(timeout=WAIT * 2)
    finally:
        sweep.kill()
    assert sweep.returncode == 0, err
    deadline = time.monotonic() + WAIT
    while not all(_gone(c) for c in children):  # they die with the worker
        assert time.monotonic() < deadline, "a process of the killed worker lives on"
        time.sleep(0.1)
    _, frame = sweep_frame(tmp_path / "results")
    # One attempt lost on the killed worker, then the cell runs again on the
    # other. On a loaded 2-core machine a run once recorded a third attempt
    # (how the second was lost was not kept); --retries allows two, and the
    # cell must still end in a run, not on the killed worker, of its fingerprint.
    attempts = frame.sort_values("attempt").to_dict("records")
    first, last = attempts[0], attempts[-1]
    assert (first["attempt"], first["status"], first["worker"]) == (1, LOST, killed)
    assert "was lost" in first["message"]
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert 2 <= len(attempts) <= 3 and all(a["status"] == LOST for a in attempts[:-1])
    assert last["status"] == OK and last["worker"] != killed and last["worker"] in workers
    assert all(a["fingerprint"] == first["fingerprint"] for a in attempts)
    assert "attempt 2" in err


@pytest.mark.slow
def test_resume_after_ctrl_c_runs_only_the_cells_that_did_not_finish(cluster, tmp_path):
    env = _env(NNDL_BENCH_PLUGINS=PLUGINS, FAKE_SLEEP_SECONDS="0.3")
    cluster.scheduler()
    cluster.worker("w1", NNDL_BENCH_PLUGINS=PLUGINS, FAKE_SLEEP_SECONDS="0.3")
    cluster.wait_for_workers(1)
    results = tmp_path / "results"
    address = f"file:{cluster.scheduler_file}"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "harness", "sweep", "--backend", "sleepy", *SMALL,
         "--epochs", "2", "--batch-size", "10,50,100", "--dtype", "float64",
         "--results-dir", str(results), "--cluster", address],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not (list(results.glob("*/sweep.csv"))
                   and len(pd.read_csv(next(results.glob("*/sweep.csv"))))):
            assert time.monotonic() < deadline and sweep.poll() is None, "no cell finished"
            time.sleep(0.1)
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=WAIT)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, err
    sweep_dir, before = sweep_frame(results)
    assert 1 <= len(before) < 3 and "--resume" in err
    resumed = harness("sweep", "--resume", str(sweep_dir), "--cluster", address, env=env)
    assert resumed.returncode == 0, resumed.stderr
    _, after = sweep_frame(results)
    assert sorted(after["cell"]) == [0, 1, 2] and set(after["status"]) == {OK}
    kept = after[after["cell"].isin(before["cell"])]
    assert list(kept["run_id"]) == list(before["run_id"])  # the finished cells as they were
    meta = pd.read_json(sweep_dir / "sweep.json", typ="series")
    assert meta["resumed"][0]["cells"] == sorted(set(range(3)) - set(before["cell"]))


@pytest.mark.parametrize("address", ["tcp://127.0.0.1", "local:0", "udp://127.0.0.1:1",
                                     "file:/nonexistent/scheduler.json"])
def test_a_bad_address_is_one_line_and_exit_2(address, tmp_path, capsys):
    code = main(["sweep", "--backend", "numpy-gemm", *SMALL, "--results-dir", str(tmp_path),
                 "--cluster", address])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--cluster" in err, err
    assert not any(tmp_path.iterdir())


def test_an_unreachable_scheduler_is_one_line_and_exit_2_within_the_timeout(tmp_path):
    done = harness("sweep", "--backend", "numpy-gemm", *SMALL, "--results-dir", str(tmp_path),
                   "--cluster", f"tcp://127.0.0.1:{free_port()}", "--cluster-timeout", "2")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no scheduler answered" in done.stderr
    assert not any(tmp_path.iterdir())


def test_a_harness_worker_without_a_scheduler_gives_up_with_exit_2(tmp_path):
    done = harness("worker", f"tcp://127.0.0.1:{free_port()}", "--timeout", "2")
    assert done.returncode == 2 and "no scheduler answered" in done.stderr


@pytest.mark.slow
def test_a_scheduler_without_bench_workers_is_an_error_not_a_wait(cluster, tmp_path):
    cluster.scheduler()
    cluster.start("plain", [sys.executable, "-m", "dask", "worker", cluster.address,
                            "--nthreads", "1", "--no-nanny", "--no-dashboard"])
    cluster.wait_for_workers(1)
    done = harness("sweep", "--backend", "numpy-gemm", *SMALL, "--results-dir", str(tmp_path),
                   "--cluster", cluster.address, "--cluster-timeout", "3")
    assert done.returncode == 2
    assert "no worker offers the 'bench' resource" in done.stderr
    assert "1 worker(s) without it" in done.stderr and "python -m harness worker" in done.stderr


@pytest.mark.slow
def test_a_worker_of_another_commit_is_refused(cluster, tmp_path):
    cluster.scheduler()
    cluster.worker("stale", NNDL_BENCH_COMMIT="0123abc")
    cluster.wait_for_workers(1)
    done = harness("sweep", "--backend", "numpy-gemm", *SMALL, "--results-dir", str(tmp_path),
                   "--cluster", cluster.address, "--cluster-timeout", "5")
    assert done.returncode == 2
    assert "refused" in done.stderr and "commit 0123abc is not the client's" in done.stderr
    assert done.stderr.strip().count("\n") == 0
