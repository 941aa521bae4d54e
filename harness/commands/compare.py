"""``python -m harness compare``: two runs side by side, a verdict per backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.compare.compare import (
    DEFAULT_FAIL_ABOVE,
    DEFAULT_NORMALIZE,
    GEMM_PEAK,
    INSTRUCTIONS,
    METRICS,
    TIME,
)
from harness.compare.rendering import FORMATS
from harness.config import UsageError

HELP = "compare two runs: faster, slower or within noise, per backend"
DESCRIPTION = (
    "For every backend and configuration two runs share: the median epoch times, their "
    "ratio (current/baseline) and a verdict from a bootstrap interval over the per-epoch "
    "samples. Exit 0: compared (no regression beyond --fail-above); 1: a backend is slower "
    "beyond --fail-above; 2: unreadable or mismatched runs. With --metric instructions, the "
    "instructions per epoch that `run --count-instructions` counted, and exit 1 when a "
    "backend's count grew by more than --fail-above (default 1%).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", metavar="BASELINE CURRENT", type=Path,
                   help="two run folders (or their epochs.csv / summary.csv)")
    p.add_argument("--normalize", nargs="?", const=DEFAULT_NORMALIZE, metavar="REF",
                   help="divide epoch times by a reference measured in the same run, so that "
                        "a uniformly slower machine is no regression: a backend (default "
                        f"{DEFAULT_NORMALIZE}) or {GEMM_PEAK} (run.json's calibrated GEMM peak)")
    p.add_argument("--metric", choices=METRICS, default=TIME,
                   help="time (default): the epoch times; instructions: the instructions "
                        "per epoch counted under valgrind (runs made with --count-instructions)")
    p.add_argument("--fail-above", type=float, metavar="PCT",
                   help="exit 1 when a backend is slower (or counts more instructions) by more "
                        "than PCT percent with confidence (the interval's lower end above "
                        "1 + PCT/100); default: none for time, "
                        f"{DEFAULT_FAIL_ABOVE[INSTRUCTIONS]:g} for instructions")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), markdown (for a pull-request comment) or csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--flamegraph-diff", type=Path, metavar="DIR",
                   help="also write DIR/<backend>.diff.svg for every backend profiled in both "
                        "runs: the current flamegraph coloured by the change of each frame's "
                        "share of samples")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.storage import load_run

    runs, normalize = operands(args.runs, args.normalize)
    fail_above = fail_above_for(args.metric, args.fail_above)
    if args.metric == INSTRUCTIONS and normalize is not None:
        raise UsageError("--normalize is for times; instruction counts do not depend on the "
                         "machine's speed, so compare them as they are")
    code = report(load_run(runs[0]), load_run(runs[1]), args.metric, normalize, fail_above,
                  args.format, args.seed)
    if args.flamegraph_diff:
        for path in flamegraph_diffs(runs, args.flamegraph_diff):
            print(f"flamegraph diff: {path.resolve().as_uri()}", file=sys.stderr)
    return code


def fail_above_for(metric: str, given: float | None) -> float | None:
    """--fail-above as given, else the metric's default; checked."""
    if given is not None and not given >= 0:
        raise UsageError(f"--fail-above must be a percentage of 0 or more, got {given}")
    return DEFAULT_FAIL_ABOVE[metric] if given is None else given


def report(baseline, current, metric: str = TIME, normalize: str | None = None,
           fail_above: float | None = None, fmt: str = "table", seed: int = 0) -> int:
    """Print the comparison of two loaded runs on ``metric``; the exit code: 1 when a
    backend is beyond ``fail_above``, else 0."""
    from harness.compare.compare import compare, compare_counts
    from harness.compare.rendering import render

    comparison = (compare_counts(baseline, current) if metric == INSTRUCTIONS
                  else compare(baseline, current, normalize, seed=seed))
    print(render(comparison, fmt, fail_above), end="")
    if fail_above is not None and not comparison.regressions(fail_above).empty:
        return 1
    return 0


def flamegraph_diffs(runs: list[Path], out_dir: Path) -> list[Path]:
    """The differential flamegraphs of BASELINE and CURRENT, written into ``out_dir``."""
    from harness import storage
    from harness.profiling import flamegraph

    folders = []
    for path in runs:
        folder = storage.run_dir(path)
        found = flamegraph.flamegraph_folder(folder, storage.read_meta(folder / storage.RUN_JSON))
        if found is None:
            raise UsageError(f"{path}: no flamegraphs (.folded files) found for this run; "
                             "--flamegraph-diff needs two runs made with flamegraphs")
        folders.append(found)
    written = flamegraph.write_diff(folders[0], folders[1], out_dir)
    if not written:
        raise UsageError(f"no backend is profiled in both {folders[0]} and {folders[1]}")
    return written


def operands(runs: list[Path], normalize: str | None) -> tuple[list[Path], str | None]:
    """BASELINE and CURRENT. ``--normalize`` takes an optional value, so argparse reads
    ``--normalize BASELINE CURRENT`` as REF=BASELINE: an existing folder that names no
    backend is taken back as BASELINE, with the default reference."""
    import backends

    if (len(runs) == 1 and normalize not in (None, GEMM_PEAK)
            and normalize not in backends.names() and Path(normalize).exists()):
        runs, normalize = [Path(normalize), *runs], DEFAULT_NORMALIZE
    if len(runs) != 2:
        raise UsageError(f"compare takes two runs, BASELINE and CURRENT; got {len(runs)}")
    return runs, normalize
