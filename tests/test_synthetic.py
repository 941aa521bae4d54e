"""Tests for harness.data.synthetic: the deterministic, learnable synthetic dataset."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.catalogue import load_dataset

pytestmark = pytest.mark.usefixtures("isolated_env")


def test_synthetic_is_deterministic() -> None:
    first = load_dataset("synthetic", n_train=300, input_size=12, seed=7)
    second = load_dataset("synthetic", n_train=300, input_size=12, seed=7)
    other = load_dataset("synthetic", n_train=300, input_size=12, seed=8)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert not np.array_equal(first.train_images, other.train_images)


def test_synthetic_honours_sizes() -> None:
    dataset = load_dataset("synthetic", n_train=250, input_size=30)
    assert dataset.name == "synthetic"
    assert (dataset.n_train, dataset.input_size) == (250, 30)
    assert dataset.train_images.shape == (250, 30) and dataset.test_images.shape == (10_000, 30)
    assert dataset.train_images.dtype == np.float64 and dataset.train_images.flags.c_contiguous
    assert dataset.train_labels.dtype == np.int64
    assert 0.0 <= dataset.train_images.min() and dataset.train_images.max() < 1.0
    assert dataset.test_labels.min() >= 0 and dataset.test_labels.max() <= 9
    assert len(np.unique(dataset.test_labels)) >= 5  # a usable spread of classes


def test_synthetic_default_size() -> None:
    dataset = load_dataset("synthetic", input_size=2)
    assert dataset.n_train == 50_000


def test_synthetic_prefix_and_fixed_test_set() -> None:
    small = load_dataset("synthetic", n_train=50, input_size=8, seed=3)
    large = load_dataset("synthetic", n_train=500, input_size=8, seed=3)
    np.testing.assert_array_equal(small.train_images, large.train_images[:50])
    np.testing.assert_array_equal(small.train_labels, large.train_labels[:50])
    np.testing.assert_array_equal(small.test_images, large.test_images)


def test_synthetic_labels_are_learnable() -> None:
    """Each class has its own stroke pattern, so least squares on one-hot targets
    recovers most labels."""
    dataset = load_dataset("synthetic", n_train=3_000, input_size=100, seed=1)
    design = np.hstack([dataset.train_images, np.ones((dataset.n_train, 1))])
    weights, *_ = np.linalg.lstsq(design, np.eye(10)[dataset.train_labels], rcond=None)
    test_design = np.hstack([dataset.test_images, np.ones((len(dataset.test_images), 1))])
    accuracy = np.mean(np.argmax(test_design @ weights, axis=1) == dataset.test_labels)
    assert accuracy > 0.5
    ink = np.mean(dataset.train_images > 0)
    assert 0.1 < ink < 0.35  # about as much ink as an MNIST digit
