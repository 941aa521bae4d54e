"""Where the time goes: py-spy's collapsed stacks sorted into a few categories.

Every sample is classified by its leaf frame, the function the CPU was in,
through one ordered table of rules (``RULES``): the first rule that matches
decides. A rule may instead defer to the caller (``CALLER``): libm's ``exp``,
a libc lock or the dynamic loader's ``__tls_get_addr`` belong to whoever
called them (NumPy's ufunc loop, PyTorch's dispatcher). The rules were written
from py-spy ``--native`` output of every backend on Linux with NumPy 2 and its
bundled OpenBLAS, PyTorch 2 with MKL, Numba, JAX and the Rust extension; frames they do not know
land in ``other``, which the hot-function table then names.

Three things are done to the stacks before they are counted or drawn:

- Code that Numba (or XLA) compiled has no symbols: py-spy shows one bare
  address per instruction, ``0x7f... (?)``, so a Numba kernel would show as
  hundreds of one-sample leaves. A run of such frames becomes one frame,
  ``[numba-jit]`` when Numba is loaded in the profiled process, else ``[jit]``.
- The C entry point some stacks start with is dropped (``drop_entry``), so
  that stacks which lost it (through a BLAS kernel) join the others.
- Only samples whose stack passes through every frame of ``within`` (the
  profiled loop, then the trainer's ``train_epoch``) are counted: imports,
  data loading, warm-up (JIT compilation) and the process's start and end are
  left out and reported as the share they took.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.profiling.demangle import demangle

Stack = tuple[str, ...]  # frames, outermost first, as py-spy writes them

CATEGORIES = ("blas", "numpy", "allocation", "interpreter", "jit", "torch", "xla", "rust",
              "other")
CALLER = "caller"  # not a category: the frame below decides
NUMBA_JIT, OTHER_JIT = "[numba-jit]", "[jit]"
UNSYMBOLISED = "[unsymbolised]"


@dataclass(frozen=True)
class Rule:
    """A frame matches when every given pattern is found in it (re.search)."""

    category: str
    name: str = ""  # the function: 'dgemm_kernel_HASWELL', 'NumpyGemm.train_epoch'
    library: str = ""  # the shared library, or the Python file for Python frames
    why: str = ""

    def matches(self, frame: Frame) -> bool:
        return ((not self.name or re.search(self.name, frame.name) is not None)
                and (not self.library or re.search(self.library, frame.library) is not None))


_BARE = r"^0x[0-9a-f]+$"
_NUMBA_LIBRARY = r"(^|/)numba/(?!.*\.py$)|llvmlite"

RULES: tuple[Rule, ...] = (
    Rule("jit", name=r"^\[numba-jit\]$", why="Numba-compiled code (bare addresses, collapsed)"),
    Rule("interpreter", name=r"^\[python\]$",
         why="CPython's frames above native code, folded into one in perf's stacks"),
    Rule(CALLER, name=r"^\[jit\]$", why="compiled code of unknown origin: its caller tells"),
    # Allocation before libraries: malloc is allocation whoever calls it.
    Rule("allocation", name=r"^(malloc|free|calloc|realloc|cfree|posix_memalign|aligned_alloc"
                            r"|_int_malloc|_int_free|_int_realloc|malloc_consolidate|tcache_\w+"
                            r"|__libc_(malloc|free|calloc|realloc)|operator new|operator delete"
                            r"|mmap64|mmap|munmap|brk|sbrk|madvise|mremap)(\b|$)",
         why="the C allocator and the system calls behind it"),
    Rule("allocation", name=r"^(__)?mem(cpy|move|set)\w*$",
         why="copying and zeroing memory"),
    Rule("allocation", name=r"page_fault|^clear_page|^do_anonymous_page",
         why="first touch of fresh pages"),
    Rule("allocation", name=r"^(PyDataMem_\w+|npy_alloc_cache\w*|npy_free_cache\w*|default_malloc"
                            r"|default_calloc|default_realloc|default_free)$",
         why="NumPy's data allocator and its small-block cache"),
    Rule("allocation", name=r"^(c10::alloc_cpu|c10::free_cpu)",
         why="PyTorch's CPU allocator"),
    Rule("allocation", name=r"^NRT_(Allocate|Free|MemInfo_alloc\w*|MemInfo_call_dtor|dealloc)\w*$",
         why="Numba's runtime allocator"),
    Rule("allocation", name=r"^(__rust_(alloc|dealloc|realloc|alloc_zeroed)|__rdl_\w+)$"
                            r"|alloc(::|\.\.)(raw_vec|alloc)\b|spec_from_elem|drop_in_place"
                            r"|ndarray(::|\.\.)impl_constructors\b",
         why="Rust's allocator, and the Vec and ndarray code that makes, zeroes or drops arrays"),
    Rule("allocation", name=r"^\[libc[.-][^\]]*\]$", library=r"(^|/)libc[.-]",
         why="as below, in perf's stacks, which name an address without a symbol by its "
             "library"),
    Rule("allocation", name=_BARE, library=r"(^|/)libc[.-]",
         why="libc's memcpy, memset and malloc internals have no exported symbol: bare libc "
             "addresses are called from PyArray_TakeFrom, PyDataMem_UserFREE, dgemm_beta"),
    Rule("interpreter", library=r"\.py$|^<frozen ",
         why="a Python frame as the leaf: the interpreter running Python code"),
    Rule("blas", library=r"openblas|libblas|libmkl|libcblas|Accelerate|vecLib|libflexiblas",
         why="OpenBLAS (NumPy's bundled scipy_openblas), MKL or Accelerate: kernels, "
             "packing copies, thread hand-off"),
    Rule("blas", name=r"^(mkl_blas_|mkl_serv_|mkl_lapack_|cblas_[sdcz]\w+"
                      r"|[sdcz](gemm|gemv|axpy|dot|ger|scal|trsm|syrk)(_\w+)?$)",
         why="BLAS symbols linked into other libraries, e.g. MKL inside libtorch_cpu.so"),
    Rule("jit", library=_NUMBA_LIBRARY, why="Numba's runtime and helpers"),
    Rule("rust", library=r"nndl_bench_rust|\.rs$",
         why="the Rust extension: its own code, ndarray's loops and rayon's scheduler, all "
             "compiled into the module (py-spy names a Rust frame by its source file, "
             "'add_assign (arith.rs:791)', when the module has debug symbols). rayon's "
             "workers hold no Python thread state and py-spy does not sample them: in "
             "rust-rayon only the calling thread is seen, waiting on rayon's latch"),
    Rule("xla", library=r"jaxlib|libjax|xla_extension|jax_common|libtpu",
         why="the XLA runtime and its compiled kernels"),
    Rule("torch", library=r"libtorch|libc10|(^|/)torch/lib/|libshm|functorch",
         why="ATen kernels, the dispatcher, autograd, c10"),
    Rule("numpy", library=r"(^|/)numpy/",
         why="ufunc loops, reductions, take and fancy indexing, and NumPy's per-call work "
             "(argument parsing, dtype resolution, wrapping the result)"),
    Rule("interpreter", library=r"libpython|(^|/)python3?(\.\d+)?$",
         why="CPython: evaluation, object allocation and deallocation, garbage collection"),
    Rule(CALLER, library=r"^\[kernel",
         why="the kernel, in perf's stacks (system calls, locks, scheduling): its caller's "
             "work; first touches of fresh pages are allocation, above"),
    Rule(CALLER, library=r"(^|/)(libm|libmvec|libc|libpthread|ld-linux[\w.-]*|libstdc\+\+|libgcc_s"
                         r"|libgomp|libiomp5|libdl|librt)[.-]",
         why="C and C++ runtime helpers (exp, locks, thread-local lookups): their caller's work"),
)


@dataclass(frozen=True)
class Frame:
    name: str
    library: str  # '' when py-spy knew no binary for the address

    @classmethod
    def parse(cls, text: str) -> Frame:
        """'name (library)' or 'name (file.py:line)'; py-spy writes '?' for no binary."""
        name, sep, rest = text.rpartition(" (")
        if not sep or not rest.endswith(")"):
            return cls(demangle(text), "")
        location = rest[:-1]
        if location == "?":
            location = ""
        elif re.search(r":\d+$", location):
            location = location.rsplit(":", 1)[0]
        return cls(demangle(name), location)

    @property
    def function(self) -> str:
        """The name without its class: 'NumpyGemm.train_epoch' -> 'train_epoch'."""
        return self.name.rsplit(".", 1)[-1]


def parse_collapsed(text: str) -> Counter[Stack]:
    """py-spy's raw format: 'frame;frame;... count' a line, outermost frame first."""
    stacks: Counter[Stack] = Counter()
    for line in text.splitlines():
        frames, _, count = line.rstrip().rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def jit_label(stacks: Iterable[Stack]) -> str:
    """``[numba-jit]`` if Numba is loaded in the profiled process (its frames show), else
    ``[jit]``."""
    numba = any(re.search(_NUMBA_LIBRARY, Frame.parse(text).library)
                for stack in stacks for text in stack)
    return NUMBA_JIT if numba else OTHER_JIT


def collapse_jit(stacks: Mapping[Stack, int], label: str = NUMBA_JIT) -> Counter[Stack]:
    """Each run of frames without a binary ('0x7f... (?)') becomes one ``label`` frame."""
    out: Counter[Stack] = Counter()
    for stack, count in stacks.items():
        frames: list[str] = []
        for text in stack:
            frame = Frame.parse(text)
            if text == label or (not frame.library and re.match(_BARE, frame.name)):
                if not frames or frames[-1] != label:
                    frames.append(label)
            else:
                frames.append(text)
        out[tuple(frames)] += count
    return out


def drop_entry(stacks: Mapping[Stack, int]) -> Counter[Stack]:
    """Without the C entry point (a bare libc address) that some stacks start with:
    py-spy loses it when it cannot unwind through a BLAS kernel, and a flamegraph
    would then draw the same Python frames as two towers."""
    out: Counter[Stack] = Counter()
    for stack, count in stacks.items():
        start = 0
        while start < len(stack) - 1 and _is_libc_address(Frame.parse(stack[start])):
            start += 1
        out[stack[start:]] += count
    return out


def _is_libc_address(frame: Frame) -> bool:
    return bool(re.match(_BARE, frame.name) and re.search(r"(^|/)libc[.-]", frame.library))


def unsampled_threads_note(stacks: Iterable[Stack]) -> str:
    """What the profile cannot show: py-spy samples only threads that hold a Python
    thread state, so the work of rayon's pool is not in it, only the caller's wait."""
    if not any("rayon_core::" in text for stack in stacks for text in stack):
        return ""
    return ("; rayon's worker threads hold no Python thread state and py-spy does not "
            "sample them: this is the calling thread only, its wait on rayon's latch "
            "counted as rust")


def classify(stack: Stack, rules: Sequence[Rule] = RULES) -> str:
    """The category of a sample: its leaf's, or its nearest caller's that has one."""
    for text in reversed(stack):
        frame = Frame.parse(text)
        rule = next((r for r in rules if r.matches(frame)), None)
        if rule is None:
            return "other"
        if rule.category != CALLER:
            return rule.category
    return "other"


def passes_through(stack: Stack, within: Sequence[str]) -> bool:
    """Whether the stack holds frames of the functions ``within``, in that order."""
    names = iter(Frame.parse(text).function for text in stack)
    return all(any(name == wanted for name in names) for wanted in within)


@dataclass
class Breakdown:
    """Counted samples by category, and what was left out."""

    samples: Counter[str] = field(default_factory=Counter)
    outside: int = 0  # samples of the process outside ``within``
    leaves: Counter[str] = field(default_factory=Counter)  # leaf frame -> samples

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def shares(self) -> dict[str, float]:
        total = self.total
        return {c: (self.samples[c] / total if total else 0.0) for c in CATEGORIES}


def breakdown(stacks: Mapping[Stack, int], within: Sequence[str] = ("train_epoch",),
              ignore: Sequence[str] = (), rules: Sequence[Rule] = RULES) -> Breakdown:
    """Classify the samples inside ``within``; samples through ``ignore`` are dropped."""
    result = Breakdown()
    for stack, count in stacks.items():
        if ignore and any(Frame.parse(t).function in ignore for t in stack):
            continue
        if not passes_through(stack, within):
            result.outside += count
            continue
        result.samples[classify(stack, rules)] += count
        result.leaves[stack[-1]] += count
    return result


def hot_functions(leaves: Mapping[str, int], top: int = 10) -> list[tuple[str, str, int]]:
    """The ``top`` leaf functions by samples: (function, library, samples).

    Addresses without a symbol are merged per library as ``[unsymbolised]``."""
    merged: Counter[tuple[str, str]] = Counter()
    for text, count in leaves.items():
        frame = Frame.parse(text)
        name = UNSYMBOLISED if re.match(_BARE, frame.name) else frame.name
        merged[(name, frame.library)] += count
    return [(name, library, n) for (name, library), n in merged.most_common(top)]
