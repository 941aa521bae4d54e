"""harness/jobs/lifeline.py: no child of the harness, worker, profiled process or
py-spy, outlives it when it is killed outright."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from harness_runs import TINY, alive, descendants, finish, start, wait_for, workers


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
