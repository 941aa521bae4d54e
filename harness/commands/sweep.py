"""``python -m harness sweep``: every backend over a grid of batch sizes, widths,
dtypes and thread counts, and the winner map."""

from __future__ import annotations

import argparse
import sys

from harness.commands import options
from harness.running import sweep

HELP = "run every backend over a grid of batch sizes, widths, dtypes and threads"
DESCRIPTION = (
    "One run per cell of the grid (every combination of the lists), each backend in its own "
    "worker and bounded by --max-seconds-per-cell; writes results/<sweep-id>/ (sweep.csv, "
    "winners.csv, sweep.json, plots as PNG and SVG, cells/<run-id>/) and prints the winner "
    "map. Exit 0: all went well (cut short is fine); 1: a backend failed, or finished no "
    "timed epoch within the budget; 2: unusable arguments or data.")


def _comma(values) -> str:
    return ",".join(map(str, values))


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_common_options(p)
    batch_sizes = _comma(sweep.DEFAULT_BATCH_SIZES)
    sizes = [_comma(s) for s in sweep.DEFAULT_SIZES]
    dtypes = _comma(sweep.DEFAULT_DTYPES)
    p.add_argument("--batch-size", default=batch_sizes,
                   help=f"comma list of mini-batch sizes (default: {batch_sizes})")
    p.add_argument("--sizes", nargs="+", default=sizes,
                   help="layer widths, one comma list per network, space-separated "
                        f"(default: {' '.join(sizes)})")
    p.add_argument("--dtype", default=dtypes,
                   help=f"comma list of float64, float32 (default: {dtypes})")
    p.add_argument("--threads", default="default",
                   help="comma list of thread counts; 'default' is the libraries' own "
                        "(default: default)")
    p.add_argument("--max-seconds-per-cell", type=float, default=sweep.DEFAULT_BUDGET,
                   help="seconds each backend may take in a cell, warm-up included; past "
                        "it the epochs it finished stand, marked cut short "
                        f"(default: {sweep.DEFAULT_BUDGET:g})")


def sweep_cells(args: argparse.Namespace, argv: list[str]) -> list:
    """The run settings of every cell of the grid, checked."""
    from harness.config import parse_sizes

    grid = sweep.Grid(
        batch_sizes=sweep.parse_list("--batch-size", args.batch_size, int, "1,10,100,1000"),
        sizes=tuple(parse_sizes(text) for text in args.sizes),
        dtypes=sweep.parse_list("--dtype", args.dtype, sweep.parse_dtype, "float64,float32"),
        threads=sweep.parse_list("--threads", args.threads, sweep.parse_threads, "default,1,2"),
    )
    base = options.config_from_args(args, argv, sizes=grid.sizes[0],
                                    batch_size=grid.batch_sizes[0], dtype=grid.dtypes[0],
                                    threads=grid.threads[0])
    return grid.cells(base)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.commands.progress import SweepProgress
    from harness.reporting.tables import format_winners

    cells = sweep_cells(args, argv)
    progress = SweepProgress()
    try:
        result = sweep.run_sweep(cells, budget=args.max_seconds_per_cell, observer=progress)
    finally:
        progress.close()
    print(format_winners(result.winners))
    if result.interrupted:
        print("interrupted: the completed cells are kept", file=sys.stderr)
    print(f"results: {result.sweep_dir}")
    print(f"report: {result.report.resolve().as_uri()}")
    return result.exit_code
