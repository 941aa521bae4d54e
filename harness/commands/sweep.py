"""``python -m harness sweep``: every backend over a grid of batch sizes, widths,
dtypes and thread counts, and the winner map."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands import options
from harness.config import UsageError
from harness.running import sweep
from harness.running.cluster import DEFAULT_RETRIES, DEFAULT_TIMEOUT

HELP = "run every backend over a grid of batch sizes, widths, dtypes and threads"
DESCRIPTION = (
    "One run per cell of the grid (every combination of the lists), each backend in its own "
    "worker and bounded by --max-seconds-per-cell; writes results/<sweep-id>/ (sweep.csv, "
    "winners.csv, sweep.json, plots as PNG and SVG, cells/<run-id>/) and prints the winner "
    "map. With --cluster, the cells run on a Dask cluster, one per benchmark worker at a "
    "time, and this process writes every file. Exit 0: all went well (cut short is fine); "
    "1: a backend failed, finished no timed epoch within the budget, or a cell was lost "
    "with no retry left; 2: unusable arguments, data or cluster; 130: interrupted (the "
    "finished cells are kept; --resume runs the others).")


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
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the cells on a Dask cluster: tcp://HOST:PORT (a scheduler), "
                        "file:PATH (a scheduler file) or local:N (N workers started here, "
                        "each pinned to its own cores); workers: python -m harness worker")
    p.add_argument("--resume", metavar="SWEEP_DIR", type=Path,
                   help="run again only the cells of this sweep folder that did not finish, "
                        "with its own grid and settings, adding them to its files")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help="on a cluster, how many times a cell whose worker was lost is "
                        "submitted again, to a worker of the same machine fingerprint "
                        f"(default: {DEFAULT_RETRIES})")
    p.add_argument("--cluster-timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds to reach the scheduler, and to wait for a worker offering "
                        f"'bench' (default: {DEFAULT_TIMEOUT:g})")


def sweep_cells(args: argparse.Namespace, argv: list[str]) -> list:
    """The run settings of every cell of the grid, checked."""
    grid = sweep.Grid(
        batch_sizes=options.parse_list("--batch-size", args.batch_size, int, "1,10,100,1000"),
        sizes=tuple(options.parse_sizes(text) for text in args.sizes),
        dtypes=options.parse_list("--dtype", args.dtype, options.parse_dtype,
                                  "float64,float32"),
        threads=options.parse_list("--threads", args.threads, options.parse_threads,
                                   "default,1,2"),
    )
    base = options.config_from_args(args, argv, sizes=grid.sizes[0],
                                    batch_size=grid.batch_sizes[0], dtype=grid.dtypes[0],
                                    threads=grid.threads[0])
    return grid.cells(base)


# What --resume takes from the sweep folder instead of the command line.
_GRID_OPTIONS = ("backend", "batch_size", "sizes", "dtype", "threads", "epochs",
                 "warmup_epochs", "eta", "seed", "dataset", "data_dir", "n_train",
                 "timeout", "peak_seconds", "max_seconds_per_cell", "results_dir")
_CLUSTER_OPTIONS = ("retries", "cluster_timeout")


def executor(args: argparse.Namespace):
    """Where the cells run: the cluster of --cluster, or here."""
    from harness.running.executors import SerialExecutor

    if args.cluster is None:
        _refuse_given(args, _CLUSTER_OPTIONS, "apply to --cluster only")
        return SerialExecutor()
    from harness.running.cluster import ClusterExecutor

    return ClusterExecutor(args.cluster, retries=args.retries, timeout=args.cluster_timeout)


def _refuse_given(args: argparse.Namespace, names: tuple[str, ...], why: str) -> None:
    """A UsageError for the options of ``names`` given a value other than their default."""
    defaults = _defaults()
    given = [name for name in names if getattr(args, name) != defaults[name]]
    if given:
        raise UsageError(", ".join("--" + name.replace("_", "-") for name in given) + f" {why}")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.commands.progress import SweepProgress
    from harness.reporting.pages import draw_sweep
    from harness.reporting.tables import format_winners

    if args.resume is not None:
        _refuse_given(args, _GRID_OPTIONS, "cannot change a resumed sweep, which runs its "
                                           "folder's own grid and settings")
    else:
        cells = sweep_cells(args, argv)
    where = executor(args)
    progress = SweepProgress()
    try:
        with where:
            if args.resume is not None:
                result = sweep.resume_sweep(args.resume, observer=progress, executor=where,
                                            draw=draw_sweep)
            else:
                result = sweep.run_sweep(cells, budget=args.max_seconds_per_cell,
                                         observer=progress, executor=where, draw=draw_sweep)
    finally:
        progress.close()
    report = draw_sweep(result.sweep_dir, result.frame, result.winners)
    print(format_winners(result.winners))
    if result.interrupted:
        print("interrupted: the completed cells are kept; --resume "
              f"{result.sweep_dir} runs the others", file=sys.stderr)
    print(f"results: {result.sweep_dir}")
    print(f"report: {report.resolve().as_uri()}")
    return result.exit_code


def _defaults() -> dict:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return {name: parser.get_default(name) for name in (*_GRID_OPTIONS, *_CLUSTER_OPTIONS)}
