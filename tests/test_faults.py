"""Real faults, not mocks: workers and the harness killed, a full disk, concurrent
runs, Ctrl-C while profiling, corrupted run folders and arbitrary IDX bytes. Each
test asserts what survives."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from fake_backends import PLUGINS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_compare import noisy, write_run

from harness import storage
from harness.__main__ import main
from harness.data.dataset import CHUNK, DataError
from harness.data.idx import read_idx, read_pair

ROOT = Path(__file__).resolve().parents[1]
# Small and fast: what matters is where the processes are, not what they compute.
TINY = ["--dataset", "synthetic", "--n-train", "200", "--sizes", "784,16,10",
        "--peak-seconds", "0", "--warmup-epochs", "0"]


def start(args: list[str], tmp_path: Path, sleep: float = 1.0,
          wrapper: tuple[str, ...] | list[str] = ("-m", "harness")) -> subprocess.Popen:
    """``python -m harness ARGS`` in a process of its own, the fake backends loadable."""
    env = {**os.environ, "NNDL_BENCH_PLUGINS": PLUGINS, "FAKE_SLEEP_SECONDS": str(sleep),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.Popen([sys.executable, *wrapper, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def descendants(pid: int) -> dict[int, str]:
    """Every living process below ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = cmdline(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, timeout: float = 60.0, what: str = "the condition"):
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout:g} s")


def the_run(results: Path) -> Path:
    folders = [p for p in results.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"sizes": str})


def workers(pid: int) -> dict[int, str]:
    return {p: c for p, c in descendants(pid).items() if "spawn_main" in c}


def epochs_written(results: Path, backend: str) -> int:
    folders = [p for p in results.glob("*/epochs.csv")] if results.exists() else []
    if not folders:
        return 0
    try:
        return int((rows(folders[0])["backend"] == backend).sum())
    except (pd.errors.EmptyDataError, KeyError):
        return 0


@pytest.mark.slow
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


@pytest.mark.slow
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


def assert_all_gone(pids: dict[int, str], within: float = 5.0) -> None:
    limit = time.monotonic() + within
    while time.monotonic() < limit and any(alive(p) for p in pids):
        time.sleep(0.05)
    left = {p: c for p, c in pids.items() if alive(p)}
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running {within:g} s after the harness died: {left}"


@pytest.mark.slow
def test_no_worker_outlives_a_killed_harness(tmp_path):
    harness = start(["run", "--backend", "sleepy", "--epochs", "20", "--no-flamegraphs",
                     "--results-dir", str(tmp_path / "results"), *TINY], tmp_path, sleep=10.0)
    wait_for(lambda: workers(harness.pid), what="the worker")
    time.sleep(3)  # into its first epoch, which sleeps: it has no reason to stop soon
    children = descendants(harness.pid)
    harness.kill()
    harness.wait()
    assert_all_gone(children)


def profiled(pid: int) -> dict[int, str]:
    """The profiled child and py-spy, once py-spy samples it (the handshake's go-1)."""
    found = descendants(pid)
    child = [c.split() for c in found.values() if "profile_worker" in c]
    if child and any("py-spy" in c for c in found.values()) and \
            (Path(child[0][-1]) / "go-1").exists():
        return found
    return {}


@pytest.mark.slow
def test_no_profiled_process_or_py_spy_outlives_a_killed_harness(tmp_path):
    harness = start(["profile", "--backend", "sleepy", "--results-dir", str(tmp_path / "r"),
                     "--flamegraph-dir", str(tmp_path / "f"), *TINY], tmp_path, sleep=8.0)
    children = wait_for(lambda: profiled(harness.pid) or harness.poll() is not None,
                        what="py-spy sampling the profiled process")
    if harness.poll() is not None:
        code, _, err = finish(harness)
        assert code == 0 and "no flamegraphs" in err, err
        pytest.skip(f"py-spy cannot profile here: {err.strip()}")
    time.sleep(1)  # into the warm-up epoch, which sleeps, sampled
    harness.kill()
    harness.wait()
    assert_all_gone(children)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# Corrupted run folders ------------------------------------------------------

def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) - 12])  # into the last record


def _drop_seconds(path: Path) -> None:
    rows(path).drop(columns="seconds").to_csv(path, index=False)


def _break_json(path: Path) -> None:
    path.write_text(path.read_text()[:-20])


CORRUPTIONS = [("epochs.csv", _truncate, "incomplete"),
               ("epochs.csv", _drop_seconds, "missing column(s) seconds"),
               ("run.json", _break_json, "not readable JSON")]


@pytest.mark.parametrize(("name", "corrupt", "said"), CORRUPTIONS)
@pytest.mark.parametrize("command", ["compare", "history", "report"])
def test_a_corrupted_run_folder_exits_2_naming_the_file(tmp_path, capsys, name, corrupt, said,
                                                        command):
    results = tmp_path / "results"
    good = write_run(results / "good", {"numpy-gemm": noisy(0.1)},
                     meta={"git_commit": "a" * 40, "started": "2026-01-01T00:00:00+00:00"})
    bad = write_run(results / "bad", {"numpy-gemm": noisy(0.2)},
                    meta={"git_commit": "b" * 40, "started": "2026-01-02T00:00:00+00:00"})
    corrupt(bad / name)
    args = {"compare": [str(good), str(bad)], "history": ["--results-dir", str(results)],
            "report": [str(bad)]}[command]
    assert main([command, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert str(bad / name) in err and said in err


# The IDX reader on any bytes ------------------------------------------------

IDX_TYPES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


@st.composite
def idx_bytes(draw) -> bytes:
    """Bytes that are often almost an IDX file (so the fuzzing reaches the payload),
    sometimes any bytes at all."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    ndim = draw(st.integers(0, 5))
    header = bytes([0, 0, draw(st.sampled_from([*IDX_TYPES, 0x00, 0xFF])), ndim])
    dims = b"".join(draw(st.integers(0, 2**32 - 1) | st.integers(0, 6)).to_bytes(4, "big")
                    for _ in range(ndim))
    return header + dims[: draw(st.integers(0, len(dims)))] + draw(st.binary(max_size=200))


def _read_measured(path: Path):
    """read_idx's result (or its DataError) and the peak memory it allocated."""
    tracemalloc.start()
    try:
        try:
            return read_idx(path), tracemalloc.get_traced_memory()[1]
        except DataError as e:
            return e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=idx_bytes(), compressed=st.booleans())
# A zero dimension beside ones whose product no array can have: found by this test.
@example(content=bytes.fromhex("00000804" "00000000" "000001dd" "00560000" "cc7d8f59"),
         compressed=False)
def test_any_bytes_give_an_array_or_a_data_error_within_the_file_size(tmp_path, content,
                                                                      compressed):
    import gzip

    path = tmp_path / ("f.gz" if compressed else "f")
    path.write_bytes(gzip.compress(content) if compressed else content)
    result, peak = _read_measured(path)
    # What the bytes allow: the payload, a native-endian copy of it, and one read
    # buffer; never what a lying header promises.
    assert peak <= 3 * len(content) + 2 * CHUNK + (1 << 16)
    if not isinstance(result, DataError):
        assert result.nbytes <= len(content) and result.dtype.isnative


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images=idx_bytes(), labels=idx_bytes())
def test_any_pair_of_files_gives_a_dataset_or_a_data_error(tmp_path, images, labels):
    (tmp_path / "images").write_bytes(images)
    (tmp_path / "labels").write_bytes(labels)
    try:
        X, y = read_pair(tmp_path / "images", tmp_path / "labels")
    except DataError:
        return
    assert X.ndim == 3 and len(X) == len(y) and ((y >= 0) & (y <= 9)).all()


def test_an_unwritable_results_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["run", "--backend", "numpy-gemm", "--no-flamegraphs", *TINY,
                 "--results-dir", str(tmp_path / "a-file" / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "a-file/results" in err and "cannot write" in err


def test_a_malformed_plugin_list_is_one_line_and_exit_2(monkeypatch, capsys):
    for value, backend, said in [
            ("nameonly", "all", "'nameonly' is not of the form name=module:Class"),
            ("x=no_such_module:Thing", "x", "no module 'no_such_module' on the path")]:
        monkeypatch.setenv("NNDL_BENCH_PLUGINS", value)
        assert main(["run", "--backend", backend, *TINY]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and said in err and "NNDL_BENCH_PLUGINS" in err


def test_results_are_writable_after_a_write_fails(tmp_path):
    """A failed write leaves the file's last complete version, and no temporary file."""
    path = tmp_path / "epochs.csv"
    storage.write_atomic(path, "a,b\n1,2\n")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, limit[1]))
        with pytest.raises(storage.StorageError, match=r"epochs\.csv: cannot write"):
            storage.write_atomic(path, "a,b\n" + "1,2\n" * 100)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert path.read_text() == "a,b\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["epochs.csv"]


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
