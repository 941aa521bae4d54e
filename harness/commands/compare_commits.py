"""``python -m harness compare-commits BASE HEAD [run options]``: two commits of this
repository measured in turn, and compared as ``compare`` compares two runs."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness.commands.compare import fail_above_for, report
from harness.compare.compare import DEFAULT_FAIL_ABOVE, DEFAULT_NORMALIZE, INSTRUCTIONS, TIME
from harness.compare.rendering import FORMATS
from harness.config import UsageError

HELP = "measure two commits in turn (time and instruction counts) and compare them"
DESCRIPTION = (
    "Check out BASE and HEAD in git worktrees, build each one's Rust extension where rust/ "
    "differs between them, count each one's instructions per epoch under valgrind, run "
    "them in turn (BASE HEAD BASE HEAD ...) with the run options given after the commits, "
    "and compare HEAD against BASE on time and on counts. Exit 0: compared, no regression; "
    "1: slower beyond --fail-above, or more instructions beyond --count-fail-above; 2: "
    "unusable commits, options or runs.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=Path("."),
                   help="the git repository (default: the one holding the current folder)")
    p.add_argument("--rounds", type=int, default=2,
                   help="timed runs per commit, taken in turn (default: 2, i.e. A B A B)")
    p.add_argument("--no-count", action="store_true",
                   help="compare times only (counting needs valgrind)")
    p.add_argument("--normalize", nargs="?", const=DEFAULT_NORMALIZE, metavar="REF",
                   help="divide epoch times by a reference backend's, as compare does")
    p.add_argument("--fail-above", type=float, metavar="PCT",
                   help="exit 1 when a backend is slower by more than PCT percent with "
                        "confidence (default: times are reported, not gated)")
    p.add_argument("--count-fail-above", type=float, metavar="PCT",
                   help="exit 1 when a backend counts more instructions by more than PCT "
                        f"percent (default: {DEFAULT_FAIL_ABOVE[INSTRUCTIONS]:g})")
    p.add_argument("--format", choices=FORMATS, default="table", help="as compare's")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the runs in DIR (timed/<baseline|current>, counted/...)")
    p.add_argument("--count-backends", metavar="LIST",
                   help="the backends to count (as run's --count-backends; default: the "
                        "run's, but those left out of counting)")
    p.add_argument("--count-jobs", type=int, metavar="N",
                   help="counts made at a time, each commit's (as run's --count-jobs)")
    p.add_argument("base", metavar="BASE", help="the baseline commit")
    p.add_argument("head", metavar="HEAD", help="the commit compared with it")
    p.add_argument("run_args", nargs=argparse.REMAINDER, metavar="RUN OPTIONS",
                   help="options of `python -m harness run`, e.g. --backend numpy-gemm "
                        "--dataset mnist-sample --epochs 5 --threads 1 --peak-seconds 0")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.compare.commits import git, measure_commits
    from harness.profiling.instructions import available
    from harness.storage import load_run

    if args.rounds < 1:
        raise UsageError(f"--rounds must be 1 or more, got {args.rounds}")
    time_limit = fail_above_for(TIME, args.fail_above)
    count_limit = fail_above_for(INSTRUCTIONS, args.count_fail_above)
    count = not args.no_count
    if count and available() is None:
        print("note: valgrind is not installed: comparing times only", file=sys.stderr)
        count = False
    repo = Path(git(args.repo, "rev-parse", "--show-toplevel"))
    count_args = None
    if count:
        count_args = ["--count-instructions",
                      *(["--count-backends", args.count_backends] if args.count_backends else []),
                      *(["--count-jobs", str(args.count_jobs)] if args.count_jobs else [])]
    with tempfile.TemporaryDirectory(prefix="nndl-commits-") as tmp:
        # Absolute: each run's --results-dir is read from inside its own worktree.
        workdir = (args.keep or Path(tmp)).resolve()
        measured = measure_commits(repo, args.base, args.head, list(args.run_args), workdir,
                                   args.rounds, count_args, log=_log)
        code = report(load_run(measured.timed["baseline"]), load_run(measured.timed["current"]),
                      TIME, args.normalize, time_limit, args.format)
        if count:
            print()
            code = max(code, report(load_run(measured.counted["baseline"]),
                                    load_run(measured.counted["current"]), INSTRUCTIONS,
                                    None, count_limit, args.format))
    return code


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
