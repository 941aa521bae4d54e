"""backends/numba_cache.py: a kernel compiled from two files is recompiled when
either changes, though Numba's own cache checks only the defining file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numba")

from backends import numba_cache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# caller.py's kernel inlines helper.py's: the shape of numba-parallel over numba's kernels.
CALLER = """
import os, sys
from pathlib import Path
from numba import njit
if os.environ.get("KEYED") == "1":
    from backends.numba_cache import use_cache_keyed_by
    here = Path(__file__).parent
    use_cache_keyed_by([here / "helper.py", here / "caller.py"])
from helper import value

@njit(cache=True)
def kernel():
    return value()

print(kernel())
"""


def helper(value: int) -> str:
    return f"from numba import njit\n\n@njit(cache=True)\ndef value():\n    return {value}\n"


def run_caller(folder: Path, keyed: bool) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)]),
           "NUMBA_CACHE_DIR": str(folder / "cache"), "KEYED": "1" if keyed else "0"}
    out = subprocess.run([sys.executable, str(folder / "caller.py")], env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip())


def two_file_kernel(folder: Path) -> Path:
    folder.mkdir()
    (folder / "caller.py").write_text(textwrap.dedent(CALLER))
    (folder / "helper.py").write_text(helper(1))
    return folder


@pytest.mark.parametrize("keyed, after_edit", [(False, 1), (True, 2)])
def test_an_edit_of_the_inlined_file_alone_recompiles_only_with_the_keyed_cache(
        tmp_path, keyed, after_edit):
    folder = two_file_kernel(tmp_path / "kernels")
    assert run_caller(folder, keyed) == 1
    (folder / "helper.py").write_text(helper(2))  # caller.py untouched
    # Unkeyed, Numba's cache serves the stale kernel: the trap this module removes.
    assert run_caller(folder, keyed) == after_edit


def test_the_key_follows_every_source_and_nothing_else(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 1\n")
    before = numba_cache.sources_key([a, b])
    assert numba_cache.sources_key([b, a]) == before
    os.utime(a, (0, 0))  # a timestamp alone changes nothing
    assert numba_cache.sources_key([a, b]) == before
    b.write_text("y = 2\n")
    assert numba_cache.sources_key([a, b]) != before


def test_the_numba_backends_cache_under_the_key_of_their_sources(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    folder = numba_cache.use_cache_keyed_by()
    assert folder == tmp_path / numba_cache.sources_key(numba_cache.KERNEL_SOURCES)
    assert config.CACHE_DIR == str(folder)
    names = {p.name for p in numba_cache.KERNEL_SOURCES}
    assert {"numba_fused.py", "numba_parallel.py"} <= names


def test_every_numba_module_of_the_backends_keys_the_cache():
    """A kernel module missing from KERNEL_SOURCES would leave its callers
    running the kernels cached before an edit of it."""
    modules = {p.name for p in (ROOT / "backends").glob("numba_*.py")}
    assert modules == {p.name for p in numba_cache.KERNEL_SOURCES}
