"""IDX files, checksums and a tiny stand-in for MNIST, built in memory for the
tests of harness.data; nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from harness.data import catalogue as data

STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_header(type_code: int, dims: tuple[int, ...]) -> bytes:
    """The IDX magic number and dimension sizes."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """A complete IDX file holding ``array`` with the element type ``type_code``."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return idx_header(type_code, array.shape) + array.astype(big_endian[type_code]).tobytes()


def write(path: Path, content: bytes, *, compress: bool = False) -> Path:
    """Write bytes (gzip-compressed if asked, with a fixed mtime) and return the path."""
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def images(count: int) -> np.ndarray:
    """Distinct uint8 28x28 images."""
    return (np.arange(count * 784).reshape(count, 28, 28) % 251).astype(np.uint8)


def labels(count: int) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.uint8)


def fake_mnist(
    monkeypatch: pytest.MonkeyPatch,
    *,
    n_file_train: int = 6,
    n_test: int = 4,
    n_train: int = 4,
    overrides: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Tiny stand-ins for the four MNIST files, registered as canonical in the hash table.

    Returns the gzip bytes by file name (``<stem>.gz``); ``overrides`` replaces
    the raw IDX content of a file by stem, e.g. to plant a bad label.
    """
    raw = {
        STEMS[0]: idx_bytes(images(n_file_train)),
        STEMS[1]: idx_bytes(labels(n_file_train)),
        STEMS[2]: idx_bytes(images(n_test)[::-1].copy()),
        STEMS[3]: idx_bytes(labels(n_test)[::-1].copy()),
    }
    raw.update(overrides or {})
    archives = {stem: gzip.compress(content, mtime=0) for stem, content in raw.items()}
    specs = {
        stem: data.FileSpec(stem, (sha256(archives[stem]),), sha256(raw[stem]), len(raw[stem]))
        for stem in STEMS
    }
    patched = dataclasses.replace(
        data._PUBLISHED["mnist"],
        train_images=specs[STEMS[0]],
        train_labels=specs[STEMS[1]],
        test_images=specs[STEMS[2]],
        test_labels=specs[STEMS[3]],
        n_train=n_train,
    )
    monkeypatch.setitem(data._PUBLISHED, "mnist", patched)
    return {f"{stem}.gz": archive for stem, archive in archives.items()}


def place(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
