"""``python -m harness run``: time every backend on the same work and write the run folder."""

from __future__ import annotations

import argparse
import sys

from harness.commands import options

HELP = "time every backend on the same work and write CSV reports"
DESCRIPTION = (
    "Train each backend in its own worker process from the same parameters and shuffles, "
    "time every epoch, and write results/<run-id>/ (epochs.csv, summary.csv, run.json; "
    "instructions.csv with --count-instructions). Exit 0: all went well; 1: a backend "
    "failed, or its profile or its instruction count did; 2: unusable arguments or data; "
    "130: interrupted.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_run_options(p)
    options.add_flamegraph_options(p, optional=True)
    p.add_argument("--count-instructions", action="store_true",
                   help="after the timed epochs, count each backend's instructions per epoch "
                        "under valgrind (callgrind) on a fixed small workload, one thread, "
                        "and add instructions_per_epoch to summary.csv; the peers (torch, "
                        "torch-compile, jax) are left out (too slow under valgrind) unless "
                        "--count-backends names them")
    p.add_argument("--count-backends", metavar="LIST",
                   help="the backends to count, a comma list (default: the run's, but the "
                        "peers)")
    p.add_argument("--count-jobs", type=int, metavar="N",
                   help="counts made at a time (default: the cores; a count does not depend "
                        "on the load)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.commands.profile import print_profile, profile_settings
    from harness.commands.progress import ConsoleProgress
    from harness.reporting.pages import write_report
    from harness.reporting.tables import format_instability, format_table
    from harness.running.run import execute

    settings = None if args.no_flamegraphs else profile_settings(args)
    result = execute(options.config_from_args(args, argv), ConsoleProgress(), profile=settings,
                     count=count_settings(args))
    print(format_table(result.summary))
    for line in format_instability(result.unstable):
        print(line)
    print_profile(result.profile)
    for note in result.allocations.notes if result.allocations else []:
        print(note, file=sys.stderr)
    if result.interrupted:
        print("interrupted: the completed epochs are kept", file=sys.stderr)
    elif result.profile is not None and result.profile.interrupted:
        print("interrupted while profiling: the timings, the summary and the backends "
              "profiled before it are kept", file=sys.stderr)
    elif result.allocations is not None and result.allocations.interrupted:
        print("interrupted while counting allocations: the timings, the profiles and the "
              "backends counted before it are kept", file=sys.stderr)
    report = write_report(result.run_dir)
    print(f"results: {result.run_dir}")
    print(f"report: {report.resolve().as_uri()}")
    return result.exit_code


def count_settings(args: argparse.Namespace):
    """``--count-instructions`` and its options as the run's CountSettings, or None."""
    import backends
    from harness.config import UsageError
    from harness.running.run import CountSettings

    if not args.count_instructions:
        if args.count_backends or args.count_jobs:
            raise UsageError("--count-backends and --count-jobs go with --count-instructions")
        return None
    if args.count_jobs is not None and args.count_jobs < 1:
        raise UsageError(f"--count-jobs must be 1 or more, got {args.count_jobs}")
    chosen = tuple(backends.resolve(args.count_backends)) if args.count_backends else None
    return CountSettings(chosen, args.count_jobs)
