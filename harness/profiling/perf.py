"""Driving perf: native stacks of every thread of a profiled process, named as the
libraries' ELF symbol tables say.

Why perf beside py-spy: py-spy samples only threads that hold a Python thread
state (rayon's, Numba's, OpenBLAS's, XLA's and libtorch's workers hold none),
and its symboliser takes a library's load address from the first executable
segment, so every name in a library with two (Debian's libopenblas, for one)
lands on a neighbour. perf samples every thread of the process on the kernel's
software clock (``-e cpu-clock``: these VMs have no hardware counters), so a
sample is a slice of CPU time, and ``perf script`` names each address from the
DSO's own symbol table, whatever its segments.

Stacks are unwound from a copy of each sample's user stack (``--call-graph
dwarf``): CPython, NumPy and OpenBLAS are built without frame pointers. The
copy is 32 KB: NumPy's ufunc machinery keeps large buffers on the stack, and
8 KB lost the frames above it. Where unwinding stops early the stack simply
starts lower; nothing downstream needs its root, since a sample belongs to the
training by its time (``-k CLOCK_MONOTONIC``, the clock the profiled process
stamps its epochs with), not by its frames.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STACK_BYTES = 32768
STOP_SECONDS = 60.0  # perf writes its buffers out after SIGINT
SCRIPT_SECONDS = 600.0  # perf script unwinds every sample: seconds per thousand
INSTALL_HINT = ("install perf (Debian: apt-get install linux-perf) and allow it to sample "
                "other processes (run as root, or sysctl kernel.perf_event_paranoid=1)")


class PerfFailed(RuntimeError):
    """perf could not record or read back a profile; the message says what it said."""


@dataclass(frozen=True)
class NativeFrame:
    symbol: str  # as perf names it: '[unknown]' where the DSO has no symbol for it
    dso: str  # the file's path, '[kernel.kallsyms]', '/tmp/perf-<pid>.map' for JIT code

    @property
    def unknown(self) -> bool:
        return self.symbol == "[unknown]"


@dataclass(frozen=True)
class Sample:
    """One sample of one thread: its frames outermost first."""

    tid: int
    comm: str  # the thread's name (15 characters at most)
    time_ns: int  # CLOCK_MONOTONIC
    frames: tuple[NativeFrame, ...]


def locate() -> str | None:
    return shutil.which("perf")


@lru_cache(maxsize=4)
def unavailable(perf: str | None) -> str:
    """Why perf cannot sample here ('' when it can): missing, or not permitted to."""
    if perf is None:
        return "perf is not installed: " + INSTALL_HINT
    with tempfile.TemporaryDirectory(prefix="nndl-perf-") as tmp:
        try:
            done = subprocess.run([perf, "record", "-q", "-e", "cpu-clock", "-o",
                                   str(Path(tmp) / "probe.data"), "--", "true"],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"perf at {perf} cannot be run ({e}): " + INSTALL_HINT
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"perf cannot sample here ({said}): " + INSTALL_HINT
    return ""


class Recording:
    """``perf record`` attached to a running process, every thread of it, until stopped."""

    def __init__(self, perf: str, pid: int, rate: int, out: Path):
        self.out = out
        self.log = out.with_suffix(".log")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [perf, "record", "-q", "-e", "cpu-clock", "-F", str(rate), "-k", "CLOCK_MONOTONIC",
                 "--call-graph", f"dwarf,{STACK_BYTES}", "-p", str(pid), "-o", str(out)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._await_start()

    def _await_start(self, seconds: float = 10.0) -> None:
        """perf writes its file's header once its events are open on every thread."""
        limit = time.monotonic() + seconds
        while time.monotonic() < limit and self.process.poll() is None:
            if self.out.exists() and self.out.stat().st_size > 0:
                return
            time.sleep(0.005)
        if self.process.poll() is not None:
            raise PerfFailed(f"perf record exited with code {self.process.returncode}: "
                             f"{self.log.read_text().strip()[-500:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise PerfFailed(f"perf record did not stop within {STOP_SECONDS:g} s") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def script(perf: str, data: Path) -> str:
    """The recorded samples as text: thread, time and frames, leaf first."""
    try:
        done = subprocess.run(
            [perf, "script", "-i", str(data), "--ns", "--no-inline",
             "-F", "comm,tid,time,ip,sym,dso"],
            capture_output=True, text=True, errors="replace", timeout=SCRIPT_SECONDS,
            env={**os.environ, "PAGER": "cat"})
    except subprocess.TimeoutExpired:
        raise PerfFailed(f"perf script took over {SCRIPT_SECONDS:g} s") from None
    if done.returncode != 0:
        raise PerfFailed(f"perf script failed: {done.stderr.strip()[-500:]}")
    return done.stdout


_HEADER = re.compile(r"^(?P<comm>\S.*?)\s+(?P<tid>\d+)\s+(?P<time>\d+)\.(?P<ns>\d{9}):\s*$")
_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<rest>.*)$")


def parse(text: str) -> Iterator[Sample]:
    """``perf script -F comm,tid,time,ip,sym,dso --ns`` output: a header line per
    sample, then one frame a line, leaf first, then a blank line."""
    header, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if header is not None:
                yield _sample(header, frames)
            header, frames = None, []
            continue
        match = _HEADER.match(line)
        if match and header is None:
            header = match
            continue
        frame = _FRAME.match(line)
        if frame and header is not None:
            symbol, sep, dso = frame.group("rest").rpartition(" (")
            if sep and dso.endswith(")"):
                frames.append(NativeFrame(symbol.strip() or "[unknown]", dso[:-1]))
            else:
                frames.append(NativeFrame(frame.group("rest").strip(), ""))
    if header is not None:
        yield _sample(header, frames)


def _sample(header: re.Match[str], frames: list[NativeFrame]) -> Sample:
    time_ns = int(header.group("time")) * 1_000_000_000 + int(header.group("ns"))
    return Sample(int(header.group("tid")), header.group("comm").strip(), time_ns,
                  tuple(reversed(frames)))
