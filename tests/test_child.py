"""harness/jobs/child.py: a child reads the job its parent left in its folder,
leaves its work's result there as result.json and exits without the
interpreter's teardown; a work that fails leaves no result."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from harness.jobs import child
from harness.jobs.child import JOB_FILE, RESULT_FILE

ROOT = Path(__file__).resolve().parents[1]

# A worker module's whole __main__, its work a function of the folder. The
# atexit handler would mark the folder if the interpreter's teardown ran.
CHILD = """
import atexit
from harness.jobs.child import child_main, read_job

def work(folder):
    job = read_job(folder)
    atexit.register(lambda: (folder / "teardown").write_text("ran"))
    if job["fail"]:
        raise RuntimeError("deliberate failure of the work")
    return {"doubled": 2 * job["value"], "folder": str(folder)}

child_main(work)
"""


def run_child(folder: Path, job: dict) -> subprocess.CompletedProcess:
    folder.mkdir()
    (folder / JOB_FILE).write_bytes(pickle.dumps(job))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_works_result_is_left_in_the_folder_and_teardown_skipped(tmp_path):
    folder = tmp_path / "job"
    done = run_child(folder, {"value": 21, "fail": False})
    assert done.returncode == 0, done.stderr
    assert json.loads((folder / RESULT_FILE).read_text()) == {"doubled": 42,
                                                              "folder": str(folder)}
    assert not (folder / "teardown").exists()


def test_a_failed_work_exits_1_with_its_traceback_and_no_result(tmp_path):
    folder = tmp_path / "job"
    done = run_child(folder, {"value": 21, "fail": True})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "deliberate failure of the work" in done.stderr
    assert not (folder / RESULT_FILE).exists()


def test_a_child_finds_this_checkout_first_then_the_path_it_was_given(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    path = child.environment()["PYTHONPATH"].split(os.pathsep)
    assert Path(path[0]) == ROOT
    assert (Path(path[0]) / "harness" / "__main__.py").is_file()
    assert path[1:] == ["/elsewhere"]
    # Another checkout's folders first, as compare-commits runs each commit's own code.
    other = child.environment({"PYTHONPATH": "/elsewhere"}, [Path("/ext"), Path("/wt")])
    assert other["PYTHONPATH"].split(os.pathsep) == ["/ext", "/wt", "/elsewhere"]
