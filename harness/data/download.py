"""Verified download: a file fetched from mirrors, checked against its SHA-256
before it is kept, within a time budget; and the hashes of local files."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from harness.data.dataset import CHUNK, DataError

# Larger than any published archive (Fashion-MNIST's biggest is 26 MB), so a
# misbehaving server cannot fill the disk before the checksum rejects it.
_MAX_DOWNLOAD_BYTES = 128 << 20
_USER_AGENT = "nndl-bench"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_gunzipped(path: Path, limit: int) -> str | None:
    """Hex SHA-256 of a gzip file's content, or None if it is corrupt or longer than ``limit``."""
    digest = hashlib.sha256()
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(min(CHUNK, limit + 1 - total)):
                total += len(chunk)
                if total > limit:
                    return None
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


class Budget:
    """A time limit shared by several downloads, so their total stays bounded."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds remaining; raises OutOfTime once none are."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise OutOfTime(f"not finished within --download-timeout {self.seconds:g} s")
        return remaining


class OutOfTime(Exception):
    """The shared download budget ran out."""


def download_verified(urls: Sequence[str], dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``dest`` from the first of ``urls`` that serves bytes with the given SHA-256.

    Each attempt writes to a temporary file in ``dest``'s folder that is renamed
    into place only once its hash matches, so an interrupted, failed or corrupt
    download leaves nothing behind and readers never see a partial file.
    ``timeout`` is how long each mirror may take to connect or to send more data.
    """
    return download_within(urls, Path(dest), sha256, timeout, None)


def download_within(
    urls: Sequence[str], dest: Path, sha256: str, timeout: float, budget: Budget | None
) -> Path:
    """download_verified, optionally within a time budget shared with other downloads."""
    if not urls:
        raise DataError(f"{dest}: no download URL given")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{dest}: cannot create the folder {dest.parent} ({exc.strerror or exc})"
        ) from exc
    failures: list[str] = []
    for url in urls:
        reason = _download_once(url, dest, sha256.lower(), timeout, budget)
        if reason is None:
            return dest
        failures.append(f"{url}: {reason}")
    raise DataError(f"{dest}: download failed from every mirror: {'; '.join(failures)}")


def _download_once(
    url: str, dest: Path, sha256: str, timeout: float, budget: Budget | None
) -> str | None:
    """Try one URL; return None on success, or why it failed."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "unsupported URL scheme; use http:// or https://"
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.", suffix=".part", dir=dest.parent
        )
    except OSError as exc:
        return f"cannot write into {dest.parent} ({exc.strerror or exc})"
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            found = _fetch(url, out, timeout, budget)
            out.flush()
            os.fsync(out.fileno())
        if found != sha256:
            return f"SHA-256 {found} of the downloaded file does not match the expected {sha256}"
        temp.chmod(0o644)
        os.replace(temp, dest)
        return None
    except OutOfTime as exc:
        return str(exc)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"cannot connect ({exc.reason})"
    except TimeoutError:
        return f"no data for {timeout:g} s"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f"transfer failed ({exc.__class__.__name__}: {exc})"
    finally:
        temp.unlink(missing_ok=True)


def _fetch(url: str, out: BinaryIO, timeout: float, budget: Budget | None) -> str:
    """Stream a URL into ``out`` and return the hex SHA-256 of what was received.

    With a budget, the socket timeout never exceeds the time left and the
    budget is checked after every chunk.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    total = 0
    wait = min(timeout, budget.left()) if budget else timeout
    with urllib.request.urlopen(request, timeout=wait) as response:
        while chunk := response.read(CHUNK):
            total += len(chunk)
            if total > _MAX_DOWNLOAD_BYTES:
                raise ValueError(
                    f"larger than {_MAX_DOWNLOAD_BYTES:,} bytes, more than any published archive"
                )
            digest.update(chunk)
            out.write(chunk)
            if budget:
                budget.left()
    return digest.hexdigest()
