"""Tests for harness.data.sample: the bundled mnist-sample and its checksums."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_data import write

from harness.data import catalogue as data
from harness.data import sample
from harness.data.catalogue import load_dataset
from harness.data.dataset import DataError

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_mnist_sample_loads_real_digits() -> None:
    dataset = load_dataset("mnist-sample")
    assert dataset.name == "mnist-sample"
    assert dataset.train_images.shape == (8_000, 784)
    assert dataset.test_images.shape == (2_000, 784)
    assert dataset.train_labels.shape == (8_000,) and dataset.test_labels.shape == (2_000,)
    for array in (dataset.train_images, dataset.test_images):
        assert array.dtype == np.float64 and array.flags.c_contiguous
        assert 0.0 <= array.min() and array.max() <= 1.0
    assert set(np.unique(dataset.train_labels)) == set(range(10))
    assert set(np.unique(dataset.test_labels)) == set(range(10))
    # The canonical t10k set starts with a 7, a 2 and a 1, and ends with a 6.
    np.testing.assert_array_equal(dataset.train_labels[:3], [7, 2, 1])
    assert dataset.test_labels[-1] == 6
    assert 0.1 < dataset.train_images.mean() < 0.15  # real digits: mostly dark background


def test_mnist_sample_n_train() -> None:
    assert load_dataset("mnist-sample", n_train=100).n_train == 100
    with pytest.raises(
        DataError, match=r"n_train=8,001 exceeds the 8,000 training samples of mnist-sample"
    ):
        load_dataset("mnist-sample", n_train=8_001)


def test_damaged_sample_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "t10k-labels-idx1-ubyte.gz", b"not the sample")
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .*reinstall nndl-bench"
    ):
        sample.verify_sample(path, data._MNIST_T10K_LABELS)
