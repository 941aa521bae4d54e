"""History of runs: every run folder in one table, ordered by date, and the plot."""

from __future__ import annotations

import pandas as pd
import pytest
from test_compare import noisy, write_run

from harness import storage
from harness.__main__ import main
from harness.compare import history
from harness.storage import RunFolderError

COMMITS = ["aaaaaaa1111", "bbbbbbb2222", "ccccccc3333+dirty"]


@pytest.fixture
def results(tmp_path):
    """Three runs written out of date order, a baseline among them, and one stopped
    before its first epoch (its epochs.csv, as the harness writes it first: a header)."""
    root = tmp_path / "results"
    dates = ["2026-01-03T00:00:00+00:00", "2026-01-01T00:00:00+00:00",
             "2026-01-02T00:00:00+00:00"]
    for i, (commit, date) in enumerate(zip(COMMITS, dates)):
        folder = root / ("baseline" if i == 1 else f"run-{i}")
        write_run(folder, {"numpy-per-sample": noisy(0.3 + i / 100),
                           "numpy-gemm": noisy(0.1 * (i + 1), i)},
                  meta={"git_commit": commit, "started": date})
    write_run(root / "run-0", {"jax": noisy(0.05)}, n_train=2000,  # another configuration
              meta={"git_commit": COMMITS[0], "started": dates[0]})
    (root / "stopped").mkdir()
    (root / "stopped" / "epochs.csv").write_text(",".join(storage.EPOCH_COLUMNS) + "\n")
    return root


def test_gather_orders_runs_by_date_with_commit_and_median(results):
    table = history.gather(results)
    assert list(table.columns) == history.HISTORY_COLUMNS
    assert list(dict.fromkeys(table["run_dir"])) == ["baseline", "run-2", "run-0"]
    gemm = table[table["backend"] == "numpy-gemm"].set_index("run_dir")
    assert gemm.loc["baseline", "commit"] == COMMITS[1]
    assert gemm.loc["run-2", "median_s"] == pytest.approx(float(pd.Series(noisy(0.3)).median()))
    assert set(table["epochs"]) == {len(noisy(1.0))}
    assert "stopped" not in set(table["run_dir"])


def test_cli_writes_history_csv_and_a_plot(results, capsys, tmp_path):
    for name in ("history.png", "history.svg"):
        assert main(["history", "--results-dir", str(results),
                     "--plot", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 1000
    written = pd.read_csv(results / "history.csv", dtype={"sizes": str})
    assert len(written) == len(history.gather(results))
    assert (tmp_path / "history.svg").read_text().lstrip().startswith("<?xml")
    assert "3 runs" in capsys.readouterr().out


def test_short_commit_marks_a_tree_with_changes():
    assert history.short_commit("ccccccc3333+dirty") == "ccccccc+"
    assert history.short_commit("ccccccc3333+dirty.0a1b2c3d") == "ccccccc+"
    assert history.short_commit("aaaaaaa1111") == "aaaaaaa"
    assert history.short_commit("") == "unknown"


def test_unusable_results_or_plot_name_exit_2(results, tmp_path, capsys):
    assert main(["history", "--results-dir", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["history", "--results-dir", str(tmp_path / "empty")]) == 2
    assert main(["history", "--results-dir", str(results), "--plot", str(tmp_path / "x.pdf")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "no run with timed epochs" in err and ".png or .svg" in err
    with pytest.raises(RunFolderError):
        history.gather(tmp_path / "empty")
