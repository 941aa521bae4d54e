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
                   help="BLAS threads (threadpoolctl) and Numba/PyTorch threads, recorded "
                        "in the CSVs; default: each library's own (all cores), except "
                        "numpy-gemm, which keeps BLAS on one thread")
    p.add_argument("--timeout", type=float,
                   help="seconds one backend's worker may take before it is stopped")
    p.add_argument("--results-dir", type=Path, default=Path("results"),
                   help="where the run folder is written (default: results/)")
    p.add_argument("--peak-seconds", type=float, default=1.0,
                   help="seconds spent measuring the machine's GEMM peak (one thread, then "
                        "all), the 100%% of pct_peak; 0 skips it (default: 1)")


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
    _add_flamegraph_options(run, optional=True)
    run.set_defaults(handler=cmd_run)
    _add_profile_parser(commands)
    _add_compare_parser(commands)
    _add_history_parser(commands)
    _add_sweep_parser(commands)
    _add_report_parser(commands)
    return parser


def _add_flamegraph_options(p: argparse.ArgumentParser, optional: bool) -> None:
    p.add_argument("--flamegraph-dir", type=Path, default=Path("flamegraphs"),
                   help="where <run-id>/<backend>.svg and the collapsed stacks are written "
                        "(default: flamegraphs/)")
    if optional:
        p.add_argument("--no-flamegraphs", action="store_true",
                       help="skip the profiled epoch per backend (py-spy) that follows the "
                            "timed epochs")


def _add_profile_parser(commands) -> None:
    p = commands.add_parser(
        "profile", help="profile backends under py-spy: flamegraphs and where the time goes",
        description="Run each backend in a profiled process (py-spy --native, BLAS pinned to "
                    "one thread): start-up and warm-up, then epochs until at least 1,000 "
                    "samples. Writes <flamegraph-dir>/<run-id>/<backend>.svg, .folded, "
                    ".speedscope.json and .txt, and "
                    "results/<run-id>/time_breakdown.csv and hot_functions.csv. Exit 0: all "
                    "went well (or py-spy cannot run here, which is said); 1: a backend's "
                    "profile failed; 2: unusable arguments or data.")
    _add_run_options(p)
    _add_flamegraph_options(p, optional=False)
    p.set_defaults(handler=cmd_profile)


def _add_compare_parser(commands) -> None:
    from harness.compare import DEFAULT_NORMALIZE, GEMM_PEAK
    from harness.compare_report import FORMATS

    p = commands.add_parser(
        "compare", help="compare two runs: faster, slower or within noise, per backend",
        description="For every backend and configuration two runs share: the median epoch "
                    "times, their ratio (current/baseline) and a verdict from a bootstrap "
                    "interval over the per-epoch samples. Exit 0: compared (no regression "
                    "beyond --fail-above); 1: a backend is slower beyond --fail-above; "
                    "2: unreadable or mismatched runs.")
    p.add_argument("runs", nargs="*", metavar="BASELINE CURRENT", type=Path,
                   help="two run folders (or their epochs.csv / summary.csv)")
    p.add_argument("--normalize", nargs="?", const=DEFAULT_NORMALIZE, metavar="REF",
                   help="divide epoch times by a reference measured in the same run, so that "
                        "a uniformly slower machine is no regression: a backend (default "
                        f"{DEFAULT_NORMALIZE}) or {GEMM_PEAK} (run.json's calibrated GEMM peak)")
    p.add_argument("--fail-above", type=float, metavar="PCT",
                   help="exit 1 when a backend is slower by more than PCT percent with "
                        "confidence (the interval's lower end above 1 + PCT/100)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), markdown (for a pull-request comment) or csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--flamegraph-diff", type=Path, metavar="DIR",
                   help="also write DIR/<backend>.diff.svg for every backend profiled in both "
                        "runs: the current flamegraph coloured by the change of each frame's "
                        "share of samples")
    p.set_defaults(handler=cmd_compare)


def _add_history_parser(commands) -> None:
    p = commands.add_parser(
        "history", help="every run in one table (history.csv) and a plot over commits",
        description="Gather every run under the results folder into <results-dir>/history.csv "
                    "(backend, configuration, commit, date, median) and optionally plot epoch "
                    "time per backend over runs, labelled by commit.")
    p.add_argument("--results-dir", type=Path, default=Path("results"),
                   help="folder holding the run folders (default: results/)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="write the plot to FILE (.png or .svg)")
    p.set_defaults(handler=cmd_history)


def _add_sweep_parser(commands) -> None:
    from harness.sweep import DEFAULT_BUDGET

    p = commands.add_parser(
        "sweep", conflict_handler="resolve",  # the list options below replace run's
        help="run every backend over a grid of batch sizes, widths, dtypes and threads",
        description="One run per cell of the grid (every combination of the lists), each "
                    "backend in its own worker and bounded by --max-seconds-per-cell; writes "
                    "results/<sweep-id>/ (sweep.csv, winners.csv, sweep.json, plots as PNG and "
                    "SVG, cells/<run-id>/) and prints the winner map. Exit 0: all went well "
                    "(cut short is fine); 1: a backend failed, or finished no timed epoch "
                    "within the budget; 2: unusable arguments or data.")
    _add_run_options(p)
    p.add_argument("--batch-size", default="1,10,100,1000",
                   help="comma list of mini-batch sizes (default: 1,10,100,1000)")
    p.add_argument("--sizes", nargs="+", default=["784,30,10", "784,100,10"],
                   help="layer widths, one comma list per network, space-separated "
                        "(default: 784,30,10 784,100,10)")
    p.add_argument("--dtype", default="float64,float32",
                   help="comma list of float64, float32 (default: float64,float32)")
    p.add_argument("--threads", default="default",
                   help="comma list of thread counts; 'default' is the libraries' own "
                        "(default: default)")
    p.add_argument("--max-seconds-per-cell", type=float, default=DEFAULT_BUDGET,
                   help="seconds each backend may take in a cell, warm-up included; past "
                        "it the epochs it finished stand, marked cut short "
                        f"(default: {DEFAULT_BUDGET:g})")
    p.set_defaults(handler=cmd_sweep)


def _add_report_parser(commands) -> None:
    p = commands.add_parser(
        "report", help="rebuild the HTML report of a run or sweep folder from its files",
        description="Write RUN_DIR/index.html from the files of a run folder (run.json, "
                    "summary.csv, epochs.csv, time_breakdown.csv, hot_functions.csv and the "
                    "flamegraphs) or of a sweep folder (sweep.json, winners.csv, sweep.csv, "
                    "the plots), and print its file:// address. Exit 0: written; 2: not a "
                    "run or sweep folder.")
    p.add_argument("folder", metavar="RUN_DIR", type=Path, help="a run or sweep folder")
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.config import UsageError
    from harness.reporting.pages import NotARunFolder, write_report

    try:
        path = write_report(args.folder)
    except NotARunFolder as e:
        raise UsageError(str(e)) from None
    print(f"report: {path.resolve().as_uri()}")
    return 0


def config_from_args(args: argparse.Namespace, argv: list[str]):
    import backends
    from harness.config import RunConfig, parse_sizes

    return RunConfig(
        backends=tuple(backends.resolve(args.backend)), epochs=args.epochs,
        warmup_epochs=args.warmup_epochs, sizes=parse_sizes(args.sizes),
        batch_size=args.batch_size, eta=args.eta, seed=args.seed, dtype=args.dtype,
        dataset=args.dataset, data_dir=args.data_dir, n_train=args.n_train,
        threads=args.threads, results_dir=args.results_dir, timeout=args.timeout,
        peak_seconds=args.peak_seconds,
        argv=tuple(argv),
    )


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness import report
    from harness.progress import ConsoleProgress
    from harness.run import execute

    settings = None if args.no_flamegraphs else _profile_settings(args)
    result = execute(config_from_args(args, argv), ConsoleProgress(), profile=settings)
    print(report.format_table(result.summary))
    _print_profile(result.profile)
    if result.interrupted:
        print("interrupted: the completed epochs are kept", file=sys.stderr)
    print(f"results: {result.run_dir}")
    print(f"report: {result.report.resolve().as_uri()}")
    return result.exit_code


def cmd_profile(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.progress import ConsoleProgress
    from harness.run import profile_only

    result = profile_only(config_from_args(args, argv), _profile_settings(args),
                          ConsoleProgress())
    _print_profile(result.profile)
    print(f"results: {result.run_dir}")
    print(f"report: {result.report.resolve().as_uri()}")
    return 1 if result.profile.failed else 0


def _profile_settings(args: argparse.Namespace):
    from harness.profile import ProfileSettings

    return ProfileSettings(out_dir=args.flamegraph_dir)


def _print_profile(profile) -> None:
    from harness.profile import format_breakdown

    if profile is None:
        return
    table = format_breakdown(profile)
    if table:
        print(f"\n{table}")
        print(f"flamegraphs: {profile.folder}")
    for line in ([profile.unavailable] if profile.unavailable else []) + profile.notes:
        print(line, file=sys.stderr)


def cmd_compare(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.compare import compare
    from harness.compare_report import render
    from harness.config import UsageError
    from harness.runs import load_run

    runs, normalize = _compare_operands(args.runs, args.normalize)
    if args.fail_above is not None and not args.fail_above >= 0:
        raise UsageError(f"--fail-above must be a percentage of 0 or more, got {args.fail_above}")
    comparison = compare(load_run(runs[0]), load_run(runs[1]), normalize, seed=args.seed)
    print(render(comparison, args.format, args.fail_above), end="")
    if args.flamegraph_diff:
        for path in _flamegraph_diffs(runs, args.flamegraph_diff):
            print(f"flamegraph diff: {path.resolve().as_uri()}", file=sys.stderr)
    if args.fail_above is not None and not comparison.regressions(args.fail_above).empty:
        return 1
    return 0


def _flamegraph_diffs(runs: list[Path], out_dir: Path) -> list[Path]:
    from harness import flamegraph
    from harness.config import UsageError
    from harness.runs import read_meta, run_dir

    folders = []
    for path in runs:
        folder = run_dir(path)
        found = flamegraph.flamegraph_folder(folder, read_meta(folder / "run.json"))
        if found is None:
            raise UsageError(f"{path}: no flamegraphs (.folded files) found for this run; "
                             "--flamegraph-diff needs two runs made with flamegraphs")
        folders.append(found)
    written = flamegraph.write_diff(folders[0], folders[1], out_dir)
    if not written:
        raise UsageError(f"no backend is profiled in both {folders[0]} and {folders[1]}")
    return written


def _compare_operands(runs: list[Path], normalize: str | None) -> tuple[list[Path], str | None]:
    """BASELINE and CURRENT; ``--normalize BASELINE CURRENT`` reads as the default reference."""
    import backends
    from harness.compare import DEFAULT_NORMALIZE, GEMM_PEAK
    from harness.config import UsageError

    if (len(runs) == 1 and normalize not in (None, GEMM_PEAK)
            and normalize not in backends.names() and Path(normalize).exists()):
        runs, normalize = [Path(normalize), *runs], DEFAULT_NORMALIZE
    if len(runs) != 2:
        raise UsageError(f"compare takes two runs, BASELINE and CURRENT; got {len(runs)}")
    return runs, normalize


def cmd_history(args: argparse.Namespace, argv: list[str]) -> int:
    from harness import history

    if args.plot:
        history.check_plot_path(args.plot)
    table = history.gather(args.results_dir)
    history.write(table, args.results_dir / "history.csv")
    print(f"{len(table)} rows from {table['run_dir'].nunique()} runs: "
          f"{args.results_dir / 'history.csv'}")
    if args.plot:
        history.plot(table, args.plot)
        print(f"plot: {args.plot}")
    return 0


def sweep_cells(args: argparse.Namespace, argv: list[str]) -> list:
    """The run settings of every cell of ``sweep``'s grid, checked."""
    from harness import sweep
    from harness.config import parse_sizes

    grid = sweep.Grid(
        batch_sizes=sweep.parse_list("--batch-size", args.batch_size, int, "1,10,100,1000"),
        sizes=tuple(parse_sizes(text) for text in args.sizes),
        dtypes=sweep.parse_list("--dtype", args.dtype, sweep.parse_dtype, "float64,float32"),
        threads=sweep.parse_list("--threads", args.threads, sweep.parse_threads, "default,1,2"),
    )
    first = {"batch_size": grid.batch_sizes[0], "sizes": args.sizes[0],
             "dtype": grid.dtypes[0], "threads": grid.threads[0]}
    base = config_from_args(argparse.Namespace(**{**vars(args), **first}), argv)
    return grid.cells(base)


def cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.progress import SweepProgress
    from harness.sweep import format_winners, run_sweep

    cells = sweep_cells(args, argv)
    progress = SweepProgress()
    try:
        result = run_sweep(cells, budget=args.max_seconds_per_cell, observer=progress)
    finally:
        progress.close()
    print(format_winners(result.winners))
    if result.interrupted:
        print("interrupted: the completed cells are kept", file=sys.stderr)
    print(f"results: {result.sweep_dir}")
    print(f"report: {result.report.resolve().as_uri()}")
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
