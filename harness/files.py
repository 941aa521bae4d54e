"""Writing a file so that no reader ever sees part of it: to a temporary file in
the same folder, flushed, then renamed over the old one. ``harness.storage``,
which owns every file format, writes through these (and offers them as its
own); they know no format."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from harness.config import UsageError


class StorageError(UsageError):
    """A file of a run that cannot be written (a read-only folder, a full disk); the
    message names it. The file's last complete version, if any, is left as it was."""


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file in the same folder, flushed to disk, then rename
    over ``path``: a reader, a crash or a full disk leaves either the old file or
    the new one, never a part of either."""
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise StorageError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from other users
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        raise StorageError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, frame.to_csv(index=False))


def write_json(data: dict, path: Path) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_figure(fig, path: Path, **savefig) -> None:
    """A matplotlib figure, in the format its suffix names, written atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".").lower(), **savefig)
    write_atomic(path, buffer.getvalue())
