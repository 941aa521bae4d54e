"""``python -m harness findings``: the findings pages, written from committed data."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write docs/findings/<machine-key>.md from the data committed beside it"
DESCRIPTION = (
    "Write docs/findings/<machine-key>.md for every data folder docs/findings/<machine-key>/ "
    "(winners.csv and winners.png from `make figures`, runs/<run-id>/ copied with "
    "--add-run, counts/<run-id>/ copied with --add-counts), and docs/findings/README.md "
    "listing them. With --add-run RUN_DIR, first copy a run folder's run.json and CSVs "
    "into the data folder of its machine key; with --add-counts RUN_DIR, a run that "
    "counted instructions, whose counts the page pools with the others filed so. "
    "Exit 0: written; 2: unusable arguments.")
DEFAULT_DIR = Path("docs/findings")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--findings-dir", type=Path, default=DEFAULT_DIR,
                   help=f"the findings folder (default: {DEFAULT_DIR}/)")
    p.add_argument("--add-run", type=Path, action="append", default=[], metavar="RUN_DIR",
                   help="copy this run folder's run.json and CSVs in first (repeatable)")
    p.add_argument("--add-counts", type=Path, action="append", default=[], metavar="RUN_DIR",
                   help="copy in a run that counted instructions, pooled on the page with the "
                        "other counts (repeatable)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.reporting import findings

    for run_dir in args.add_run:
        copied = findings.add_run(args.findings_dir, run_dir)
        print(f"copied {run_dir} to {copied}")
    for run_dir in args.add_counts:
        copied = findings.add_run(args.findings_dir, run_dir, into=findings.COUNTS)
        print(f"copied {run_dir} to {copied}")
    for path in findings.write_pages(args.findings_dir):
        print(f"wrote {path}")
    return 0
