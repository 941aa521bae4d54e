"""Tests for harness.data.dataset: the arrays a Dataset accepts."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.dataset import DataError, Dataset


def test_dataset_rejects_inconsistent_arrays() -> None:
    with pytest.raises(DataError, match=r"train images must be 2-D .* one label each"):
        Dataset(
            "x", np.zeros((3, 4)), np.zeros(2, np.int64), np.zeros((1, 4)), np.zeros(1, np.int64)
        )
