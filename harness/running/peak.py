"""The machine's practical floating-point peak: what BLAS reaches on a large GEMM.

Backends' GFLOP/s are reported as a share of this figure. The matmul is
square, of order 1536: on a 2-core EPYC with OpenBLAS, order 1024 on two
threads reached only half the plateau that 1536 and 2048 both reach, and 1536
still repeats several times a second. The best repetition is taken, since on
a shared machine interference only ever slows a run down.
"""

from __future__ import annotations

import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

GEMM_ORDER = 1536
MIN_REPEATS = 3


def measure_gemm_peak(
    dtype: str, threads: int | None, seconds: float = 1.0, order: int = GEMM_ORDER
) -> float:
    """GFLOP/s of the best of several ``order`` x ``order`` matmuls in ``dtype``
    (2 order^3 operations each), run for about ``seconds`` after one warm-up,
    with BLAS limited to ``threads`` threads (None: all cores)."""
    rng = np.random.default_rng(0)
    a = rng.random((order, order)).astype(dtype)
    b = rng.random((order, order)).astype(dtype)
    out = np.empty_like(a)
    with threadpool_limits(threads or os.cpu_count(), user_api="blas"):
        np.matmul(a, b, out=out)  # the warm-up: thread start, page faults, caches
        best, repeats, deadline = float("inf"), 0, time.perf_counter() + seconds
        while repeats < MIN_REPEATS or time.perf_counter() < deadline:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
            repeats += 1
    return 2 * order**3 / best / 1e9


def calibrate(dtype: str, seconds: float = 1.0) -> dict:
    """The GEMM peak on one thread and on all cores, ``seconds`` for each."""
    return {
        "gemm_peak_gflops_1thread": measure_gemm_peak(dtype, 1, seconds),
        "gemm_peak_gflops_all": measure_gemm_peak(dtype, None, seconds),
        "threads_all": os.cpu_count(),
        "dtype": dtype,
    }
