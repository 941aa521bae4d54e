"""``python -m harness run``: time every backend on the same work and write the run folder."""

from __future__ import annotations

import argparse
import sys

from harness.commands import options

HELP = "time every backend on the same work and write CSV reports"
DESCRIPTION = (
    "Train each backend in its own worker process from the same parameters and shuffles, "
    "time every epoch, and write results/<run-id>/ (epochs.csv, summary.csv, run.json). "
    "Exit 0: all went well; 1: a backend failed; 2: unusable arguments or data.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_run_options(p)
    options.add_flamegraph_options(p, optional=True)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.commands.profile import print_profile, profile_settings
    from harness.commands.progress import ConsoleProgress
    from harness.reporting.pages import write_report
    from harness.reporting.tables import format_table
    from harness.running.run import execute

    settings = None if args.no_flamegraphs else profile_settings(args)
    result = execute(options.config_from_args(args, argv), ConsoleProgress(), profile=settings)
    print(format_table(result.summary))
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
