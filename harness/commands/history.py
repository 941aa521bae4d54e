"""``python -m harness history``: every run in one table, and a plot over commits."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands import options

HELP = "every run in one table (history.csv) and a plot over commits"
DESCRIPTION = (
    "Gather every run under the results folder into <results-dir>/history.csv (backend, "
    "configuration, commit, date, median) and optionally plot epoch time per backend over "
    "runs, labelled by commit.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    results_dir = options.default("results_dir")
    p.add_argument("--results-dir", type=Path, default=results_dir,
                   help=f"folder holding the run folders (default: {results_dir}/)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="write the plot to FILE (.png or .svg)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness import storage
    from harness.compare import history

    if args.plot:
        history.check_plot_path(args.plot)
    table = history.gather(args.results_dir)
    path = storage.write_history(table, args.results_dir)
    print(f"{len(table)} rows from {table['run_dir'].nunique()} runs: {path}")
    if args.plot:
        history.plot(table, args.plot)
        print(f"plot: {args.plot}")
    return 0
