"""What every part of the data layer shares: the Dataset handed to a run, the
error a user can act on, the sizes of the datasets, and the description of a
published file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYNTHETIC_N_TRAIN = 50_000
SYNTHETIC_N_TEST = 10_000
SAMPLE_N_TRAIN = 8_000
SAMPLE_N_TEST = 2_000
N_CLASSES = 10
IMAGE_PIXELS = 784

CHUNK = 1 << 20


class DataError(Exception):
    """An unusable data file or dataset request.

    ``str(e)`` is a one-line message naming the file (or the value) and the problem.
    """


class DatasetUnavailable(DataError):
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


@dataclass(frozen=True)
class FileSpec:
    """One published IDX file and the hashes that identify its canonical content."""

    stem: str  # file name without .gz, e.g. "train-images-idx3-ubyte"
    gz_sha256: tuple[str, ...]  # accepted archives; the first is the one the mirrors serve
    raw_sha256: str  # the decompressed IDX bytes
    raw_size: int  # bytes of the decompressed IDX file; bounds decompression when hashing
