"""IDX files, raw or gzip-compressed, parsed from their documented header (nothing
is unpickled), and an image file checked against its label file."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from harness.data.dataset import CHUNK, N_CLASSES, DataError

_GZIP_MAGIC = b"\x1f\x8b"


_IDX_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("unsigned byte", np.dtype(">u1")),
    0x09: ("signed byte", np.dtype(">i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
_IDX_TYPE_LIST = ", ".join(f"0x{code:02X} ({label})" for code, (label, _) in _IDX_TYPES.items())


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-endian array of its declared shape.

    The header is trusted only as far as the data agrees with it: a payload
    shorter or longer than the header promises is an error, and no more than
    the promised size plus one byte is ever decompressed, so a corrupt or
    hostile file cannot make the reader allocate unbounded memory.
    """
    path = Path(path)
    compressed = _looks_gzipped(path)
    try:
        with _open_stream(path, compressed) as stream:
            shape, dtype = _read_header(stream, path)
            payload = _read_payload(stream, path, shape, dtype)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({exc}); re-download the file"
        ) from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    # A bytearray-backed array is writable; only multi-byte types need a byte-swapping copy.
    try:
        values = np.frombuffer(payload, dtype=dtype).reshape(shape)
    except ValueError as exc:  # a zero dimension beside ones too large for any array
        raise DataError(f"{path}: the IDX header's shape {'x'.join(map(str, shape))} "
                        f"cannot be an array ({exc})") from None
    return values.astype(dtype.newbyteorder("="), copy=False)


def _looks_gzipped(path: Path) -> bool:
    """Decide raw vs gzip by the magic bytes, and reject a ``.gz`` name that lies."""
    try:
        with path.open("rb") as handle:
            head = handle.read(2)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not head:
        raise DataError(
            f"{path}: the file is empty (0 bytes); expected an IDX file, raw or gzip-compressed"
        )
    gzipped = head == _GZIP_MAGIC
    if path.name.endswith(".gz") and not gzipped:
        raise DataError(
            f"{path}: named .gz but is not gzip-compressed (starts with 0x{head.hex()}, "
            f"gzip starts with 0x1f8b); rename it without .gz if it is a raw IDX file, "
            f"or re-download it"
        )
    return gzipped


@contextmanager
def _open_stream(path: Path, compressed: bool) -> Iterator[BinaryIO]:
    """Open the file as a byte stream of IDX content, decompressing on the fly."""
    if compressed:
        with gzip.open(path, "rb") as stream:
            yield cast(BinaryIO, stream)
    else:
        with path.open("rb") as stream:
            yield stream


def _read_header(stream: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Parse and check the magic number and dimensions; return (shape, big-endian dtype)."""
    magic = _read_up_to(stream, 4)
    if not magic:
        raise DataError(f"{path}: contains no data after decompression; expected an IDX header")
    if len(magic) < 4:
        raise DataError(
            f"{path}: truncated: {len(magic)} bytes, shorter than the 4-byte IDX magic number"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{magic.hex()}: its first two bytes must be zero "
            f"(MNIST images start 0x00000803, labels 0x00000801)"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in _IDX_TYPES:
        raise DataError(
            f"{path}: unknown IDX data type code 0x{type_code:02X}; "
            f"expected one of {_IDX_TYPE_LIST}"
        )
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: the IDX header declares {ndim} dimensions; expected 1 to 4")
    raw_dims = _read_up_to(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{path}: truncated header: {ndim} dimension sizes need {4 * ndim} bytes after "
            f"the magic number, found {len(raw_dims)}"
        )
    return struct.unpack(f">{ndim}I", raw_dims), _IDX_TYPES[type_code][1]


def _read_payload(
    stream: BinaryIO, path: Path, shape: tuple[int, ...], dtype: np.dtype
) -> bytearray:
    """Read exactly the payload the header promises, then one byte more to detect trailing data."""
    expected = math.prod(shape) * dtype.itemsize
    described = f"shape {'x'.join(map(str, shape))} of {_type_label(dtype)}"
    payload = _read_up_to(stream, expected)
    if len(payload) < expected:
        raise DataError(
            f"{path}: truncated: the IDX header promises {expected:,} data bytes ({described}) "
            f"but only {len(payload):,} follow"
        )
    if stream.read(1):
        raise DataError(
            f"{path}: trailing bytes after the {expected:,} data bytes the IDX header promises "
            f"({described}); the header and the data disagree"
        )
    return payload


def _type_label(dtype: np.dtype) -> str:
    """Human name of an IDX element type, for messages."""
    return next(label for label, known in _IDX_TYPES.values() if known == dtype)


def _read_up_to(stream: BinaryIO, size: int) -> bytearray:
    """Read ``size`` bytes or until end of stream, in chunks so a lying header costs no memory."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files: uint8 images (n, rows, cols) and int64 labels."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(
            f"{images_path}: images must be 3-D (count, rows, columns); "
            f"the file has shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"{images_path}: pixels must be unsigned bytes (IDX type 0x08); "
            f"the file holds {images.dtype}"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path}: labels must be 1-D (count,); the file has shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{labels_path}: labels must be integers; the file holds {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels; the counts must be equal"
        )
    _check_label_range(labels, labels_path)
    return images, labels.astype(np.int64)


def _check_label_range(labels: np.ndarray, path: Path) -> None:
    """Reject labels outside 0..9, naming the first offender so the file can be inspected."""
    bad = np.flatnonzero((labels < 0) | (labels >= N_CLASSES))
    if bad.size:
        index = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[index])} at index {index} is outside 0..{N_CLASSES - 1} "
            f"({bad.size:,} such labels in total)"
        )


def to_unit_floats(images: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to C-contiguous float64 rows in [0, 1], the network's input format."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat /= 255.0
    return np.ascontiguousarray(flat)
