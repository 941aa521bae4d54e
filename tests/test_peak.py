"""harness/peak.py: the GEMM peak that GFLOP/s figures are compared with."""

from __future__ import annotations

import math
import os

import pytest

from harness.running.peak import calibrate, measure_gemm_peak


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_thread_peak_is_a_plausible_rate(dtype):
    gflops = measure_gemm_peak(dtype, threads=1, seconds=0.05, order=512)
    assert math.isfinite(gflops)
    # Even an old laptop core does a few GFLOP/s in BLAS; less means a broken timing.
    assert gflops > 0.5


def test_calibrate_reports_both_peaks_and_the_core_count():
    result = calibrate("float64", seconds=0.05)
    peaks = {"gemm_peak_gflops_1thread", "gemm_peak_gflops_all"}
    assert set(result) == peaks | {"threads_all", "dtype"}
    assert result["dtype"] == "float64"
    assert result["threads_all"] == os.cpu_count()
    for key in peaks:
        assert math.isfinite(result[key]) and result[key] > 0
