"""``python -m harness profile``: flamegraphs and where each backend's time goes."""

from __future__ import annotations

import argparse
import sys

from harness.commands import options

HELP = "profile backends under perf and py-spy: flamegraphs and where the time goes"
DESCRIPTION = (
    "Run each backend in a profiled process: start-up and warm-up, then epochs until at "
    "least 1,000 samples. perf samples the CPU time of every thread (its native frames, "
    "named from each library's symbols) and py-spy the main thread's Python functions; "
    "without perf, py-spy samples native frames too, with threads pinned to one. Writes "
    "<flamegraph-dir>/<run-id>/<backend>.svg, with its .folded, .speedscope.json and .txt "
    "files under <flamegraph-dir>/<run-id>/stacks/<backend>/, and "
    "results/<run-id>/"
    "time_breakdown.csv and hot_functions.csv. Exit 0: all went well (or py-spy cannot run "
    "here, which is said); 1: a backend's profile failed; 2: unusable arguments or data.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_run_options(p)
    options.add_flamegraph_options(p, optional=False)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.commands.progress import ConsoleProgress
    from harness.reporting.pages import write_report
    from harness.running.run import profile_only

    result = profile_only(options.config_from_args(args, argv), profile_settings(args),
                          ConsoleProgress())
    print_profile(result.profile)
    if result.profile.interrupted:
        print("interrupted: the backends profiled before it are kept", file=sys.stderr)
    report = write_report(result.run_dir)
    print(f"results: {result.run_dir}")
    print(f"report: {report.resolve().as_uri()}")
    return result.exit_code


def profile_settings(args: argparse.Namespace):
    from harness.profiling.profile import ProfileSettings

    return ProfileSettings(out_dir=args.flamegraph_dir)


def print_profile(profile) -> None:
    from harness.profiling.profile import format_breakdown

    if profile is None:
        return
    table = format_breakdown(profile)
    if table:
        print(f"\n{table}")
        print(f"flamegraphs: {profile.folder}")
    for line in ([profile.unavailable] if profile.unavailable else []) + profile.notes:
        print(line, file=sys.stderr)
