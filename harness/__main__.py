"""Command line: ``python -m harness run ...``. Parsing and dispatch only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from harness.data import DATASET_NAMES

    p.add_argument("--backend", default="all",
                   help="'all' (every installed backend) or a comma list, e.g. "
                        "numpy-per-sample,numpy-gemm (default: all)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per backend (default: 3)")
    p.add_argument("--warmup-epochs", type=int, default=1,
                   help="epochs run first and not counted: JIT compilation, caches (default: 1)")
    p.add_argument("--sizes", default="784,30,10",
                   help="layer widths, input first (default: 784,30,10)")
    p.add_argument("--batch-size", type=int, default=10, help="mini-batch size (default: 10)")
    p.add_argument("--eta", type=float, default=3.0, help="learning rate (default: 3.0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the initial parameters and the shuffles (default: 0)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="floating-point type of parameters and data (default: float64)")
    p.add_argument("--dataset", default="auto", choices=DATASET_NAMES,
                   help="auto: mnist if present or downloadable, else the bundled "
                        "mnist-sample (default: auto)")
    p.add_argument("--data-dir", type=Path,
                   help="folder holding the dataset's IDX files (also $NNDL_BENCH_DATA)")
    p.add_argument("--n-train", type=int,
                   help="train on the first N training samples only (synthetic: how many)")
    p.add_argument("--threads", type=int,
                   help="BLAS threads (threadpoolctl) and Numba/PyTorch threads; "
                        "default: the libraries' own (all cores)")
    p.add_argument("--timeout", type=float,
                   help="seconds one backend's worker may take before it is stopped")
    p.add_argument("--results-dir", type=Path, default=Path("results"),
                   help="where the run folder is written (default: results/)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness",
                     description="Benchmark implementations of the chapter-1 network of "
                                 "Nielsen's Neural Networks and Deep Learning.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "run", help="time every backend on the same work and write CSV reports",
        description="Train each backend in its own worker process from the same parameters "
                    "and shuffles, time every epoch, and write results/<run-id>/ "
                    "(epochs.csv, summary.csv, run.json). Exit 0: all went well; 1: a backend "
                    "failed; 2: unusable arguments or data.")
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)
    return parser


def config_from_args(args: argparse.Namespace, argv: list[str]):
    import backends
    from harness.config import RunConfig, parse_sizes

    return RunConfig(
        backends=tuple(backends.resolve(args.backend)), epochs=args.epochs,
        warmup_epochs=args.warmup_epochs, sizes=parse_sizes(args.sizes),
        batch_size=args.batch_size, eta=args.eta, seed=args.seed, dtype=args.dtype,
        dataset=args.dataset, data_dir=args.data_dir, n_train=args.n_train,
        threads=args.threads, results_dir=args.results_dir, timeout=args.timeout,
        argv=tuple(argv),
    )


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness import report
    from harness.progress import ConsoleProgress
    from harness.run import execute

    result = execute(config_from_args(args, argv), ConsoleProgress())
    print(report.format_table(result.summary))
    if result.interrupted:
        print("interrupted: the completed epochs are kept", file=sys.stderr)
    print(f"results: {result.run_dir}")
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    import backends
    from harness.config import UsageError
    from harness.data import DataError

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, ["python -m harness", *argv])
    except (UsageError, DataError, backends.UnknownBackend, backends.BackendUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
