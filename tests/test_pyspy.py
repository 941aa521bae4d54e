"""harness/profiling/pyspy.py: the phase-by-phase handshake with a profiled child,
and how py-spy's output and failures are read. A stand-in for py-spy plays its
part (it prints what py-spy prints and writes raw collapsed stacks), so these
run where ptrace is not allowed."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from harness.profiling import pyspy

ROOT = Path(__file__).resolve().parents[1]

FAKE_PY_SPY = """#!{python}
import os, signal, sys, time
args = sys.argv[1:]
out, rate, pid = (args[args.index(flag) + 1] for flag in ("--output", "--rate", "--pid"))
if os.environ.get("FAKE_PY_SPY") == "denied":
    print("Error: Failed to attach: Permission Denied (os error 13)", flush=True)
    sys.exit(1)
print(f"py-spy> Sampling process {{rate}} times a second. Press Control-C to exit.", flush=True)

def finish(*_):
    with open(out, "w") as f:
        f.write(f"main (child.py:1);phase_at_{{rate}} (child.py:2) 7\\n")
    print("py-spy> Errors: 3", flush=True)
    sys.exit(0)

signal.signal(signal.SIGINT, finish)
while True:  # like py-spy, stop when the process sampled is gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        finish()
    time.sleep(0.01)
"""

CHILD = """
import sys
from pathlib import Path
from harness.profiling.pyspy import wait_for_sampler
folder = Path(sys.argv[1])
for k in (1, 2):
    wait_for_sampler(folder, k)
if len(sys.argv) > 2:
    sys.exit(sys.argv[2])
"""


@pytest.fixture
def fake_py_spy(tmp_path) -> str:
    path = tmp_path / "py-spy"
    path.write_text(FAKE_PY_SPY.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def child(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", CHILD, str(folder), *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_each_phase_is_recorded_at_its_own_rate(fake_py_spy, tmp_path):
    folder = tmp_path / "handshake"
    phases = pyspy.record(fake_py_spy, child(folder), folder, [100, 1000], env=env(),
                          timeout=60)
    assert [p.rate for p in phases] == [100, 1000]
    assert [p.collapsed for p in phases] == [
        "main (child.py:1);phase_at_100 (child.py:2) 7\n",
        "main (child.py:1);phase_at_1000 (child.py:2) 7\n",
    ]
    assert [p.errors for p in phases] == [3, 3]  # read from py-spy's log
    assert all(p.seconds >= 0 for p in phases)


def test_a_refusal_to_attach_says_how_to_allow_it(fake_py_spy, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PY_SPY", "denied")
    folder = tmp_path / "handshake"
    with pytest.raises(pyspy.ProfilerUnavailable, match="SYS_PTRACE"):
        pyspy.record(fake_py_spy, child(folder), folder, [100], env=env(), timeout=60)


def test_a_failing_child_is_reported_with_its_last_words(fake_py_spy, tmp_path):
    folder = tmp_path / "handshake"
    with pytest.raises(pyspy.ProfileFailed, match="the child gave up"):
        pyspy.record(fake_py_spy, child(folder, "the child gave up"), folder, [100, 100],
                     env=env(), timeout=60)


def test_a_py_spy_that_cannot_run_is_unavailable(tmp_path):
    folder = tmp_path / "handshake"
    with pytest.raises(pyspy.ProfilerUnavailable, match="cannot be run"):
        pyspy.record(str(tmp_path / "missing-py-spy"), child(folder), folder, [100],
                     env=env(), timeout=60)
