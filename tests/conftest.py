"""Fixtures shared by the test files: the fake backends as plug-ins, and a small
random problem for the chapter-1 network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests run against the checkout, installed or not.
sys.path.insert(0, str(ROOT))

from fake_backends import PLUGINS  # noqa: E402

from backends.base import Params, init_params  # noqa: E402


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backends of tests/fake_backends.py, registered for this process and the
    worker processes it starts."""
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", PLUGINS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))


@pytest.fixture(scope="module")
def small_problem(request: pytest.FixtureRequest) -> tuple[Params, np.ndarray, np.ndarray,
                                                          np.ndarray]:
    """Parameters, random inputs in [0, 1), labels and a sample order: the
    chapter-1 network [784, 30, 10] over 1,000 samples, unless the test module
    sets ``SMALL_PROBLEM`` (sizes, samples, seed of the data, seed of the
    parameters) to a problem of its own."""
    sizes, samples, data_seed, params_seed = getattr(
        request.module, "SMALL_PROBLEM", ((784, 30, 10), 1000, 0, 0))
    rng = np.random.default_rng(data_seed)
    X = rng.random((samples, sizes[0]))
    y = rng.integers(0, sizes[-1], samples)
    return init_params(list(sizes), seed=params_seed), X, y, rng.permutation(samples)
