"""numpy-gemm's BLAS threads: one unless the run asks for more (see the module's docstring)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from backends.base import init_params
from backends.numpy_gemm import NumpyGemm


def _blas_threads() -> int:
    """NumPy's own BLAS: other tests load more (Numba compiles against SciPy's
    OpenBLAS), and threadpool_info() lists them in no fixed order."""
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    numpy_pools = [p for p in pools if "numpy" in p["filepath"]] or pools
    return numpy_pools[0]["num_threads"]


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_blas_threads_while_training(threads, expected, monkeypatch):
    seen = []
    update = NumpyGemm._update_mini_batch

    def spy(self, *args):
        seen.append(_blas_threads())
        return update(self, *args)

    monkeypatch.setattr(NumpyGemm, "_update_mini_batch", spy)
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 784)), rng.integers(0, 10, 40)
    trainer = NumpyGemm(init_params([784, 30, 10], 0), threads=threads)
    before = _blas_threads()
    trainer.train_epoch(X, y, np.arange(40), 20, 3.0)
    assert set(seen) == {expected} and trainer.threads == expected
    assert _blas_threads() == before  # the process's setting is left as it was
