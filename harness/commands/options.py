"""The options that several commands share, with their defaults read from
``RunConfig`` so that they are declared in one place."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from backends.base import DTYPES, validate_sizes
from harness.config import RunConfig, UsageError

EXIT_USAGE = 2
_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}


def parse_sizes(text: str) -> tuple[int, ...]:
    """'784,30,10' -> (784, 30, 10), with an error that shows the expected form."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
        return validate_sizes(sizes)
    except ValueError:
        raise UsageError(
            f"--sizes {text!r} must be layer widths separated by commas, e.g. 784,30,10"
        ) from None


def parse_list(option: str, text: str, convert: Callable[[str], object], example: str) -> tuple:
    """'1,10,100' -> (1, 10, 100), with an error that names the option and the form."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if not all(parts):
            raise ValueError(text)
        return tuple(convert(part) for part in parts)
    except ValueError:
        raise UsageError(f"{option} {text!r} must be a comma list, e.g. {example}") from None


def parse_dtype(text: str) -> str:
    if text not in DTYPES:
        raise ValueError(text)
    return text


def parse_threads(text: str) -> int | None:
    """A thread count, or 'default' for the libraries' own choice."""
    return None if text == "default" else int(text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def default(name: str):
    """A run setting's default, as ``RunConfig`` declares it."""
    return _DEFAULTS[name]


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Every setting of a run, for a command that runs one configuration."""
    add_common_options(p, with_cell=True)


def add_common_options(p: argparse.ArgumentParser, with_cell: bool = False) -> None:
    """The settings of a run; without ``with_cell``, not those a sweep crosses (widths,
    batch size, dtype, threads), which it declares as lists of its own."""
    from harness.data.catalogue import DATASET_NAMES

    p.add_argument("--backend", default="all",
                   help="'all' (every installed backend) or a comma list, e.g. "
                        "numpy-per-sample,numpy-gemm (default: all)")
    p.add_argument("--epochs", type=int, default=default("epochs"),
                   help=f"timed epochs per backend (default: {default('epochs')})")
    p.add_argument("--warmup-epochs", type=int, default=default("warmup_epochs"),
                   help="epochs run first and not counted: JIT compilation, caches "
                        f"(default: {default('warmup_epochs')})")
    if with_cell:
        sizes = ",".join(map(str, default("sizes")))
        p.add_argument("--sizes", default=sizes,
                       help=f"layer widths, input first (default: {sizes})")
        p.add_argument("--batch-size", type=int, default=default("batch_size"),
                       help=f"mini-batch size (default: {default('batch_size')})")
    p.add_argument("--eta", type=float, default=default("eta"),
                   help=f"learning rate (default: {default('eta')})")
    p.add_argument("--seed", type=int, default=default("seed"),
                   help=f"seeds the initial parameters and the shuffles "
                        f"(default: {default('seed')})")
    if with_cell:
        p.add_argument("--dtype", default=default("dtype"), choices=["float64", "float32"],
                       help=f"floating-point type of parameters and data "
                            f"(default: {default('dtype')})")
    p.add_argument("--dataset", default=default("dataset"), choices=DATASET_NAMES,
                   help="auto: mnist if present or downloadable, else the bundled "
                        f"mnist-sample (default: {default('dataset')})")
    p.add_argument("--data-dir", type=Path,
                   help="folder holding the dataset's IDX files (also $NNDL_BENCH_DATA)")
    p.add_argument("--n-train", type=int,
                   help="train on the first N training samples only (synthetic: how many)")
    if with_cell:
        p.add_argument("--threads", type=int,
                       help="BLAS threads (threadpoolctl) and Numba/PyTorch threads, recorded "
                            "in the CSVs; default: each library's own (all cores), except "
                            "numpy-gemm, which keeps BLAS on one thread")
    p.add_argument("--timeout", type=float,
                   help="seconds one backend's worker may take before it is stopped")
    p.add_argument("--download-timeout", type=float, default=default("download_timeout"),
                   help="seconds the download of a missing dataset may take, all its files "
                        "and mirrors together; past it, auto falls back to mnist-sample "
                        f"(default: {default('download_timeout'):g})")
    p.add_argument("--results-dir", type=Path, default=default("results_dir"),
                   help=f"where the run folder is written (default: {default('results_dir')}/)")
    p.add_argument("--peak-seconds", type=float, default=default("peak_seconds"),
                   help="seconds spent measuring the machine's GEMM peak (one thread, then "
                        "all), the 100%% of pct_peak; 0 skips it "
                        f"(default: {default('peak_seconds'):g})")


def add_flamegraph_options(p: argparse.ArgumentParser, optional: bool) -> None:
    from harness.profiling.profile import ProfileSettings

    out_dir = ProfileSettings.out_dir
    p.add_argument("--flamegraph-dir", type=Path, default=out_dir,
                   help="where <run-id>/<backend>.svg and <run-id>/stacks/ are written "
                        f"(default: {out_dir}/)")
    if optional:
        p.add_argument("--no-flamegraphs", action="store_true",
                       help="skip the profiled epochs per backend (py-spy) and the count of "
                            "its allocations per epoch (memray) that follow the timed epochs")


def config_from_args(args: argparse.Namespace, argv: list[str], **cell) -> RunConfig:
    """The run's settings from the parsed options; ``cell`` gives sizes, batch_size,
    dtype and threads where the options do not (a sweep's grid)."""
    import backends

    if args.backend.strip() == "all" and not cell:
        for notice in backends.left_out_notices():
            print(f"note: {notice}", file=sys.stderr)
    if not cell:
        cell = {"sizes": parse_sizes(args.sizes), "batch_size": args.batch_size,
                "dtype": args.dtype, "threads": args.threads}
    return RunConfig(
        backends=tuple(backends.resolve(args.backend)), epochs=args.epochs,
        warmup_epochs=args.warmup_epochs, eta=args.eta, seed=args.seed,
        dataset=args.dataset, data_dir=args.data_dir, n_train=args.n_train,
        results_dir=args.results_dir, timeout=args.timeout,
        download_timeout=args.download_timeout,
        peak_seconds=args.peak_seconds, argv=tuple(argv), **cell,
    )
