"""The sweep: its grid, a small real sweep end to end, the winner map, the
per-cell budget and its command line (the progress it shows: test_progress.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.__main__ import build_parser, main
from harness.commands.options import parse_list
from harness.commands.sweep import sweep_cells
from harness.config import RunConfig, UsageError
from harness.records import CUT_SHORT, FAILED, OK, TIMEOUT
from harness.reporting.pages import draw_sweep
from harness.reporting.plots import FILES, FORMATS, backend_colours, winners_figure
from harness.reporting.tables import ours_text, peer_text, winner_grid
from harness.running.sweep import Grid, run_sweep, winner_map
from harness.summary import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def base(tmp_path, backends=("numpy-gemm",), **kw) -> RunConfig:
    settings = dict(epochs=1, warmup_epochs=1, dataset="mnist-sample", n_train=500,
                    results_dir=tmp_path)
    settings.update(kw)
    return RunConfig(backends=tuple(backends), **settings)


def test_grid_crosses_every_value_batch_size_fastest(tmp_path):
    grid = Grid(batch_sizes=(10, 100, 10), sizes=((784, 30, 10), (784, 100, 10)),
                dtypes=("float64", "float32"), threads=(None, 2))
    cells = grid.cells(base(tmp_path, eta=0.5))
    assert len(cells) == 2 * 2 * 2 * 2  # the repeated batch size counts once
    assert [(c.batch_size, c.threads) for c in cells[:4]] == [(10, None), (100, None),
                                                              (10, 2), (100, 2)]
    assert cells[0].sizes == (784, 30, 10) and cells[-1].sizes == (784, 100, 10)
    assert cells[0].dtype == "float64" and cells[-1].dtype == "float32"
    assert len(set(cells)) == len(cells)
    assert {c.eta for c in cells} == {0.5}  # the other settings come from the base


def test_grid_rejects_a_value_a_run_would_reject(tmp_path):
    with pytest.raises(UsageError, match="--batch-size"):
        Grid(batch_sizes=(10, 0)).cells(base(tmp_path))


@pytest.mark.parametrize("text", ["10,,100", "ten", ""])
def test_lists_that_do_not_parse_name_the_option(text):
    with pytest.raises(UsageError, match="--batch-size"):
        parse_list("--batch-size", text, int, "1,10")


def test_cli_lists_become_cells(tmp_path):
    argv = ["sweep", "--backend", "numpy-gemm", "--batch-size", "1,10", "--sizes", "784,30,10",
            "784,100,10", "--dtype", "float32", "--threads", "default,1",
            "--results-dir", str(tmp_path)]
    cells = sweep_cells(build_parser().parse_args(argv), argv)
    assert len(cells) == 2 * 2 * 1 * 2
    assert {c.sizes for c in cells} == {(784, 30, 10), (784, 100, 10)}
    assert {c.threads for c in cells} == {None, 1} and {c.dtype for c in cells} == {"float32"}


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "10,0"], "--batch-size"),
    (["--dtype", "float64,float16"], "--dtype"),
    (["--sizes", "784,30,10", "784,x"], "--sizes"),
    (["--threads", "two"], "--threads"),
    (["--max-seconds-per-cell", "0"], "--max-seconds-per-cell"),
    (["--batch-size", "501"], "larger than"),
])
def test_cli_rejects_bad_lists_with_one_line_and_exit_2(args, message, tmp_path, capsys):
    code = main(["sweep", "--backend", "numpy-gemm", "--dataset", "mnist-sample",
                 "--n-train", "500", "--results-dir", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_small_sweep_writes_a_row_per_cell_and_backend_and_the_plots(tmp_path):
    grid = Grid(batch_sizes=(10, 100), sizes=((784, 30, 10),), dtypes=("float64", "float32"))
    cells = grid.cells(base(tmp_path, ["numpy-gemm", "numpy-per-sample"]))
    result = run_sweep(cells, budget=60)
    assert result.exit_code == 0
    draw_sweep(result.sweep_dir, result.frame, result.winners)

    frame = pd.read_csv(result.sweep_dir / "sweep.csv")
    assert set(SUMMARY_COLUMNS) <= set(frame.columns)
    assert len(frame) == 4 * 2
    assert set(frame["status"]) == {OK}
    cells_seen = frame.groupby(["dtype", "batch_size"])["backend"].apply(sorted)
    assert all(b == ["numpy-gemm", "numpy-per-sample"] for b in cells_seen)
    # Every cell's run folder is inside the sweep's, and is a complete run.
    for run_dir in frame["run_dir"].unique():
        assert (result.sweep_dir / run_dir / "summary.csv").exists()

    # each row keeps its timed epochs, for the bootstrap of the winner map's lead
    epochs = [[float(v) for v in str(t).split(";")] for t in frame["epoch_seconds"]]
    assert all(len(e) == 1 and e[0] > 0 for e in epochs), epochs
    winners = pd.read_csv(result.sweep_dir / "winners.csv")
    assert len(winners) == 4 and set(winners["backends_timed"]) == {2}
    for name in FILES:
        for fmt in FORMATS:
            path = result.sweep_dir / f"{name}.{fmt}"
            assert path.stat().st_size > 0, path
        ET.parse(result.sweep_dir / f"{name}.svg")  # well-formed XML


def _row(cell, backend, seconds, status=OK, **kw):
    sizes, dtype, batch = cell
    return {"sizes": sizes, "dtype": dtype, "threads_requested": None, "batch_size": batch,
            "backend": backend, "status": status, "median_s": seconds, **kw}


def test_winner_map_names_the_fastest_and_its_lead():
    a, b, c, d = ("784,30,10", "float64", 10), ("784,30,10", "float64", 100), \
        ("784,30,10", "float32", 10), ("784,30,10", "float32", 100)
    frame = pd.DataFrame([
        _row(a, "numpy-gemm", 0.5), _row(a, "torch", 1.0), _row(a, "jax", 0.65),
        _row(a, "numba", 0.2, status=FAILED),  # fastest, but failed: not a winner
        _row(b, "numpy-gemm", 0.4), _row(b, "jax", 0.4), _row(b, "torch", 0.9),  # a tie
        _row(c, "numpy-gemm", np.nan, status=FAILED), _row(c, "torch", np.nan, status=TIMEOUT),
        _row(d, "numpy-book", 3.0, status=CUT_SHORT), _row(d, "numpy-gemm", np.nan, status=FAILED),
    ])
    winners = winner_map(frame).set_index("batch_size", append=True)
    first = winners.iloc[0]
    assert first["winner"] == "numpy-gemm" and first["runner_up"] == "jax"
    assert first["lead"] == pytest.approx(0.65 / 0.5)
    assert first["best_peer"] == "jax" and first["ours_vs_peer"] == pytest.approx(0.65 / 0.5)
    assert first["backends_timed"] == 3

    tie = winners.iloc[1]
    assert tie["winner"] == "numpy-gemm = jax" and tie["lead"] == 1.0
    assert tie["ours_vs_peer"] == 1.0

    none = winners.iloc[2]
    assert pd.isna(none["winner"]) and pd.isna(none["lead"]) and none["backends_timed"] == 0

    alone = winners.iloc[3]  # a cut-short backend's epochs stand
    assert alone["winner"] == "numpy-book" and pd.isna(alone["lead"])

    grid = winner_grid(winner_map(frame))
    assert grid.loc["784,30,10 float64", "batch 10"] == "numpy-gemm x1.30"
    assert grid.loc["784,30,10 float64", "batch 100"] == "numpy-gemm = jax x1.00"
    assert grid.loc["784,30,10 float32", "batch 10"] == "no result"
    assert grid.loc["784,30,10 float32", "batch 100"] == "numpy-book (alone)"


def test_the_lead_over_the_peers_counts_only_where_the_bootstrap_supports_it():
    a, b, c = ("784,30,10", "float64", 10), ("784,30,10", "float64", 100), \
        ("784,30,10", "float64", 1000)
    frame = pd.DataFrame([
        # ours clearly ahead: every epoch of ours beats every epoch of the peer's
        _row(a, "numba", 0.10, epoch_seconds="0.10;0.11;0.10;0.09;0.10"),
        _row(a, "jax", 0.20, epoch_seconds="0.20;0.21;0.19;0.20;0.20"),
        # ahead at the medians only: the epochs overlap
        _row(b, "numba", 0.10, epoch_seconds="0.10;0.30;0.05;0.10;0.31"),
        _row(b, "jax", 0.11, epoch_seconds="0.11;0.06;0.11;0.29;0.11"),
        # the peer ahead
        _row(c, "numba", 0.30, epoch_seconds="0.30;0.30;0.31"),
        _row(c, "torch", 0.15, epoch_seconds="0.15;0.15;0.16"),
    ])
    clear, overlap, behind = (row for _, row in winner_map(frame).iterrows())
    assert clear["ours_lead"] == "ours" and clear["ours_vs_peer_low"] > 1
    assert clear["ours_vs_peer_low"] <= clear["ours_vs_peer"] <= clear["ours_vs_peer_high"]
    assert overlap["ours_vs_peer"] > 1 and overlap["ours_vs_peer_low"] < 1
    assert overlap["ours_lead"] == "not supported"
    assert behind["ours_lead"] == "peer" and behind["ours_vs_peer_high"] < 1
    assert peer_text(clear) == "vs jax x2.00"
    assert peer_text(overlap) == "vs jax x1.10 (n.s.)"
    assert ours_text(behind) == "best of ours: numba x0.50"
    narrowly = pd.Series({"best_ours": "numba", "ours_vs_peer": 0.9, "ours_vs_peer_high": 1.1})
    assert ours_text(narrowly) == "best of ours: numba x0.90 (n.s.)"
    # the map's cells: ours against the peer where ours won, and where the peer did
    figure = winners_figure(winner_map(frame), backend_colours(frame["backend"]))
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert labels[0].endswith("vs jax x2.00") and labels[1].endswith("vs jax x1.10 (n.s.)")
    assert labels[2] == "torch\nx2.00\nbest of ours:\nnumba x0.50"


@pytest.mark.slow
def test_the_budget_cuts_a_slow_backend_short(tmp_path, plugins, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP_SECONDS", "0.7")
    cell = base(tmp_path, ["sleepy"], epochs=50, warmup_epochs=0)
    # The budget covers warm-up: a backend that cannot finish it has no timed epoch.
    stuck = base(tmp_path, ["sleepy"], epochs=50, warmup_epochs=50)
    result = run_sweep([cell, stuck], budget=4)
    frame = result.frame.set_index("cell")
    assert frame.loc[0, "status"] == CUT_SHORT
    assert 1 <= frame.loc[0, "epochs"] < 50 and frame.loc[0, "median_s"] > 0.7
    assert frame.loc[1, "status"] == TIMEOUT and frame.loc[1, "epochs"] == 0
    assert result.runs[0].exit_code == 0  # cut short is not a failure...
    assert result.exit_code == 1  # ...but no timed epoch at all is


def test_without_dask_a_serial_sweep_runs_and_cluster_says_what_to_install(tmp_path):
    """distributed is an optional extra: nothing but --cluster needs it."""
    script = f"""
import sys
sys.modules["distributed"] = sys.modules["dask"] = None  # as if not installed
from harness.__main__ import main
args = ["sweep", "--backend", "numpy-gemm", "--dataset", "mnist-sample", "--n-train", "300",
        "--epochs", "1", "--warmup-epochs", "0", "--peak-seconds", "0", "--batch-size", "100",
        "--dtype", "float64", "--sizes", "784,30,10", "--results-dir", {str(tmp_path)!r}]
print(main(args), main([*args, "--cluster", "local:1"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.split()[-2:] == ["0", "2"], done.stderr
    assert "needs Dask's distributed package" in done.stderr
