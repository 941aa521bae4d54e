"""Two runs compared backend by backend: is the current one faster, slower, or
within the noise of the baseline?

Shared CI machines are noisy and differ from one another, so an absolute time
measured yesterday is no baseline for today. Two things make the verdict hold:
every verdict is read from a bootstrap interval over the per-epoch samples, never
from one number against another; and ``normalize`` divides each backend's times
by a reference measured in the same run (another backend, or the machine's GEMM
peak), so that a uniformly slower machine does not read as a regression.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backends import REFERENCE
from harness import stats
from harness.stats import CONFIDENCE, RESAMPLES, ratio_of_medians
from harness.storage import CONFIG_COLUMNS, Run, RunFolderError, config_label

FASTER, SLOWER, WITHIN_NOISE, IS_REFERENCE = "faster", "slower", "within noise", "reference"
MORE, FEWER = "more instructions", "fewer instructions"
TIME, INSTRUCTIONS = "time", "instructions"
METRICS = (TIME, INSTRUCTIONS)
# The --fail-above a metric gets when none is given: none for times (compare
# only reports), 1% for counts, which move by about 0.02% between runs of
# unchanged code (docs/regression.md), so that 1% is a change of the code.
DEFAULT_FAIL_ABOVE = {TIME: None, INSTRUCTIONS: 1.0}
GEMM_PEAK = "gemm-peak"
PEAK_KEY = "gemm_peak_gflops_all"
DEFAULT_NORMALIZE = REFERENCE

ROW_COLUMNS = ["backend", *CONFIG_COLUMNS, "baseline_epochs", "current_epochs",
               "baseline_median_s", "current_median_s", "time_ratio", "ratio", "ci_low",
               "ci_high", "verdict"]
# A comparison of counts: the medians of the counted epochs, how far each run's
# counts spread ((max - min) / median, in percent), and the ratio's range over
# every pair of counts, which a change must leave wholly to count as one.
COUNT_ROW_COLUMNS = ["backend", *CONFIG_COLUMNS, "baseline_epochs", "current_epochs",
                     "baseline_median", "current_median", "baseline_spread_pct",
                     "current_spread_pct", "ratio", "ci_low", "ci_high", "verdict"]


@dataclass(frozen=True)
class Comparison:
    """The figures of a comparison, computed once; renderers only format them.

    ``ratio`` is current over baseline: of median epoch times, or with
    ``normalize`` of normalized times. ``time_ratio`` is always the raw one.
    """

    baseline: Run
    current: Run
    rows: pd.DataFrame
    added: list[tuple[str, tuple]] = field(default_factory=list)  # (backend, configuration)
    removed: list[tuple[str, tuple]] = field(default_factory=list)
    normalize: str | None = None
    notes: list[str] = field(default_factory=list)
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    metric: str = TIME  # or INSTRUCTIONS: rows of COUNT_ROW_COLUMNS

    def regressions(self, fail_above_pct: float) -> pd.DataFrame:
        """Rows slower (or counting more instructions) by more than ``fail_above_pct``
        percent with confidence: the lower end of the interval is above 1 + pct/100."""
        limit = 1 + fail_above_pct / 100
        judged = self.rows[self.rows["verdict"] != IS_REFERENCE]
        return judged[judged["ci_low"] > limit]


def compare(baseline: Run, current: Run, normalize: str | None = None, seed: int = 0,
            resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> Comparison:
    """Compare every backend and configuration the two runs share.

    ``normalize`` is None (raw times), a backend name, or ``"gemm-peak"``.
    Raises RunFolderError when the runs share no configuration, or when the
    reference is missing from either run.
    """
    base_groups, cur_groups = _groups(baseline), _groups(current)
    shared = [key for key in base_groups if key in cur_groups]
    if not shared:
        raise RunFolderError(_no_shared_message(baseline, current))
    scale = _scales(baseline, current, normalize)
    if normalize not in (None, GEMM_PEAK):
        _check_reference(normalize, shared, base_groups, cur_groups)
    rows = [_row(key, base_groups, cur_groups, normalize, scale, seed, resamples, confidence)
            for key in shared]
    return Comparison(
        baseline, current, pd.DataFrame(rows, columns=ROW_COLUMNS),
        added=_only_in(cur_groups, base_groups), removed=_only_in(base_groups, cur_groups),
        normalize=normalize, notes=_notes(normalize, scale),
        confidence=confidence, resamples=resamples)


def compare_counts(baseline: Run, current: Run) -> Comparison:
    """Compare the instructions per epoch of every backend and counted workload the
    two runs share. Raises RunFolderError when either run was not counted, or
    when they counted no workload in common."""
    base_groups, cur_groups = _count_groups(baseline), _count_groups(current)
    shared = [key for key in base_groups if key in cur_groups]
    if not shared:
        raise RunFolderError(f"no backend counted on the same workload in {baseline.path} "
                             f"and {current.path}; count both with the same settings")
    rows = [_count_row(key, base_groups[key], cur_groups[key]) for key in shared]
    note = ("counts are instructions per epoch under valgrind on each run's counted workload; "
            "the interval is the ratio's range over every pair of counted epochs")
    return Comparison(baseline, current, pd.DataFrame(rows, columns=COUNT_ROW_COLUMNS),
                      added=_only_in(cur_groups, base_groups),
                      removed=_only_in(base_groups, cur_groups), notes=[note],
                      metric=INSTRUCTIONS)


def _count_groups(run: Run) -> dict[tuple, np.ndarray]:
    if run.instructions is None:
        raise RunFolderError(f"{run.path}: no instruction counts (instructions.csv); "
                             "make the run with `python -m harness run --count-instructions`")
    return _by_backend_and_config(run.instructions, "instructions")


def _count_row(key: tuple, base: np.ndarray, cur: np.ndarray) -> dict:
    backend, config = key
    row = {"backend": backend, **dict(zip(CONFIG_COLUMNS, config)),
           "baseline_epochs": len(base), "current_epochs": len(cur),
           "baseline_median": stats.median(base), "current_median": stats.median(cur),
           "baseline_spread_pct": stats.spread_pct(base),
           "current_spread_pct": stats.spread_pct(cur)}
    low, high = cur.min() / base.max(), cur.max() / base.min()
    verdict = MORE if low > 1 else FEWER if high < 1 else WITHIN_NOISE
    return {**row, "ratio": row["current_median"] / row["baseline_median"],
            "ci_low": low, "ci_high": high, "verdict": verdict}


def _groups(run: Run) -> dict[tuple, np.ndarray]:
    """Epoch times by (backend, configuration)."""
    return _by_backend_and_config(run.epochs, "seconds")


def _by_backend_and_config(frame: pd.DataFrame, column: str) -> dict[tuple, np.ndarray]:
    """``column``'s values by (backend, configuration), in the frame's order."""
    return {(key[0], tuple(key[1:])): group[column].to_numpy(dtype=float)
            for key, group in frame.groupby(["backend", *CONFIG_COLUMNS], sort=False,
                                            dropna=False)}


def _only_in(these: dict, others: dict) -> list[tuple[str, tuple]]:
    return [key for key in these if key not in others]


def _no_shared_message(baseline: Run, current: Run) -> str:
    def configs(run: Run) -> str:
        keys = {config for _, config in _groups(run)}
        return "; ".join(sorted(config_label(k) for k in keys))

    return (f"no backend and configuration in common between {baseline.path} "
            f"({configs(baseline)}) and {current.path} ({configs(current)}); "
            f"compare runs of the same {', '.join(CONFIG_COLUMNS)}")


def _scales(baseline: Run, current: Run, normalize: str | None) -> tuple[float, float] | None:
    """The GEMM peaks of both runs, when normalizing by them."""
    if normalize != GEMM_PEAK:
        return None
    return _peak(baseline), _peak(current)


def _peak(run: Run) -> float:
    value = _find(run.meta, PEAK_KEY)
    try:
        peak = float(value)
    except (TypeError, ValueError):
        peak = float("nan")
    if not peak > 0:
        raise RunFolderError(
            f"{run.path / 'run.json'}: no {PEAK_KEY} (got {value!r}); --normalize gemm-peak "
            f"needs runs that calibrated the GEMM peak; use --normalize {DEFAULT_NORMALIZE} "
            "or another backend both runs have")
    return peak


def _find(meta: dict, key: str):
    """``meta[key]``, or the same key in a section of run.json (e.g. ``"peak": {...}``)."""
    if key in meta:
        return meta[key]
    sections = (v for v in meta.values() if isinstance(v, dict) and key in v)
    return next(sections, {}).get(key)


def _row(key, base_groups, cur_groups, normalize, scale, seed, resamples, confidence) -> dict:
    backend, config = key
    base, cur = base_groups[key], cur_groups[key]
    row = {"backend": backend, **dict(zip(CONFIG_COLUMNS, config)),
           "baseline_epochs": len(base), "current_epochs": len(cur),
           "baseline_median_s": stats.median(base), "current_median_s": stats.median(cur)}
    row["time_ratio"] = row["current_median_s"] / row["baseline_median_s"]
    if normalize not in (None, GEMM_PEAK) and backend == normalize:
        return {**row, "ratio": 1.0, "ci_low": 1.0, "ci_high": 1.0, "verdict": IS_REFERENCE}
    numerators, denominators = [cur], [base]
    if scale is not None:  # seconds x GFLOP/s: the epoch's work in units of the machine's peak
        numerators.append(np.array([scale[1]]))
        denominators.append(np.array([scale[0]]))
    elif normalize is not None:
        denominators.append(reference_epochs(cur_groups, normalize, config))
        numerators.append(reference_epochs(base_groups, normalize, config))
    rng = np.random.default_rng([seed, zlib.crc32(backend.encode()),
                                 zlib.crc32(config_label(config).encode())])
    estimate = ratio_of_medians(numerators, denominators, rng, resamples, confidence)
    return {**row, "ratio": estimate.ratio, "ci_low": estimate.low, "ci_high": estimate.high,
            "verdict": verdict(estimate.low, estimate.high)}


_THREADS = CONFIG_COLUMNS.index("threads")


def _same_work(config: tuple) -> tuple:
    return config[:_THREADS] + config[_THREADS + 1:]


def reference_epochs(groups: dict, normalize: str, config: tuple):
    """The reference backend's epoch times for ``config``: on the same number of
    threads where it was measured so, else on its own. Backends keep their own
    thread counts by default (numpy-gemm one BLAS thread, numpy-per-sample the
    library's), and the reference only has to do the same work in the same run."""
    if (normalize, config) in groups:
        return groups[(normalize, config)]
    same = [key for key in groups
            if key[0] == normalize and _same_work(key[1]) == _same_work(config)]
    if not same:
        return None
    return np.concatenate([np.asarray(groups[key]) for key in sorted(same, key=str)])


def _check_reference(normalize: str, shared: list, base_groups: dict, cur_groups: dict) -> None:
    """The reference must be measured in both runs, in every configuration compared."""
    for _, config in shared:
        if (reference_epochs(base_groups, normalize, config) is None
                or reference_epochs(cur_groups, normalize, config) is None):
            both = sorted({b for b, c in shared if c == config})
            raise RunFolderError(
                f"--normalize {normalize}: {normalize} has no epochs in both runs for "
                f"{config_label(config)}; choose a backend both runs have "
                f"({', '.join(both)}) or {GEMM_PEAK}")


def verdict(low: float, high: float) -> str:
    """Slower or faster only when the whole interval says so."""
    if low > 1:
        return SLOWER
    if high < 1:
        return FASTER
    return WITHIN_NOISE


def _notes(normalize: str | None, scale) -> list[str]:
    if normalize is None:
        return ["ratios are of raw epoch times: a faster or slower machine shows in every "
                "backend (use --normalize to compare machines of different speed)"]
    if scale is not None:
        return [f"epoch times are scaled by each run's GEMM peak (baseline {scale[0]:.1f}, "
                f"current {scale[1]:.1f} GFLOP/s), so a uniformly slower machine reads as "
                "within noise"]
    return [f"epoch times are divided by those of {normalize} in the same run: {normalize} "
            "is the reference, so its own ratio is 1 by construction (its raw time ratio shows "
            "how the two machines differ)"]
