"""What a run was measured on: recorded in run.json so figures can be read later."""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import platform
import re
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

# The harness's own; each backend's are on its registry entry.
PACKAGES = ("numpy", "pandas", "threadpoolctl", "py-spy", "scipy", "distributed")
# Set on some machines to work around older OpenBLAS builds; they change which
# kernels run, so a figure means little without them.
BLAS_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
COMMIT_VARIABLE = "NNDL_BENCH_COMMIT"
CODE = ("harness", "backends", "rust", "pyproject.toml")  # what a measurement depends on


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_identity() -> dict[str, str]:
    """Vendor, family and model number from /proc/cpuinfo: the model name alone
    ("AMD EPYC") is the same for CPUs of different generations."""
    keys = {"vendor_id": "vendor", "cpu family": "family", "model": "model"}
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in keys and keys[name.strip()] not in found:
                found[keys[name.strip()]] = value.strip()
            if not line.strip() and found:
                break  # the first processor's block is enough
    except OSError:
        pass
    return found


def machine_key(blas: list[dict] | None = None) -> str:
    """A name for the kind of machine, for keeping baselines apart: the CPU
    (name, family and model, count of CPUs) and the kernels NumPy's BLAS chose
    for it. Ratios between backends shift from one kind to another (NumPy's
    interpreter-bound code and BLAS-bound code do not speed up alike), so a
    regression gate may only compare figures measured on the same kind."""
    identity = cpu_identity()
    blas = blas_info() if blas is None else blas
    kernels = "-".join(dict.fromkeys(
        f"{p.get('internal_api')}-{p.get('architecture')}" for p in blas
        if p.get("user_api") == "blas" and "numpy" in p.get("used_by", ["numpy"]))) or "noblas"
    parts = [cpu_model(), f"f{identity.get('family', 'x')}m{identity.get('model', 'x')}",
             f"{os.cpu_count()}cpu", kernels]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower().replace("(r)", "")).strip("-")


def package_versions() -> dict[str, str | None]:
    import backends

    versions = {}
    for name in dict.fromkeys([*PACKAGES, *backends.recorded_packages()]):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def blas_info() -> list[dict]:
    """Every BLAS (and OpenMP) library in the process, as threadpoolctl finds
    them: its file, version, the kernels chosen for this CPU (``architecture``)
    and threads; ``used_by`` names which of NumPy and the Rust extension
    (``nndl_bench_rust``) call it. The extension links NumPy's own OpenBLAS,
    so one library is used by both; two would mean two builds compared."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports
    from threadpoolctl import threadpool_info

    users = {"numpy": _blas_file(_compiled_file("numpy._core._multiarray_umath",
                                                "numpy.core._multiarray_umath"))}
    # The extension loads its library too, where it is built (maturin's package
    # holds the compiled module under the same name).
    extension = _compiled_file("nndl_bench_rust.nndl_bench_rust", "nndl_bench_rust")
    if extension:
        users["nndl_bench_rust"] = _blas_file(extension)
    keys = ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")
    pools = [{k: pool.get(k) for k in keys} for pool in threadpool_info()]
    for pool in pools:
        path = os.path.realpath(pool["filepath"]) if pool.get("filepath") else None
        pool["used_by"] = [name for name, file in users.items() if file and file == path]
    return pools


# The GEMM of each kind of BLAS NumPy or the extension may call: NumPy's wheels'
# ILP64 scipy_openblas, its LP64 form, a plain CBLAS (Debian's, conda's, MKL).
_GEMM_SYMBOLS = ("scipy_cblas_dgemm64_", "scipy_cblas_dgemm", "cblas_dgemm64_", "cblas_dgemm")


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _compiled_file(*modules: str) -> str | None:
    """The shared object of the first of ``modules`` that imports as one (NumPy's
    core is ``numpy._core`` from 2.0, ``numpy.core`` before)."""
    for name in modules:
        try:
            path = getattr(importlib.import_module(name), "__file__", None) or ""
        except ImportError:
            continue
        if path.endswith((".so", ".pyd", ".dylib")):
            return path
    return None


def _blas_file(module_file: str | None) -> str | None:
    """The file that defines the GEMM a loaded shared object calls: the loader's
    answer (dlsym through the object and what it needs, then dladdr), not a guess
    from names. None where it calls none, or off glibc."""
    if not module_file:
        return None
    try:
        # RTLD_NOLOAD: the object as already loaded, never a second copy.
        handle = ctypes.CDLL(module_file, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    for symbol in _GEMM_SYMBOLS:
        try:
            address = ctypes.cast(getattr(handle, symbol), ctypes.c_void_p).value
        except AttributeError:
            continue
        info = _DlInfo()
        if dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(os.fsdecode(info.dli_fname))
    return None


def rust_info() -> dict | None:
    """The Rust extension's build (compiler, crate versions, profile), the OpenBLAS
    it links (``openblas_get_config``, the kernels chosen for this CPU, its threads,
    its version and file) and the fused kernel's instruction sets; None where the
    extension is not built."""
    try:
        import nndl_bench_rust
    except ImportError:
        return None
    return nndl_bench_rust.build_info()


def git_commit(cwd: Path | None = None) -> str | None:
    """The checkout's commit, with '+dirty.' and eight hex digits of the diff when the
    code that runs has changes (``CODE``: two trees with different edits differ, an
    edit of the docs is none); None outside git.
    ``$NNDL_BENCH_COMMIT``, where set, is taken instead: the commit of a harness
    installed without its checkout (a wheel, a container image)."""
    if os.environ.get(COMMIT_VARIABLE):
        return os.environ[COMMIT_VARIABLE]
    cwd = cwd or Path(__file__).resolve().parents[2]  # harness/running/ -> the checkout
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", *CODE], cwd=cwd,
                              capture_output=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (f"+dirty.{hashlib.sha256(diff).hexdigest()[:8]}" if diff else "")


def metadata(argv: list[str] | tuple[str, ...] = ()) -> dict:
    blas = blas_info()
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu": cpu_identity(),
        "machine_key": machine_key(blas),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "blas": blas,
        "rust": rust_info(),
        "environment": {k: os.environ[k] for k in BLAS_ENVIRONMENT if k in os.environ},
        "git_commit": git_commit(),
        "command_line": " ".join(argv),
    }


if __name__ == "__main__":  # the key alone, for shell scripts such as .ci/benchmark-gate
    print(machine_key())
