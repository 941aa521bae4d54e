"""The dataset catalogue: checksum-verified MNIST and Fashion-MNIST, where they are
looked for, and ``load_dataset``, the one entry point, with its fallbacks.

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
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.data.dataset import (
    IMAGE_PIXELS,
    SAMPLE_N_TEST,
    SAMPLE_N_TRAIN,
    SYNTHETIC_N_TRAIN,
    DataError,
    Dataset,
    DatasetUnavailable,
    FileSpec,
)
from harness.data.download import (
    Budget,
    download_verified,
    download_within,
    sha256_file,
    sha256_gunzipped,
)
from harness.data.idx import read_idx, read_pair, to_unit_floats
from harness.data.published import _MNIST_T10K_IMAGES, _MNIST_T10K_LABELS, _PUBLISHED, _Published
from harness.data.sample import load_sample
from harness.data.synthetic import synthetic

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "download_verified",
    "load_dataset",
    "read_idx",
]

DATASET_NAMES = ("auto", "mnist", "fashion-mnist", "mnist-sample", "synthetic")


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


def _find_local(file: FileSpec, dirs: Sequence[Path]) -> Path | None:
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


def _verify_local(path: Path, file: FileSpec, title: str) -> None:
    """Raise DataError unless the file holds the canonical content (see the module docstring)."""
    try:
        found = sha256_file(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if path.name.endswith(".gz"):
        if found in file.gz_sha256 or sha256_gunzipped(path, file.raw_size) == file.raw_sha256:
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
    """Fill the gaps in ``found`` from the mirrors, or raise DatasetUnavailable.

    ``timeout`` bounds the whole download, all files and mirrors together, so
    that ``auto`` falls back promptly on a slow or silent network.
    """
    missing = [file for file, path in zip(spec.files, found, strict=True) if path is None]
    names = ", ".join(f"{file.stem}.gz" for file in missing)
    where = ", ".join(str(folder) for folder in _search_dirs(spec, data_dir))
    if not download:
        raise DatasetUnavailable(
            f"{spec.title} files not found ({names}) in {where}, and downloading is off; "
            f"place them in one of those folders or allow downloading",
            f"{spec.title} not found in {where} and downloading is off",
        )
    targets = _download_dirs(spec, data_dir)
    dest = _first_writable(targets)
    if dest is None:
        raise DatasetUnavailable(
            f"{spec.title} files not found ({names}) in {where}, and none of "
            f"{', '.join(map(str, targets))} is writable for a download; "
            f"pass a writable data_dir or set NNDL_BENCH_DATA",
            f"{spec.title} not found in {where} and no writable folder to download into",
        )
    budget = Budget(timeout)
    paths = list(found)
    for index, file in enumerate(spec.files):
        if paths[index] is not None:
            continue
        target = dest / f"{file.stem}.gz"
        say(f"downloading {spec.title} {target.name} into {dest}")
        urls = [base + target.name for base in _mirrors(spec)]
        try:
            paths[index] = download_within(urls, target, file.gz_sha256[0], timeout, budget)
        except DataError as exc:
            raise DatasetUnavailable(
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
    train_images, train_labels = read_pair(paths[0], paths[1])
    test_images, test_labels = read_pair(paths[2], paths[3])
    if len(train_images) < spec.n_train:
        raise DataError(
            f"{paths[0]}: holds {len(train_images):,} images, fewer than the {spec.n_train:,} "
            f"training images the {spec.title} split needs"
        )
    return Dataset(
        name=spec.name,
        train_images=to_unit_floats(train_images[: spec.n_train]),
        train_labels=train_labels[: spec.n_train].copy(),
        test_images=to_unit_floats(test_images),
        test_labels=test_labels,
    )


_SAMPLE_FILES = (_MNIST_T10K_IMAGES, _MNIST_T10K_LABELS)


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
        return synthetic(n_train or SYNTHETIC_N_TRAIN, input_size, seed)
    if name == "mnist-sample":
        dataset = load_sample(_SAMPLE_FILES)
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
    except DatasetUnavailable as exc:
        say(
            f"{exc.brief}; using the bundled mnist-sample "
            f"({SAMPLE_N_TRAIN:,} train / {SAMPLE_N_TEST:,} test)"
        )
    return load_sample(_SAMPLE_FILES)


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
