"""A tiny run of the harness in a process of its own, the processes below it,
and the run folder it writes: for the tests that kill, interrupt or starve it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from fake_backends import PLUGINS

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
    """The worker processes below ``pid``: multiprocessing's spawned children."""
    return {p: c for p, c in descendants(pid).items() if "spawn_main" in c}

