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


def median(seconds: Iterable[float]) -> float:
    """The median epoch time: the figure every report and comparison stands on, as
    one epoch hit by a neighbour's burst of work moves it least."""
    return float(np.median(np.asarray(list(seconds), dtype=float)))


def spread(seconds: Iterable[float]) -> tuple[float, float]:
    """The fastest and the slowest epoch."""
    values = np.asarray(list(seconds), dtype=float)
    return float(values.min()), float(values.max())


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
