"""The registry of training backends.

Adding a backend means adding its module and one line to ``_REGISTRY``, which
holds every fact the harness needs about it (what it needs installed, whether
it is ours or a peer's, how fast py-spy may sample it); a
backend outside this package is added at run time with the environment variable
``NNDL_BENCH_PLUGINS=name=module:Class[,...]`` (worker processes inherit it). A
backend whose packages are missing is left out of ``available()``; asking for
it by name raises ``BackendUnavailable`` with the command that installs them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

from backends.base import Params, Trainer
from backends.rust_extension import BUILD_HINT as RUST_BUILD_HINT
from backends.rust_extension import MODULE as RUST_MODULE


@dataclass(frozen=True)
class _Entry:
    """What the harness knows of a backend before importing it."""

    module: str
    cls: str
    requires: tuple[str, ...] = ()  # modules it imports that may be missing
    extra: str = ""  # the extra of nndl-bench that installs them
    packages: tuple[str, ...] = ()  # distributions run.json records (default: requires)
    peer: bool = False  # a library a user would otherwise reach for, not one of ours
    # The highest py-spy rate (Hz) its stacks can be unwound at without falling behind.
    profile_rate: int | None = None
    build: str = ""  # how to build what ``requires`` names, where pip cannot install it


_RUST = {"requires": (RUST_MODULE,), "build": RUST_BUILD_HINT}
_PEER = {"extra": "peers", "peer": True}
_NUMBA = {"requires": ("numba",), "packages": ("numba", "llvmlite")}
# Each native sample of PyTorch walks libtorch's deep C++ stacks: at 1 kHz py-spy
# fell minutes behind a 1.2 s epoch and the profile never ended; at 100 Hz it keeps up.
_TORCH = {"requires": ("torch",), "profile_rate": 100, **_PEER}
_JAX = {"requires": ("jax",), "packages": ("jax", "jaxlib"), **_PEER}

# One line per backend.
_REGISTRY: dict[str, _Entry] = {
    "numpy-book": _Entry("backends.numpy_book", "NumpyBook"),
    "numpy-per-sample": _Entry("backends.numpy_per_sample", "NumpyPerSample"),
    "numpy-batched": _Entry("backends.numpy_batched", "NumpyBatched"),
    "numpy-gemm": _Entry("backends.numpy_gemm", "NumpyGemm"),
    "numba": _Entry("backends.numba_fused", "NumbaFused", **_NUMBA),
    "numba-parallel": _Entry("backends.numba_parallel", "NumbaParallel", **_NUMBA),
    "numba-tiles": _Entry("backends.numba_tiles", "NumbaTiles", **_NUMBA),
    "torch": _Entry("backends.torch_backend", "TorchTrainer", **_TORCH),
    "torch-compile": _Entry("backends.torch_compile", "TorchCompile", **_TORCH),
    "jax": _Entry("backends.jax_backend", "JaxTrainer", **_JAX),
    "rust-ndarray": _Entry("backends.rust_ndarray", "RustNdarray", **_RUST),
    "rust-ndarray-batched": _Entry("backends.rust_ndarray_batched", "RustNdarrayBatched", **_RUST),
    "rust-rayon": _Entry("backends.rust_rayon", "RustRayon", **_RUST),
    "rust-fused": _Entry("backends.rust_fused", "RustFused", **_RUST),
    "rust-fused-parallel": _Entry("backends.rust_fused_parallel", "RustFusedParallel", **_RUST),
}

REFERENCE = "numpy-per-sample"
PLUGINS_VARIABLE = "NNDL_BENCH_PLUGINS"


def _entries() -> dict[str, _Entry]:
    """The built-in backends, then those named in $NNDL_BENCH_PLUGINS."""
    entries = dict(_REGISTRY)
    items = os.environ.get(PLUGINS_VARIABLE, "").split(",")
    for item in filter(None, (part.strip() for part in items)):
        name, _, target = item.partition("=")
        module, _, cls = target.partition(":")
        if not (name and module and cls):
            raise PluginSpecError(f"{PLUGINS_VARIABLE}: {item!r} is not of the form "
                                  "name=module:Class[,name=module:Class...]")
        entries[name.strip()] = _Entry(module.strip(), cls.strip())
    return entries


class PluginSpecError(ValueError):
    """$NNDL_BENCH_PLUGINS names a backend in a form, or a module, that cannot be used."""


class UnknownBackend(ValueError):
    def __init__(self, name: str):
        super().__init__(
            f"unknown backend {name!r}; choose 'all' or a comma list of: {', '.join(names())}"
        )


class BackendUnavailable(ImportError):
    def __init__(self, name: str, missing: list[str], extra: str, build: str = ""):
        hint = build or (
            f"pip install 'nndl-bench[{extra}]'" if extra else f"pip install {' '.join(missing)}"
        )
        super().__init__(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed: {hint}"
        )


def entry(name: str) -> _Entry:
    """The registry's facts about ``name``."""
    found = _entries().get(name)
    if found is None:
        raise UnknownBackend(name)
    return found


def peers() -> list[str]:
    """The backends that stand for the libraries a user would otherwise reach for."""
    return [name for name, e in _entries().items() if e.peer]


def recorded_packages() -> list[str]:
    """The distributions, of every backend, whose versions a run records."""
    return list(dict.fromkeys(p for e in _entries().values()
                              for p in e.packages or e.requires))


def names() -> list[str]:
    """Every backend this version knows, installed or not."""
    return list(_entries())


def _missing(entry: _Entry) -> list[str]:
    return [pkg for pkg in entry.requires if importlib.util.find_spec(pkg) is None]


def available() -> list[str]:
    """The backends whose packages are installed, in registry order."""
    return [name for name, entry in _entries().items() if not _missing(entry)]


def left_out_notices() -> list[str]:
    """One line per group of built backends (the Rust ones) that ``all`` leaves
    out because their module is not built, with the command that builds it."""
    groups: dict[str, list[str]] = {}
    for name, entry in _entries().items():
        if entry.build and _missing(entry):
            groups.setdefault(entry.build, []).append(name)
    return [f"left out of 'all' ({', '.join(names)}): not built; {build}"
            for build, names in groups.items()]


def get(name: str) -> type:
    """The trainer class registered as ``name``; built as ``cls(params, dtype, threads=None)``."""
    check(name)
    found = entry(name)
    return getattr(importlib.import_module(found.module), found.cls)


def create(
    name: str, params: Params, dtype: str = "float64", threads: int | None = None
) -> Trainer:
    """A fresh trainer. ``threads`` is for backends that run threads of their own
    (Numba, PyTorch); BLAS threads are set by the caller through threadpoolctl."""
    return get(name)(params, dtype, threads=threads)


def resolve(spec: str) -> list[str]:
    """``'all'`` or a comma list of names, checked: the backends a run will use."""
    if spec.strip() == "all":
        return available()
    chosen = [part.strip() for part in spec.split(",") if part.strip()]
    if not chosen:
        raise UnknownBackend(spec)
    for name in chosen:
        check(name)
    return list(dict.fromkeys(chosen))


def check(name: str) -> None:
    """Raise UnknownBackend, BackendUnavailable or PluginSpecError if ``name`` cannot
    run here, without importing it: a backend's libraries (torch, jax) load their own
    BLAS and threads, and the parent's metadata and GEMM peak must not depend on
    which backends were named."""
    found = entry(name)
    missing = _missing(found)
    if missing:
        raise BackendUnavailable(name, missing, found.extra, found.build)
    if name not in _REGISTRY:
        try:
            spec = importlib.util.find_spec(found.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise PluginSpecError(f"{PLUGINS_VARIABLE}: {name}={found.module}:{found.cls}: "
                                  f"no module {found.module!r} on the path")
