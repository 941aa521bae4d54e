"""harness/peak.py: the GEMM peak that GFLOP/s figures are compared with."""

from __future__ import annotations

import importlib.util
import math
import os

import pytest

from harness.running.peak import (
    MIN_REPEATS,
    calibrate,
    gemm_repeats,
    measure_gemm_peak,
    measure_xla_peak,
)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_thread_peak_is_a_plausible_rate(dtype):
    gflops = measure_gemm_peak(dtype, threads=1, seconds=0.05, order=512)
    assert math.isfinite(gflops)
    # Even an old laptop core does a few GFLOP/s in BLAS; less means a broken timing.
    assert gflops > 0.5


def test_calibrate_reports_both_peaks_and_the_core_count():
    result = calibrate("float64", seconds=0.05, libraries=("blas",))
    peaks = {"gemm_peak_gflops_1thread", "gemm_peak_gflops_all"}
    assert set(result) == peaks | {"threads_all", "dtype", "by_library", "library_1thread",
                                   "library_all", "gemm_median_gflops_all"}
    assert result["library_all"] == result["library_1thread"] == "blas"
    assert result["dtype"] == "float64"
    assert result["threads_all"] == os.cpu_count()
    for key in peaks:
        assert math.isfinite(result[key]) and result[key] > 0


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_the_peak_is_the_faster_of_blas_and_xla_and_both_are_kept():
    result = calibrate("float32", seconds=0.05, libraries=("blas", "xla"))
    blas, xla = result["by_library"]["blas"], result["by_library"]["xla"]
    assert math.isfinite(xla["all"]) and xla["all"] > 0.5
    assert result["gemm_peak_gflops_all"] == max(blas["all"], xla["all"])
    assert result["library_all"] == ("xla" if xla["all"] > blas["all"] else "blas")
    # XLA is measured on all cores only: the one-thread peak stays BLAS's
    assert result["gemm_peak_gflops_1thread"] == blas["1thread"]


def test_without_jax_the_peak_is_blas_alone(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real(name, *a))
    assert measure_xla_peak("float64", seconds=0.01, order=64) is None
    result = calibrate("float64", seconds=0.02)
    assert set(result["by_library"]) == {"blas"} and result["library_all"] == "blas"


def test_the_median_repeat_is_kept_beside_the_best():
    result = calibrate("float64", seconds=0.05, libraries=("blas",))
    median, best = result["gemm_median_gflops_all"], result["gemm_peak_gflops_all"]
    # the peak is the best repeat, so the median repeat can only be slower
    assert math.isfinite(median) and 0 < median <= best


def test_every_repeat_is_timed_at_least_the_minimum_number_of_times():
    repeats = gemm_repeats("float32", threads=1, seconds=0.0, order=128)
    assert len(repeats) == MIN_REPEATS and all(s > 0 for s in repeats)


def test_a_gemm_median_far_below_its_best_makes_the_run_unstable():
    from harness.running.peak import instability

    assert instability({"gemm_peak_gflops_all": 186.0, "gemm_median_gflops_all": 167.0}) is None
    faltering = instability({"gemm_peak_gflops_all": 186.0, "gemm_median_gflops_all": 102.0})
    assert faltering is not None and "55% of its best" in faltering
    assert instability(None) is None and instability({"gemm_peak_gflops_all": 1.0}) is None


def test_blas_median_is_held_against_blas_best_not_a_faster_librarys_peak():
    from harness.running.peak import instability

    # XLA set the all-core peak; BLAS's median is 96% of BLAS's own best: steady cores.
    peak = {"gemm_peak_gflops_all": 253.5, "library_all": "xla", "gemm_median_gflops_all": 200.2,
            "by_library": {"blas": {"all": 209.2}, "xla": {"all": 253.5}}}
    assert instability(peak) is None
    peak["gemm_median_gflops_all"] = 120.0  # 57% of BLAS's best
    assert "57% of its best 209.2" in instability(peak)
