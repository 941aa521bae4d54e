"""Datasets for the benchmark: IDX reading, checksum-verified MNIST, and fallbacks.

Every benchmark result is only comparable with another if both trained on the
same bytes, so each published file is checked against a hard-coded SHA-256
before use, and a file that does not match is an error rather than something
silently used or replaced.

Which hashes are accepted, and why:

* A ``.gz`` file must be the published archive (its own SHA-256), or else
  decompress to the canonical IDX content.  The second rule accepts copies
  that were re-compressed, such as Debian's ``dataset-fashion-mnist``, whose
  archives lack the original file name in the gzip header but hold the same
  bytes as the archives the Fashion-MNIST authors publish (their MD5s match
  once that header field is restored).
* An uncompressed file must have the SHA-256 of the canonical IDX content.

Where ``mnist`` files are looked for, in order: ``data_dir``, ``$NNDL_BENCH_DATA``,
then ``$XDG_CACHE_HOME/nndl-bench/mnist`` (``~/.cache/nndl-bench/mnist``), each
under the published ``.gz`` name or the uncompressed one.  ``fashion-mnist`` uses
``$NNDL_BENCH_DATA/fashion-mnist``, its own cache folder, and finally
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
Missing files are downloaded into the first writable of the non-system folders,
from the mirrors in ``NNDL_BENCH_MNIST_MIRRORS`` / ``NNDL_BENCH_FASHION_MNIST_MIRRORS``
(space-separated base URLs) or the built-in ones, always as the published
``.gz`` archive checked against its own hash.

The module never prints: messages meant for a person go to ``notice``.  It
never unpickles anything either: IDX is parsed from its documented header.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import math
import os
import struct
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "download_verified",
    "load_dataset",
    "read_idx",
]

DATASET_NAMES = ("auto", "mnist", "fashion-mnist", "mnist-sample", "synthetic")

SYNTHETIC_N_TRAIN = 50_000
SYNTHETIC_N_TEST = 10_000
SAMPLE_N_TRAIN = 8_000
SAMPLE_N_TEST = 2_000
N_CLASSES = 10
IMAGE_PIXELS = 784

_CHUNK = 1 << 20
# Larger than any published archive (Fashion-MNIST's biggest is 26 MB), so a
# misbehaving server cannot fill the disk before the checksum rejects it.
_MAX_DOWNLOAD_BYTES = 128 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_USER_AGENT = "nndl-bench"


class DataError(Exception):
    """An unusable data file or dataset request.

    ``str(e)`` is a one-line message naming the file (or the value) and the problem.
    """


class _DatasetUnavailable(DataError):
    """The dataset is absent locally and could not be downloaded, so ``auto`` may fall back.

    ``brief`` is a shorter account of the same problem for the fallback notice.
    """

    def __init__(self, message: str, brief: str) -> None:
        super().__init__(message)
        self.brief = brief


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays ready for a network: flattened pixels in [0, 1] and integer labels.

    ``eq=False`` because field-wise comparison of arrays has no single truth value.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def __post_init__(self) -> None:
        """Reject inconsistent arrays here, where the mistake is made, not deep inside training."""
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.ndim != 2 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(
                    f"dataset {self.name!r}: {split} images must be 2-D (samples, inputs) with "
                    f"one label each; got images {images.shape} and labels {labels.shape}"
                )
        if self.train_images.shape[1] != self.test_images.shape[1]:
            raise DataError(
                f"dataset {self.name!r}: train inputs have {self.train_images.shape[1]} values "
                f"but test inputs have {self.test_images.shape[1]}"
            )

    @property
    def input_size(self) -> int:
        """Number of input values per sample (784 for 28x28 images)."""
        return int(self.train_images.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.train_images.shape[0])


# --------------------------------------------------------------------------- IDX


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
    values = np.frombuffer(payload, dtype=dtype).reshape(shape)
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
        chunk = stream.read(min(_CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


# --------------------------------------------------------------------------- published datasets


@dataclass(frozen=True)
class _FileSpec:
    """One published IDX file and the hashes that identify its canonical content."""

    stem: str  # file name without .gz, e.g. "train-images-idx3-ubyte"
    gz_sha256: tuple[str, ...]  # accepted archives; the first is the one the mirrors serve
    raw_sha256: str  # the decompressed IDX bytes
    raw_size: int  # bytes of the decompressed IDX file; bounds decompression when hashing


@dataclass(frozen=True)
class _Published:
    """Where a published dataset lives, how to verify it, and how the book splits it."""

    name: str
    title: str
    train_images: _FileSpec
    train_labels: _FileSpec
    test_images: _FileSpec
    test_labels: _FileSpec
    n_train: int  # first images of the training file used for training; the rest is validation
    env_subdir: str  # folder under $NNDL_BENCH_DATA ("" = the variable's folder itself)
    mirrors_env: str
    default_mirrors: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[_FileSpec, ...]:
        """The four files in the order train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


_MNIST_T10K_IMAGES = _FileSpec(
    "t10k-images-idx3-ubyte",
    ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    7_840_016,
)
_MNIST_T10K_LABELS = _FileSpec(
    "t10k-labels-idx1-ubyte",
    ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    10_008,
)

_PUBLISHED: dict[str, _Published] = {
    "mnist": _Published(
        name="mnist",
        title="MNIST",
        train_images=_FileSpec(
            "train-images-idx3-ubyte",
            ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            47_040_016,
        ),
        train_labels=_FileSpec(
            "train-labels-idx1-ubyte",
            ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60_008,
        ),
        test_images=_MNIST_T10K_IMAGES,
        test_labels=_MNIST_T10K_LABELS,
        n_train=50_000,
        env_subdir="",
        mirrors_env="NNDL_BENCH_MNIST_MIRRORS",
        default_mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": _Published(
        name="fashion-mnist",
        title="Fashion-MNIST",
        # Each archive tuple: the authors' published file, then Debian's re-compressed copy.
        train_images=_FileSpec(
            "train-images-idx3-ubyte",
            (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            47_040_016,
        ),
        train_labels=_FileSpec(
            "train-labels-idx1-ubyte",
            (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            60_008,
        ),
        test_images=_FileSpec(
            "t10k-images-idx3-ubyte",
            (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            7_840_016,
        ),
        test_labels=_FileSpec(
            "t10k-labels-idx1-ubyte",
            (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            10_008,
        ),
        n_train=50_000,
        env_subdir="fashion-mnist",
        mirrors_env="NNDL_BENCH_FASHION_MNIST_MIRRORS",
        default_mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}


def _cache_dir(name: str) -> Path:
    """The per-user cache folder for a dataset, following the XDG convention."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "nndl-bench" / name


def _download_dirs(spec: _Published, data_dir: Path | None) -> list[Path]:
    """Folders a download may go to, most specific first: data_dir, $NNDL_BENCH_DATA, the cache."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    env_root = os.environ.get("NNDL_BENCH_DATA", "")
    if env_root:
        dirs.append(Path(env_root) / spec.env_subdir if spec.env_subdir else Path(env_root))
    dirs.append(_cache_dir(spec.name))
    return dirs


def _search_dirs(spec: _Published, data_dir: Path | None) -> list[Path]:
    """Folders searched for existing files: the download folders, then system-wide installs."""
    return _download_dirs(spec, data_dir) + list(spec.system_dirs)


def _find_local(file: _FileSpec, dirs: Sequence[Path]) -> Path | None:
    """The first existing copy of a file, preferring the .gz archive within each folder."""
    for folder in dirs:
        for candidate in (folder / f"{file.stem}.gz", folder / file.stem):
            if candidate.is_file():
                return candidate
    return None


def _mirrors(spec: _Published) -> list[str]:
    """Mirror base URLs, from the override variable when it is set, each ending in '/'."""
    override = os.environ.get(spec.mirrors_env, "").split()
    bases = override or list(spec.default_mirrors)
    return [base if base.endswith("/") else base + "/" for base in bases]


def _sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_gunzipped(path: Path, limit: int) -> str | None:
    """Hex SHA-256 of a gzip file's content, or None if it is corrupt or longer than ``limit``."""
    digest = hashlib.sha256()
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(min(_CHUNK, limit + 1 - total)):
                total += len(chunk)
                if total > limit:
                    return None
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def _verify_local(path: Path, file: _FileSpec, title: str) -> None:
    """Raise DataError unless the file holds the canonical content (see the module docstring)."""
    try:
        found = _sha256_file(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if path.name.endswith(".gz"):
        if found in file.gz_sha256 or _sha256_gunzipped(path, file.raw_size) == file.raw_sha256:
            return
        expected, what = file.gz_sha256[0], f"{file.stem}.gz"
    else:
        if found == file.raw_sha256:
            return
        expected, what = file.raw_sha256, file.stem
    raise DataError(
        f"{path}: SHA-256 {found} does not match the canonical {title} {what} ({expected}); "
        f"the file is corrupt or a different version: delete it to re-download"
    )


def _first_writable(dirs: Sequence[Path]) -> Path | None:
    """The first folder that exists or can be created and that we may write into."""
    for folder in dirs:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    return None


def _download_missing(
    spec: _Published,
    found: list[Path | None],
    data_dir: Path | None,
    download: bool,
    timeout: float,
    say: Callable[[str], None],
) -> list[Path]:
    """Fill the gaps in ``found`` from the mirrors, or raise _DatasetUnavailable.

    ``timeout`` bounds the whole download, all files and mirrors together, so
    that ``auto`` falls back promptly on a slow or silent network.
    """
    missing = [file for file, path in zip(spec.files, found, strict=True) if path is None]
    names = ", ".join(f"{file.stem}.gz" for file in missing)
    where = ", ".join(str(folder) for folder in _search_dirs(spec, data_dir))
    if not download:
        raise _DatasetUnavailable(
            f"{spec.title} files not found ({names}) in {where}, and downloading is off; "
            f"place them in one of those folders or allow downloading",
            f"{spec.title} not found in {where} and downloading is off",
        )
    targets = _download_dirs(spec, data_dir)
    dest = _first_writable(targets)
    if dest is None:
        raise _DatasetUnavailable(
            f"{spec.title} files not found ({names}) in {where}, and none of "
            f"{', '.join(map(str, targets))} is writable for a download; "
            f"pass a writable data_dir or set NNDL_BENCH_DATA",
            f"{spec.title} not found in {where} and no writable folder to download into",
        )
    budget = _Budget(timeout)
    paths = list(found)
    for index, file in enumerate(spec.files):
        if paths[index] is not None:
            continue
        target = dest / f"{file.stem}.gz"
        say(f"downloading {spec.title} {target.name} into {dest}")
        urls = [base + target.name for base in _mirrors(spec)]
        try:
            paths[index] = _download_verified(urls, target, file.gz_sha256[0], timeout, budget)
        except DataError as exc:
            raise _DatasetUnavailable(
                f"{spec.title} not found in {where}: {exc}",
                f"{spec.title} not found in {where} and not downloadable",
            ) from exc
    return [path for path in paths if path is not None]


def _load_published(
    spec: _Published,
    data_dir: Path | None,
    download: bool,
    timeout: float,
    say: Callable[[str], None],
) -> Dataset:
    """Find (or fetch), verify and read a published dataset, split the book's way.

    Local files are verified before anything is downloaded, so a corrupt file
    is reported even when the network is down.  The book trains on the first
    50,000 training images and keeps the last 10,000 for validation, which the
    benchmark does not use; t10k is the test set.
    """
    found = [_find_local(file, _search_dirs(spec, data_dir)) for file in spec.files]
    for path, file in zip(found, spec.files, strict=True):
        if path is not None:
            _verify_local(path, file, spec.title)
    paths = [path for path in found if path is not None]
    if len(paths) < len(spec.files):
        paths = _download_missing(spec, found, data_dir, download, timeout, say)
    train_images, train_labels = _read_pair(paths[0], paths[1])
    test_images, test_labels = _read_pair(paths[2], paths[3])
    if len(train_images) < spec.n_train:
        raise DataError(
            f"{paths[0]}: holds {len(train_images):,} images, fewer than the {spec.n_train:,} "
            f"training images the {spec.title} split needs"
        )
    return Dataset(
        name=spec.name,
        train_images=_to_unit_floats(train_images[: spec.n_train]),
        train_labels=train_labels[: spec.n_train].copy(),
        test_images=_to_unit_floats(test_images),
        test_labels=test_labels,
    )


# --------------------------------------------------------------------------- dataset-level checks


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _to_unit_floats(images: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to C-contiguous float64 rows in [0, 1], the network's input format."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat /= 255.0
    return np.ascontiguousarray(flat)


# --------------------------------------------------------------------------- bundled sample


_SAMPLE_FILES = (_MNIST_T10K_IMAGES, _MNIST_T10K_LABELS)


def _load_sample() -> Dataset:
    """The MNIST test set shipped in the package, split 8,000 train / 2,000 test for offline use."""
    root = resources.files(__package__ or "harness").joinpath("sample_data")
    with (
        resources.as_file(root.joinpath(f"{_SAMPLE_FILES[0].stem}.gz")) as images_path,
        resources.as_file(root.joinpath(f"{_SAMPLE_FILES[1].stem}.gz")) as labels_path,
    ):
        for path, file in ((images_path, _SAMPLE_FILES[0]), (labels_path, _SAMPLE_FILES[1])):
            if not path.is_file():
                raise DataError(
                    f"{path}: the bundled MNIST sample is missing; reinstall nndl-bench"
                )
            _verify_sample(path, file)
        images, labels = _read_pair(images_path, labels_path)
    return Dataset(
        name="mnist-sample",
        train_images=_to_unit_floats(images[:SAMPLE_N_TRAIN]),
        train_labels=labels[:SAMPLE_N_TRAIN].copy(),
        test_images=_to_unit_floats(images[SAMPLE_N_TRAIN:]),
        test_labels=labels[SAMPLE_N_TRAIN:].copy(),
    )


def _verify_sample(path: Path, file: _FileSpec) -> None:
    """The bundled files are the published archives byte for byte; else the install is broken."""
    found = _sha256_file(path)
    if found not in file.gz_sha256:
        raise DataError(
            f"{path}: SHA-256 {found} does not match the published {file.stem}.gz "
            f"({file.gz_sha256[0]}); the bundled sample is damaged: reinstall nndl-bench"
        )


# --------------------------------------------------------------------------- synthetic


def _synthetic(n_train: int, input_size: int, seed: int) -> Dataset:
    """Digit-like random data of any size, for runs that must not depend on real images.

    Each class has a fixed random "stroke" pattern over about a fifth of the
    inputs, as much ink as an MNIST digit carries; a sample keeps each stroke
    pixel with probability 0.6, gains stray pixels with probability 0.08, and
    inked pixels take intensities in [0.5, 1). Sparse inputs matter: dense
    uniform ones would saturate every sigmoid of the book's N(0, 1)
    initialisation and nothing would be learnt. Patterns, train and test use
    separate child streams of ``default_rng(seed)``, and every per-sample
    quantity its own stream, so the training set for N samples is the first N
    rows of the one for more, and the test set never depends on N.
    """
    # SeedSequence(seed) is what default_rng(seed) builds on; spawning from it
    # (rather than Generator.spawn) keeps numpy 1.24 supported.
    pattern_seq, train_seq, test_seq = np.random.SeedSequence(seed).spawn(3)
    strokes = np.random.default_rng(pattern_seq).random((N_CLASSES, input_size)) < 0.2

    def draw(seq: np.random.SeedSequence, count: int) -> tuple[np.ndarray, np.ndarray]:
        label_rng, ink_rng, value_rng = (np.random.default_rng(s) for s in seq.spawn(3))
        labels = label_rng.integers(0, N_CLASSES, count).astype(np.int64)
        draw_ink = ink_rng.random((count, input_size))
        inked = np.where(strokes[labels], draw_ink < 0.6, draw_ink < 0.08)
        inputs = np.where(inked, 0.5 + 0.5 * value_rng.random((count, input_size)), 0.0)
        return inputs, labels

    train_images, train_labels = draw(train_seq, n_train)
    test_images, test_labels = draw(test_seq, SYNTHETIC_N_TEST)
    return Dataset("synthetic", train_images, train_labels, test_images, test_labels)


# --------------------------------------------------------------------------- public entry points


def load_dataset(
    name: str = "auto",
    *,
    data_dir: Path | None = None,
    n_train: int | None = None,
    input_size: int = IMAGE_PIXELS,
    seed: int = 0,
    download: bool = True,
    download_timeout: float = 10.0,
    notice: Callable[[str], None] | None = None,
) -> Dataset:
    """Load a dataset by name; ``Dataset.name`` says which one was actually used.

    ``auto`` prefers the full MNIST (local or downloaded) and falls back to the
    bundled sample with a notice, so a benchmark runs offline.  A local file
    that fails its checksum is an error even in ``auto``: results on corrupt
    data would be silently wrong.  ``download_timeout`` bounds the whole
    download of missing files, all mirrors included.  ``input_size`` applies only to
    ``synthetic``; ``seed`` only drives synthetic data.
    """
    say = notice or _ignore
    _check_request(name, n_train, input_size)
    if name == "synthetic":
        return _synthetic(n_train or SYNTHETIC_N_TRAIN, input_size, seed)
    if name == "mnist-sample":
        dataset = _load_sample()
    elif name == "auto":
        dataset = _load_auto(data_dir, download, download_timeout, say)
    else:
        dataset = _load_published(_PUBLISHED[name], data_dir, download, download_timeout, say)
    return _keep_first(dataset, n_train)


def _ignore(message: str) -> None:
    """Default notice sink: the library never prints on its own."""


def _check_request(name: str, n_train: int | None, input_size: int) -> None:
    """Reject impossible arguments before touching any file."""
    if name not in DATASET_NAMES:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    if n_train is not None and n_train < 1:
        raise DataError(f"n_train={n_train} is invalid: keep at least 1 training sample")
    if input_size < 1:
        raise DataError(f"input_size={input_size} is invalid: inputs need at least 1 value")
    if name != "synthetic" and input_size != IMAGE_PIXELS:
        raise DataError(
            f"input_size={input_size} needs the synthetic dataset; {name} images have "
            f"{IMAGE_PIXELS} pixels (28x28)"
        )


def _load_auto(
    data_dir: Path | None, download: bool, timeout: float, say: Callable[[str], None]
) -> Dataset:
    """Full MNIST when it can be had, otherwise the bundled sample, saying so."""
    try:
        return _load_published(_PUBLISHED["mnist"], data_dir, download, timeout, say)
    except _DatasetUnavailable as exc:
        say(
            f"{exc.brief}; using the bundled mnist-sample "
            f"({SAMPLE_N_TRAIN:,} train / {SAMPLE_N_TEST:,} test)"
        )
    return _load_sample()


def _keep_first(dataset: Dataset, n_train: int | None) -> Dataset:
    """Keep only the first ``n_train`` training samples, refusing to invent missing ones."""
    if n_train is None or n_train == dataset.n_train:
        return dataset
    if n_train > dataset.n_train:
        raise DataError(
            f"n_train={n_train:,} exceeds the {dataset.n_train:,} training samples of "
            f"{dataset.name}; pass at most {dataset.n_train:,}"
        )
    return dataclasses.replace(
        dataset,
        train_images=dataset.train_images[:n_train].copy(),
        train_labels=dataset.train_labels[:n_train].copy(),
    )


class _Budget:
    """A time limit shared by several downloads, so their total stays bounded."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds remaining; raises _OutOfTime once none are."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _OutOfTime(f"not finished within the {self.seconds:g} s download_timeout")
        return remaining


class _OutOfTime(Exception):
    """The shared download budget ran out."""


def download_verified(urls: Sequence[str], dest: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Download ``dest`` from the first of ``urls`` that serves bytes with the given SHA-256.

    Each attempt writes to a temporary file in ``dest``'s folder that is renamed
    into place only once its hash matches, so an interrupted, failed or corrupt
    download leaves nothing behind and readers never see a partial file.
    ``timeout`` is how long each mirror may take to connect or to send more data.
    """
    return _download_verified(urls, Path(dest), sha256, timeout, None)


def _download_verified(
    urls: Sequence[str], dest: Path, sha256: str, timeout: float, budget: _Budget | None
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
    url: str, dest: Path, sha256: str, timeout: float, budget: _Budget | None
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
    except _OutOfTime as exc:
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


def _fetch(url: str, out: BinaryIO, timeout: float, budget: _Budget | None) -> str:
    """Stream a URL into ``out`` and return the hex SHA-256 of what was received.

    With a budget, the socket timeout never exceeds the time left and the
    budget is checked after every chunk.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    total = 0
    wait = min(timeout, budget.left()) if budget else timeout
    with urllib.request.urlopen(request, timeout=wait) as response:
        while chunk := response.read(_CHUNK):
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
