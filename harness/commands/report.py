"""``python -m harness report``: rebuild a run's or a sweep's HTML report from its files."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rebuild the HTML report of a run or sweep folder from its files"
DESCRIPTION = (
    "Write RUN_DIR/index.html from the files of a run folder (run.json, summary.csv, "
    "epochs.csv, time_breakdown.csv, hot_functions.csv and the flamegraphs) or of a sweep "
    "folder (sweep.json, winners.csv, sweep.csv, the plots), and print its file:// address. "
    "Exit 0: written; 2: not a run or sweep folder.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="RUN_DIR", type=Path, help="a run or sweep folder")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.reporting.pages import write_report

    print(f"report: {write_report(args.folder).resolve().as_uri()}")
    return 0
