"""The statistics of epoch seconds, defined once: the median and the spread that
the summary, the history and the comparison show, and bootstrap confidence
intervals of ratios of medians.

A handful of epochs per backend, timed on a shared machine, is too few and too
skewed (an epoch can be hit by a neighbour's burst of work) for a t-test. The
percentile bootstrap makes no assumption on the shape of that noise: resample
each side's epochs with replacement, take the medians, and read the spread of
the ratio over many resamples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.records import OK

RESAMPLES = 2000
CONFIDENCE = 0.95
# When a backend's epochs "may be unstable" (pyperf's words), said in the table,
# run.json and the report. pyperf warns when the standard deviation passes 10% of
# the mean; the robust CV (1.4826 x the median absolute deviation, over the
# median) reads as the standard deviation on normal noise, but one epoch hit by a
# neighbour does not move it. A slowest epoch twice the fastest is said apart: of
# the gate's baseline runs on this machine (5 epochs each) the median ratio was
# 1.15 and 1 in 10 passed 1.72, so 2 is a run the machine's load shaped.
UNSTABLE_ROBUST_CV = 0.10
UNSTABLE_MAX_OVER_MIN = 2.0


def median(seconds: Iterable[float]) -> float:
    """The median epoch time: the figure every report and comparison stands on, as
    one epoch hit by a neighbour's burst of work moves it least."""
    return float(np.median(np.asarray(list(seconds), dtype=float)))


def spread(seconds: Iterable[float]) -> tuple[float, float]:
    """The fastest and the slowest epoch."""
    values = np.asarray(list(seconds), dtype=float)
    return float(values.min()), float(values.max())


def robust_cv(seconds: Iterable[float]) -> float:
    """1.4826 x the median absolute deviation over the median: the coefficient of
    variation of normal noise, which one outlier does not move."""
    values = np.asarray(list(seconds), dtype=float)
    centre = np.median(values)
    return float(1.4826 * np.median(np.abs(values - centre)) / centre)


def instability(seconds: Iterable[float]) -> str | None:
    """Why these epochs may be unstable, or None: a robust CV above
    UNSTABLE_ROBUST_CV (from 3 epochs) or a slowest epoch more than
    UNSTABLE_MAX_OVER_MIN times the fastest."""
    values = np.asarray(list(seconds), dtype=float)
    reasons = []
    if len(values) >= 3 and (cv := robust_cv(values)) > UNSTABLE_ROBUST_CV:
        reasons.append(f"robust CV {cv:.0%} > {UNSTABLE_ROBUST_CV:.0%}")
    if len(values) >= 2 and (ratio := values.max() / values.min()) > UNSTABLE_MAX_OVER_MIN:
        reasons.append(f"slowest epoch {ratio:.2f}x the fastest > {UNSTABLE_MAX_OVER_MIN:g}x")
    return "; ".join(reasons) or None


def standing_epochs(epochs: pd.DataFrame) -> pd.DataFrame:
    """The rows of an epochs frame that stand as measurements: epochs that finished
    normally (status ok, or no status column in an older file) with a positive time."""
    if "status" in epochs.columns:
        epochs = epochs[epochs["status"].fillna(OK) == OK]
    epochs = epochs.assign(seconds=pd.to_numeric(epochs["seconds"], errors="coerce"))
    return epochs[epochs["seconds"] > 0]


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio of medians and its confidence interval."""

    ratio: float
    low: float
    high: float


def resampled_medians(samples: np.ndarray, rng: np.random.Generator,
                      resamples: int = RESAMPLES) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of ``samples``, one per row."""
    samples = np.asarray(samples, dtype=float)
    picks = rng.integers(0, len(samples), size=(resamples, len(samples)))
    return np.median(samples[picks], axis=1)


def ratio_of_medians(numerators: list[np.ndarray], denominators: list[np.ndarray],
                     rng: np.random.Generator, resamples: int = RESAMPLES,
                     confidence: float = CONFIDENCE) -> RatioEstimate:
    """prod(median(numerators)) / prod(median(denominators)), with its interval.

    One numerator over one denominator is the plain ratio current/baseline; two
    of each is the ratio of ratios (current/current reference) / (baseline/
    baseline reference). Every sample set is resampled independently: epochs
    of different backends, or of different runs, are not paired.
    """
    point = _product(median(s) for s in numerators) / _product(
        median(s) for s in denominators)
    boot = _product(resampled_medians(s, rng, resamples) for s in numerators) / _product(
        resampled_medians(s, rng, resamples) for s in denominators)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return RatioEstimate(float(point), float(low), float(high))


def _product(values):
    out = 1.0
    for v in values:
        out = out * v
    return out
