"""Driving py-spy: find it, attach it to a child process phase by phase, and say
plainly why it cannot be used where it cannot.

A child is profiled in phases, each at a sampling rate of its own: py-spy is
attached (``record --pid``) when the child says it is ready for a phase and
stopped when the child says it is ready for the next one. The reason is cost:
``--native`` pauses the process for every sample, and while shared libraries
are being loaded each sample reloads symbols, so at 1 kHz importing torch takes
27 s instead of 2 s (100 Hz: 3 s). Start-up is therefore sampled at a low rate
and the profiled epochs at a high one.

The handshake is a pair of files per phase in a folder both sides know: the
child writes ``ready-<k>`` and waits for ``go-<k>``, which the parent writes
once py-spy has started sampling. Both sides live in this module so that they
cannot drift apart; the child's side imports nothing heavy, so that phase 1
sees every import.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.jobs.lifeline import parent_gone
from harness.profiling import perf as perf_module

# The child's function that waits for the sampler: its samples are the
# handshake's, not the program's, and are dropped from every count.
WAIT_FRAME = "wait_for_sampler"
ATTACH_SECONDS = 120.0  # py-spy reads the symbols of every library first: torch's are large
_POLL = 0.002
_PAST_DEADLINE = "the profiled process ran past its deadline (--timeout, or the default)"
_PERMISSION = re.compile(r"permission denied|operation not permitted|os error (1|13)\b|ptrace",
                         re.IGNORECASE)

ENABLE_HINT = (
    "py-spy needs to ptrace the profiled process: in a container add --cap-add SYS_PTRACE "
    "(docker run) or the SYS_PTRACE capability; on a host with Yama set "
    "kernel.yama.ptrace_scope to 0 or 1 (sysctl kernel.yama.ptrace_scope=1), or run as root"
)


class ProfilerUnavailable(RuntimeError):
    """py-spy is missing or may not attach here; the message says how to enable it."""


class ProfileFailed(RuntimeError):
    """The profiled child failed; the message carries the end of its error output,
    ``log`` all of it and py-spy's logs, which live in a folder about to go."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Phase:
    """What py-spy recorded of one phase: collapsed stacks, one 'frames count' a line."""

    rate: int
    collapsed: str
    seconds: float  # wall time from the start of sampling to the end of the phase
    errors: int  # samples py-spy took but could not unwind (reported in its log)
    perf_data: Path | None = None  # perf's recording of every thread, when asked for


def locate() -> str | None:
    """py-spy on the PATH, or next to this Python (a virtual environment not activated)."""
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def record(py_spy: str | None, command: Sequence[str], folder: Path, rates: Sequence[int],
           env: dict[str, str] | None = None, timeout: float | None = None,
           native: bool = True, perf: str | None = None,
           perf_phases: Sequence[int] = ()) -> list[Phase]:
    """Run ``command`` (which takes part in the handshake in ``folder``) and record
    phase k at ``rates[k-1]`` samples per second: py-spy with native frames, or
    (``native`` False) Python frames alone; and in ``perf_phases`` perf too, on
    every thread, its data left in ``folder`` for ``perf.script``."""
    if py_spy is None:
        raise ProfilerUnavailable("py-spy is not installed: pip install py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    child_err = (folder / "child.stderr").open("w")
    child = subprocess.Popen(list(command), env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=child_err)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        phases = [_record_phase(py_spy, child, folder, k, rate, deadline, native,
                                perf if k in perf_phases else None)
                  for k, rate in enumerate(rates, 1)]
        _wait(child, deadline)
        if child.returncode != 0:
            raise ProfileFailed(_tail(folder / "child.stderr")
                                or f"profiled process exited with code {child.returncode}")
    except ProfileFailed as e:
        _end(child, child_err)
        raise ProfileFailed(str(e), diagnostics(folder)) from None
    finally:
        _end(child, child_err)
    return phases


def _end(child: subprocess.Popen, child_err) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()
    child_err.close()


def diagnostics(folder: Path) -> str:
    """Everything the profiled child and py-spy said, each under its file's name."""
    parts = []
    for path in [folder / "child.stderr", *sorted(folder.glob("phase-*.log"))]:
        if path.is_file():
            parts.append(f"== {path.name}\n{path.read_text(errors='replace').rstrip()}\n")
    return "\n".join(parts)


def _record_phase(py_spy, child, folder: Path, k: int, rate: int, deadline, native: bool,
                  perf: str | None) -> Phase:
    if not _await(lambda: (folder / f"ready-{k}").exists(), child, deadline):
        raise ProfileFailed(_tail(folder / "child.stderr")
                            or f"profiled process exited with code {child.returncode}")
    out, log = folder / f"phase-{k}.txt", folder / f"phase-{k}.log"
    with log.open("w") as log_file:  # py-spy says "Sampling" on stdout, errors on stderr
        try:
            spy = subprocess.Popen(_command(py_spy, rate, out, child.pid, native),
                                   stdin=subprocess.DEVNULL, stdout=log_file,
                                   stderr=subprocess.STDOUT)
        except OSError as e:
            raise ProfilerUnavailable(f"py-spy at {py_spy} cannot be run ({e.strerror}): "
                                      "pip install py-spy") from None
    recording = None
    try:
        _attach(spy, log, deadline)
        if perf is not None:
            try:
                recording = perf_module.Recording(perf, child.pid, rate,
                                                  folder / f"phase-{k}.perf.data")
            except perf_module.PerfFailed as e:
                raise ProfileFailed(str(e)) from None
        started = time.monotonic()
        (folder / f"go-{k}").touch()
        # The phase ends with the child's next 'ready' or with the child itself.
        _await(lambda: (folder / f"ready-{k + 1}").exists(), child, deadline)
        seconds = time.monotonic() - started
        if recording is not None:
            try:
                recording.stop()
            except perf_module.PerfFailed as e:
                raise ProfileFailed(str(e)) from None
        if spy.poll() is None and child.poll() is None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and detaches
        try:
            spy.wait(timeout=ATTACH_SECONDS)
        except subprocess.TimeoutExpired:
            raise ProfileFailed(f"py-spy did not write its profile within {ATTACH_SECONDS:g} s "
                                "of being stopped") from None
    finally:
        if recording is not None:
            recording.kill()
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    errors = re.search(r"Errors: (\d+)", log.read_text())
    return Phase(rate, out.read_text() if out.exists() else "", seconds,
                 int(errors.group(1)) if errors else 0,
                 recording.out if recording is not None else None)


def _command(py_spy: str, rate: int, out: Path, pid: int, native: bool = True) -> list[str]:
    # --native: C, C++ and BLAS frames, where perf cannot sample them. --idle: a thread
    # waiting on other threads (XLA runs JAX's programs on threads of its own,
    # which py-spy cannot see) is sampled too, so the wait is counted where it
    # belongs instead of vanishing. --function: one frame per Python function,
    # not one per line. Raw output: collapsed stacks, post-processed here.
    # Without --native (perf samples the native frames): --nonblocking, so that
    # py-spy never stops the process, whose CPU time perf is measuring.
    how = ["--native"] if native else ["--nonblocking"]
    return [py_spy, "record", *how, "--idle", "--function", "--rate", str(rate),
            "--format", "raw", "--output", str(out), "--pid", str(pid)]


def _attach(spy: subprocess.Popen, log: Path, deadline) -> None:
    """Wait until py-spy samples; a refusal to attach becomes ProfilerUnavailable."""
    limit = time.monotonic() + ATTACH_SECONDS
    while "Sampling process" not in log.read_text():
        if spy.poll() is not None:
            message = log.read_text().strip() or f"py-spy exited with code {spy.returncode}"
            if _PERMISSION.search(message):
                raise ProfilerUnavailable("py-spy may not attach to the profiled process "
                                          "(permission denied). " + ENABLE_HINT)
            raise ProfileFailed(f"py-spy failed: {_last_line(message)}")
        if time.monotonic() > min(limit, deadline or limit):
            raise ProfileFailed(f"py-spy did not start sampling within {ATTACH_SECONDS:g} s")
        time.sleep(0.01)


def _await(ready, child: subprocess.Popen, deadline) -> bool:
    """Wait for ``ready()``; False if the child ended first."""
    while not ready():
        if child.poll() is not None:
            return ready()
        if deadline is not None and time.monotonic() > deadline:
            raise ProfileFailed(_PAST_DEADLINE)
        time.sleep(_POLL)
    return True


def _wait(child: subprocess.Popen, deadline) -> None:
    try:
        child.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        raise ProfileFailed(_PAST_DEADLINE) from None


def _tail(path: Path, lines: int = 1) -> str:
    text = path.read_text().strip() if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1].removeprefix("Error: ").strip()


# The child's side ----------------------------------------------------------

def allow_parent_to_trace() -> None:
    """Let the harness and its children (py-spy) ptrace this process under Yama's
    ptrace_scope=1, where only ancestors may: prctl(PR_SET_PTRACER, parent)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_ptracer = 0x59616D61
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_ptracer, os.getppid(), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no Yama, or no prctl: nothing to allow


def wait_for_sampler(folder: Path, k: int) -> None:
    """Say 'ready for phase k' and wait until the sampler is attached; exit if the
    harness that would attach it is gone."""
    (folder / f"ready-{k}").touch()
    go = folder / f"go-{k}"
    while not go.exists():
        if parent_gone():
            os._exit(1)
        time.sleep(_POLL)
