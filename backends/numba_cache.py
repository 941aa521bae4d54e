"""Numba's on-disk cache, keyed by every source the kernels are compiled from.

Numba checks a cached function only against the timestamp of the file that
defines it. numba-parallel's epoch inlines numba's kernels (numba_fused.py), so
an edit of numba_fused.py alone would leave it running the old ones. Pointing
Numba's cache at a folder named after a hash of all the kernel sources makes
any edit to any of them a fresh cache, whatever the timestamps say.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Every file a cached kernel's code comes from; a new kernel module goes here.
KERNEL_SOURCES = tuple(_HERE / name for name in
                       ("numba_fused.py", "numba_parallel.py", "numba_tiles.py",
                        "numba_tiles_kernels.py", "numba_vectors.py", "numba_sigmoid.py",
                        "numba_cache.py"))


def sources_key(sources: Iterable[Path]) -> str:
    """A short hash of the sources' names and contents."""
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in sources):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def use_cache_keyed_by(sources: Iterable[Path] = KERNEL_SOURCES) -> Path:
    """Make Numba cache the functions decorated from now on under a folder keyed by
    ``sources``, below $NUMBA_CACHE_DIR if set, else beside the sources; the folder."""
    from numba.core import config

    base = os.environ.get("NUMBA_CACHE_DIR") or _HERE / "__pycache__" / "numba"
    folder = Path(base) / sources_key(sources)
    config.CACHE_DIR = str(folder)  # read when a cache=True function is decorated
    return folder
