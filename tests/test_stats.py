"""harness/stats.py: the statistics every report reads, here when epochs may be unstable."""

from __future__ import annotations

import pytest

from harness import stats


def test_a_robust_cv_reads_normal_noise_and_ignores_one_outlier():
    assert stats.robust_cv([1.0, 1.0, 1.0]) == 0
    steady = [0.100, 0.102, 0.098, 0.101, 0.099]
    assert stats.robust_cv(steady) == pytest.approx(1.4826 * 0.001 / 0.100)
    assert stats.robust_cv([*steady, 0.5]) < 0.03  # one epoch hit by a neighbour


def test_epochs_may_be_unstable_when_widely_spread():
    assert stats.instability([0.100, 0.102, 0.098, 0.101, 0.150]) is None
    spread = stats.instability([0.10, 0.12, 0.14, 0.09, 0.13])
    assert spread is not None and "robust CV" in spread and "fastest" not in spread
    burst = stats.instability([0.10, 0.10, 0.25])
    assert burst is not None and "2.50x the fastest" in burst
    assert stats.instability([0.1]) is None  # one epoch has no spread
