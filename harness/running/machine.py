"""What a run was measured on: recorded in run.json so figures can be read later."""

from __future__ import annotations

import hashlib
import os
import platform
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
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def rust_info() -> dict | None:
    """The Rust extension's build (compiler, crate versions, profile), the OpenBLAS
    it links (``openblas_get_config``, the kernels chosen for this CPU, its threads)
    and the fused kernel's instruction sets; None where the extension is not built."""
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
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "blas": blas_info(),
        "rust": rust_info(),
        "environment": {k: os.environ[k] for k in BLAS_ENVIRONMENT if k in os.environ},
        "git_commit": git_commit(),
        "command_line": " ".join(argv),
    }
