"""The statistics of epoch seconds, defined once: the median and the spread that
the summary, the history and the comparison show, and bootstrap confidence
intervals of ratios of medians, and the winner map's figures (the fastest backend
of a cell and its lead).

A handful of epochs per backend, timed on a shared machine, is too few and too
skewed (an epoch can be hit by a neighbour's burst of work) for a t-test. The
percentile bootstrap makes no assumption on the shape of that noise: resample
each side's epochs with replacement, take the medians, and read the spread of
the ratio over many resamples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.records import OK, STANDING

RESAMPLES = 2000
CONFIDENCE = 0.95
# When a backend's epochs "may be unstable" (pyperf's words), said in the table,
# run.json and the report. pyperf warns when the standard deviation passes 10% of
# the mean; the robust CV (1.4826 x the median absolute deviation, over the
# median) reads as the standard deviation on normal noise, but one epoch hit by a
# neighbour does not move it. A slowest epoch twice the fastest is said apart: over
# the 78 backend-runs of the gate baselines committed before ea11945 (the Xeon's
# since moved to its findings' gate-baseline-12ce236/; 5 epochs each, three
# machines) the median max/min was 1.09, 1 in 10 passed 1.34 and 1 of
# 78 passed 2, so 2 is a run the machine's load shaped.
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


def spread_pct(values: Iterable[float]) -> float:
    """(max - min) / median, in percent: how far apart counts of the same work lie,
    where every one counts (a count has no outlier to forgive, as a time has)."""
    values = np.asarray(list(values), dtype=float)
    return float(100 * (values.max() - values.min()) / median(values))


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
        reasons.append(f"robust CV {cv:.1%} > {UNSTABLE_ROBUST_CV:.0%}")
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


# The winner map's figures: the fastest backend of a cell, its lead over the next, and
# the best of ours against the best peer, with the bootstrap interval of that ratio.
WINNER_FIGURES = [
    "winner", "winner_s", "runner_up", "runner_up_s", "lead",
    "best_ours", "best_ours_s", "best_peer", "best_peer_s", "ours_vs_peer",
    "ours_vs_peer_low", "ours_vs_peer_high", "ours_lead", "backends_timed",
]
# ``ours_lead``: the best of ours against the best peer, as the bootstrap reads it.
LEAD_SUPPORTED, LEAD_NOT_SUPPORTED, PEER_LEADS = "ours", "not supported", "peer"


def winners(frame: pd.DataFrame, keys: list[str], peers: Sequence[str],
            columns: list[str]) -> pd.DataFrame:
    """One row per group of ``keys`` (a sweep's cell, per machine fingerprint where
    the frame has one): the fastest backend by median epoch time, its lead (the
    next backend's time over its own; 1.0 for a tie, whose winners are joined by
    ' = '), and the best of ours against the best peer (``ours_vs_peer`` > 1: ours
    is faster). Only backends whose epochs stand (ok, cut short) take part; a cell
    where none did has no winner.

    ``ours_vs_peer_low``/``_high`` are the 95% bootstrap interval of that ratio,
    from the two backends' epoch times, and ``ours_lead`` says what it supports:
    "ours" where the whole interval is above 1, "peer" where the peer is faster,
    "not supported" where ours is faster at the medians but the interval
    reaches below 1, from ``epoch_seconds`` (each row's timed epochs, where the
    frame has them)."""
    groups = frame.groupby(keys, sort=False, dropna=False)
    rows = [{**dict(zip(keys, key)), **_cell_winner(group, peers)} for key, group in groups]
    return pd.DataFrame(rows, columns=columns)


def _cell_winner(group: pd.DataFrame, peers: Sequence[str]) -> dict:
    timed = group[group["status"].isin(STANDING) & group["median_s"].notna()]
    timed = timed.sort_values("median_s", kind="stable")
    seconds = dict(zip(timed["backend"], timed["median_s"]))
    row = {"backends_timed": len(seconds)}
    if not seconds:
        return row
    best = min(seconds.values())
    tied = [name for name, s in seconds.items() if s == best]
    slower = [(name, s) for name, s in seconds.items() if s > best]
    row.update(winner=" = ".join(tied), winner_s=best)
    if len(tied) > 1:
        row.update(runner_up=tied[1], runner_up_s=best, lead=1.0)
    elif slower:
        row.update(runner_up=slower[0][0], runner_up_s=slower[0][1], lead=slower[0][1] / best)
    ours = [(name, s) for name, s in seconds.items() if name not in peers]
    theirs = [(name, s) for name, s in seconds.items() if name in peers]
    if ours:
        row.update(best_ours=ours[0][0], best_ours_s=ours[0][1])
    if theirs:
        row.update(best_peer=theirs[0][0], best_peer_s=theirs[0][1])
    if ours and theirs:
        row["ours_vs_peer"] = theirs[0][1] / ours[0][1]
        row.update(_lead_interval(timed, ours[0][0], theirs[0][0]))
    return row


def _lead_interval(timed: pd.DataFrame, ours: str, peer: str) -> dict:
    if "epoch_seconds" not in timed.columns:
        return {}  # rows from before the epochs were kept: no interval
    samples = {}
    for name in (ours, peer):
        seconds = timed.loc[timed["backend"] == name, "epoch_seconds"]
        samples[name] = np.asarray(seconds.iloc[0] if len(seconds) else [], dtype=float)
    if not all(len(v) for v in samples.values()):
        return {}  # rows from before the epochs were kept: no interval
    estimate = ratio_of_medians([samples[peer]], [samples[ours]], np.random.default_rng(0))
    lead = (PEER_LEADS if estimate.ratio <= 1 else
            LEAD_SUPPORTED if estimate.low > 1 else LEAD_NOT_SUPPORTED)
    return {"ours_vs_peer_low": estimate.low, "ours_vs_peer_high": estimate.high,
            "ours_lead": lead}
