"""perf's samples as the stacks the breakdown and the flamegraph read: every
thread under a root frame naming its pool, frames named for people, and the
samples of the profiled epochs told apart by time.

- **Threads.** A pool's threads are alike, so they are drawn as one: each
  thread gets a role from what it ran and what it is called (``ROLES``), and
  its stacks start with ``[<role>]``: the main thread, rayon's workers, the
  team's threads, OpenBLAS's, Numba's, OpenMP's (libtorch's), XLA's.
- **Names.** Symbols are demangled (Rust's v0 and legacy schemes, C++); an
  address that its library has no symbol for is named by the library,
  ``[_multiarray_umath.cpython-311-x86_64-linux-gnu.so]``, so neighbouring
  samples of one stripped function make one frame, not one per address; code
  that a JIT compiled (anonymous executable memory, which perf files under
  ``/tmp/perf-<pid>.map``) is ``[numba-jit]`` when Numba is loaded, else ``[jit]``.
- **The interpreter.** CPython's frames above the native code (``_start``
  down to the last ``_PyEval_EvalFrameDefault`` and the calls it makes) fold
  into one ``[python]`` frame: perf cannot read which Python function they
  run (py-spy's view of the same epochs can), and a hundred ``_PyEval`` frames
  would hide the native work below them.
- **Training.** A sample belongs to the profiled epochs if its time falls in
  one of the windows the profiled process stamped around ``train_epoch``.
  Those stacks start with the frames ``profiled_epochs`` and ``train_epoch
  (all threads)``, the anchors the breakdown and the views already use.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.profiling.classify import NUMBA_JIT, OTHER_JIT, Frame, Rule, Stack
from harness.profiling.classify import RULES as CLASSIFY_RULES
from harness.profiling.demangle import demangle_all
from harness.profiling.perf import NativeFrame, Sample

PYTHON = "[python]"
TRAINING_ROOT = ("profiled_epochs", "train_epoch (all threads)")
_INTERPRETER_DSO = re.compile(r"(^|/)(libpython[\d.]*\.so[\d.]*|python3?(\.\d+)?)$")
_NUMBA_DSO = re.compile(r"(^|/)numba/|llvmlite")
_JIT_DSO = re.compile(r"^/tmp/perf-\d+\.map$|^//anon$|^\[anon")


@dataclass(frozen=True)
class Role:
    """A thread's pool: the first role whose pattern matches the thread's name
    (``comm``) or any frame it ran (``symbol (dso)``) names it. A sample whose
    frames are all a C runtime's or the kernel's (a worker spinning or waiting
    for work) is the work of the pool's owner: ``category``."""

    name: str
    category: str
    comm: str = ""
    frame: str = ""

    def matches(self, comm: str, frames: Iterable[str]) -> bool:
        if self.comm and re.search(self.comm, comm):
            return True
        return bool(self.frame) and any(re.search(self.frame, f) for f in frames)


ROLES: tuple[Role, ...] = (
    Role("rayon workers", "rust", comm=r"^nndl-rayon", frame=r"rayon_core::"),
    Role("team threads", "rust", comm=r"^nndl-team"),
    Role("OpenBLAS threads", "blas", frame=r"^blas_thread_server "),
    Role("Numba workers", "jit",
         frame=r"numba/np/ufunc/(workqueue|omppool|tbbpool)|^\[numba-jit\]$"),
    Role("XLA threads", "xla", comm=r"XLA|xla|Eigen|tf_", frame=r"jaxlib|xla_extension|libjax"),
    Role("torch threads", "torch", frame=r"libtorch|libc10"),
    Role("OpenMP threads", "other", frame=r"libgomp|libiomp|libomp"),
)
MAIN = "main thread"
# The classifier's rules, and last the pools' root frames (reached only by a
# sample whose every frame defers to its caller).
RULES: tuple[Rule, ...] = (
    *CLASSIFY_RULES,
    *(Rule(role.category, name=rf"^\[{re.escape(role.name)}\]$",
           why=f"the {role.name}' own spinning and waiting") for role in ROLES),
)


def thread_roles(samples: Sequence[Sample], pid: int, numba: bool = False) -> dict[int, str]:
    """Each thread's role; a thread that fits none is named by its ``comm``. A
    thread that ran Numba's compiled code is one of Numba's workers, whichever
    threading layer (OpenMP, TBB, its own) started it."""
    jit = Namer.jit_label(samples, numba)
    comms: dict[int, str] = {}
    frames: dict[int, set[str]] = defaultdict(set)
    for sample in samples:
        comms[sample.tid] = sample.comm
        frames[sample.tid].update(jit if _JIT_DSO.search(f.dso) else f"{f.symbol} ({f.dso})"
                                  for f in sample.frames)
    roles = {}
    for tid, comm in comms.items():
        if tid == pid:
            roles[tid] = MAIN
            continue
        role = next((r for r in ROLES if r.matches(comm, frames[tid])), None)
        roles[tid] = role.name if role else f"thread '{comm}'"
    return roles


class Namer:
    """The text of each native frame, 'function (library)' as the classifier reads it."""

    def __init__(self, samples: Sequence[Sample], numba: bool = False):
        self.jit = self.jit_label(samples, numba)
        self.names = demangle_all(f.symbol for s in samples for f in s.frames if not f.unknown)

    @staticmethod
    def jit_label(samples: Sequence[Sample], numba: bool = False) -> str:
        """``[numba-jit]`` where Numba is loaded in the process (``numba``, as the
        process says, or its libraries in the samples), else ``[jit]``. The samples
        alone may not tell: unwinding stops in compiled code, so a kernel that calls
        nothing of Numba's runtime shows no frame of it."""
        dsos = {f.dso for s in samples for f in s.frames}
        return NUMBA_JIT if numba or any(_NUMBA_DSO.search(d) for d in dsos) else OTHER_JIT

    def text(self, frame: NativeFrame) -> str:
        if _JIT_DSO.search(frame.dso):
            return self.jit
        if frame.unknown:
            if not frame.dso or frame.dso == "[unknown]":
                return "[unknown]"
            return f"[{os.path.basename(frame.dso)}] ({frame.dso})"
        name = self.names.get(frame.symbol, frame.symbol).replace(";", ":")
        return f"{name} ({frame.dso})"


def _fold_interpreter(frames: Sequence[NativeFrame]) -> tuple[list[NativeFrame], bool]:
    """The frames below the last interpreter frame that calls native code, and
    whether any were folded. A leaf in the interpreter stays, under ``[python]``."""
    last = max((i for i, f in enumerate(frames) if _INTERPRETER_DSO.search(f.dso)), default=-1)
    if last < 0:
        return list(frames), False
    if last == len(frames) - 1:  # the interpreter itself is working: keep its leaf
        return [frames[-1]], True
    return list(frames[last + 1:]), True


def stacks(samples: Sequence[Sample], pid: int, windows: Sequence[tuple[int, int]],
           numba: bool = False) -> tuple[Counter[Stack], Counter[Stack]]:
    """(training, phase): the stacks of the samples inside the windows, under
    ``TRAINING_ROOT``; and of every sample of the phase, those inside the windows
    under the same root, the rest under ``profiled_epochs`` alone."""
    namer = Namer(samples, numba)
    roles = thread_roles(samples, pid, numba)
    training: Counter[Stack] = Counter()
    phase: Counter[Stack] = Counter()
    ordered = sorted(windows)
    for sample in samples:
        frames, folded = _fold_interpreter(sample.frames)
        texts = ([PYTHON] if folded else []) + [namer.text(f) for f in frames]
        stack = (f"[{roles[sample.tid]}]", *_merge_runs(texts))
        if _inside(sample.time_ns, ordered):
            training[(*TRAINING_ROOT, *stack)] += 1
            phase[(*TRAINING_ROOT, *stack)] += 1
        else:
            phase[(TRAINING_ROOT[0], *stack)] += 1
    return training, phase


def _merge_runs(texts: list[str]) -> list[str]:
    """Consecutive frames of one name (a library's stripped functions calling
    each other, JIT code calling JIT code) as one."""
    out: list[str] = []
    for text in texts:
        if not out or out[-1] != text or not text.startswith("["):
            out.append(text)
    return out


def _inside(time_ns: int, windows: Sequence[tuple[int, int]]) -> bool:
    return any(start <= time_ns <= end for start, end in windows)


def thread_shares(training: Mapping[Stack, int]) -> dict[str, float]:
    """Each role's share of the training samples, largest first."""
    counts: Counter[str] = Counter()
    for stack, n in training.items():
        counts[stack[len(TRAINING_ROOT)].strip("[]")] += n
    total = sum(counts.values())
    return {role: n / total for role, n in counts.most_common()} if total else {}


def hot_functions(training: Mapping[Stack, int], top: int) -> list[tuple[str, str, str, int]]:
    """The ``top`` leaves of the training by samples, each with its thread's role:
    (function, library, thread, samples)."""
    counts: Counter[tuple[str, str]] = Counter()
    for stack, n in training.items():
        counts[(stack[len(TRAINING_ROOT)].strip("[]"), stack[-1])] += n
    out = []
    for (role, leaf), n in counts.most_common(top):
        frame = Frame.parse(leaf)
        out.append((frame.name, frame.library, role, n))
    return out
