"""Comparing runs: bootstrap verdicts on epoch samples built here, the
normalization that tells a slower machine from a slower backend, the exit codes
of the command line, and a gate over real runs with a deliberate slowdown."""

from __future__ import annotations

import json
import os
import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import storage
from harness.__main__ import main
from harness.compare.compare import FASTER, IS_REFERENCE, SLOWER, WITHIN_NOISE, compare
from harness.compare.rendering import render
from harness.config import RunConfig
from harness.running.run import execute
from harness.storage import RunFolderError, load_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = dict(dtype="float64", sizes="784,30,10", batch_size=10, eta=3.0, seed=0,
              dataset="mnist-sample", n_train=8000, threads=2)
# Epoch-to-epoch noise of a shared machine: about +-10%, one epoch hit harder.
NOISE = np.array([1.00, 1.06, 0.95, 1.02, 0.97, 1.09, 0.93, 1.25])


def write_run(folder: Path, times: dict[str, np.ndarray], meta: dict | None = None,
              **config) -> Path:
    """A run folder as `harness run` writes it: epochs.csv and run.json."""
    settings = {**CONFIG, **config}
    rows = [{"run_id": folder.name, "timestamp": "2026-01-01T00:00:00+00:00", "backend": b,
             **settings, "epoch": i + 1, "seconds": s, "samples_per_s": 1.0, "gflops": 1.0,
             "accuracy": 0.9, "eval_seconds": 0.01, "status": "ok"}
            for b, seconds in times.items() for i, s in enumerate(seconds)]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=storage.EPOCH_COLUMNS).to_csv(folder / "epochs.csv", index=False)
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, **(meta or {})}))
    return folder


def noisy(median: float, shift: int = 0) -> np.ndarray:
    """Epoch times around ``median`` with the noise above, in another order per ``shift``."""
    return median * np.roll(NOISE, shift)


def verdicts(comparison) -> dict[str, str]:
    return dict(zip(comparison.rows["backend"], comparison.rows["verdict"]))


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_verdicts_follow_the_interval_not_one_number(tmp_path):
    base = write_run(tmp_path / "base", {"a": noisy(1.0), "b": noisy(1.0), "c": noisy(1.0)})
    cur = write_run(tmp_path / "cur", {"a": noisy(1.5, 3), "b": noisy(0.6, 5),
                                       "c": noisy(1.03, 2)})
    result = compare(load_run(base), load_run(cur))
    assert verdicts(result) == {"a": SLOWER, "b": FASTER, "c": WITHIN_NOISE}
    rows = result.rows.set_index("backend")
    assert rows.loc["a", "ratio"] == pytest.approx(np.median(noisy(1.5)) / np.median(noisy(1.0)))
    assert rows.loc["a", "ci_low"] > 1 and rows.loc["b", "ci_high"] < 1
    assert rows.loc["c", "ci_low"] < 1 < rows.loc["c", "ci_high"]
    assert (rows["baseline_epochs"] == len(NOISE)).all()


def test_the_bootstrap_is_seeded(tmp_path):
    base = write_run(tmp_path / "base", {"a": noisy(1.0)})
    cur = write_run(tmp_path / "cur", {"a": noisy(1.1, 4)})
    first, again = (compare(load_run(base), load_run(cur), seed=7) for _ in range(2))
    other = compare(load_run(base), load_run(cur), seed=8)
    pd.testing.assert_frame_equal(first.rows, again.rows)
    assert first.rows["ci_low"].iloc[0] != other.rows["ci_low"].iloc[0]


def test_backends_on_one_side_only_are_listed_not_errors(tmp_path):
    base = write_run(tmp_path / "base", {"a": noisy(1.0), "gone": noisy(1.0)})
    cur = write_run(tmp_path / "cur", {"a": noisy(1.0, 1), "new": noisy(1.0)})
    result = compare(load_run(base), load_run(cur))
    assert list(result.rows["backend"]) == ["a"]
    assert [b for b, _ in result.added] == ["new"] and [b for b, _ in result.removed] == ["gone"]
    text = render(result)
    assert "added: new" in text and "removed: gone" in text


def test_a_uniformly_slower_machine_is_not_a_regression_once_normalized(tmp_path):
    ref = "numpy-per-sample"
    base = write_run(tmp_path / "base", {ref: noisy(0.3), "gemm": noisy(0.1, 1),
                                         "jax": noisy(0.08, 2)})
    # Every backend 1.5x slower (another machine), and jax 2x slower on top of it.
    cur = write_run(tmp_path / "cur", {ref: noisy(0.45, 4), "gemm": noisy(0.15, 6),
                                       "jax": noisy(0.08 * 1.5 * 2, 3)})
    raw = compare(load_run(base), load_run(cur))
    assert verdicts(raw) == {ref: SLOWER, "gemm": SLOWER, "jax": SLOWER}
    normalized = compare(load_run(base), load_run(cur), normalize=ref)
    assert verdicts(normalized) == {ref: IS_REFERENCE, "gemm": WITHIN_NOISE, "jax": SLOWER}
    rows = normalized.rows.set_index("backend")
    assert rows.loc[ref, "ratio"] == 1.0
    assert rows.loc["jax", "ratio"] == pytest.approx(2.0, rel=0.1)
    assert rows.loc["jax", "time_ratio"] == pytest.approx(3.0, rel=0.1)
    assert "1 by construction" in render(normalized)


def _mixed_threads_run(folder: Path, ref_median: float, gemm_median: float) -> Path:
    """As a default run records them: numpy-gemm on 1 BLAS thread, the reference on 2."""
    write_run(folder / "gemm", {"numpy-gemm": noisy(gemm_median)}, threads=1)
    write_run(folder, {"numpy-per-sample": noisy(ref_median, 2)}, threads=2)
    both = pd.concat([pd.read_csv(folder / "epochs.csv"),
                      pd.read_csv(folder / "gemm" / "epochs.csv")])
    both.to_csv(folder / "epochs.csv", index=False)
    shutil.rmtree(folder / "gemm")
    return folder


def test_the_reference_may_run_on_its_own_thread_count(tmp_path):
    base = _mixed_threads_run(tmp_path / "base", 0.3, 0.1)
    cur = _mixed_threads_run(tmp_path / "cur", 0.45, 0.3)  # gemm lost 2x against the reference
    result = compare(load_run(base), load_run(cur), "numpy-per-sample")
    assert verdicts(result)["numpy-gemm"] == SLOWER
    ratio = result.rows.set_index("backend").loc["numpy-gemm", "ratio"]
    assert ratio == pytest.approx(2.0, rel=0.1)


def test_normalizing_by_the_gemm_peak_of_each_run(tmp_path):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1), "jax": noisy(0.08)},
                     meta={"gemm_peak_gflops_all": 60.0})
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.15, 3), "jax": noisy(0.24, 5)},
                    meta={"peak": {"gemm_peak_gflops_all": 40.0}})  # also in a section
    result = compare(load_run(base), load_run(cur), normalize="gemm-peak")
    assert verdicts(result) == {"gemm": WITHIN_NOISE, "jax": SLOWER}
    assert result.rows.set_index("backend").loc["gemm", "ratio"] == pytest.approx(1.0, rel=0.05)


def test_gemm_peak_absent_is_a_usage_error(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.1)}, meta={"gemm_peak_gflops_all": 40})
    code, out, err = run_cli(["--normalize", "gemm-peak", base, cur], capsys)
    assert code == 2 and "gemm_peak_gflops_all" in err and str(base) in err
    assert len(err.strip().splitlines()) == 1


def test_reference_missing_from_a_run_is_a_usage_error(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1), "jax": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.1), "jax": noisy(0.1)})
    code, _, err = run_cli(["--normalize", "--fail-above", "10", base, cur], capsys)
    assert code == 2 and "numpy-per-sample" in err and "gemm, jax" in err


def test_fail_above_exits_1_only_beyond_the_threshold_with_confidence(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"ref": noisy(0.3), "gemm": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"ref": noisy(0.3, 2), "gemm": noisy(0.2, 5)})
    args = ["--normalize", "ref", base, cur]
    code, out, _ = run_cli(["--fail-above", "40", *args], capsys)
    assert code == 1 and "gate failed" in out and "gemm" in out
    code, out, _ = run_cli(["--fail-above", "150", *args], capsys)
    assert code == 0 and "gate passed" in out
    assert run_cli(args, capsys)[0] == 0  # no threshold: a report only


def test_normalize_before_the_runs_takes_the_default_reference(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"numpy-per-sample": noisy(0.3), "gemm": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"numpy-per-sample": noisy(0.3, 1), "gemm": noisy(0.1)})
    code, out, _ = run_cli(["--normalize", base, cur], capsys)
    assert code == 0 and "ratio / numpy-per-sample" in out


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("backend,seconds\nnumpy-gemm,0.1\n", "missing column(s) dtype, sizes"),
    (",".join(storage.EPOCH_COLUMNS) + "\n", "no timed epoch"),
])
def test_unreadable_epochs_exit_2_with_one_line(tmp_path, capsys, content, message):
    good = write_run(tmp_path / "good", {"gemm": noisy(0.1)})
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "epochs.csv").write_text(content)
    code, out, err = run_cli([good, bad / "epochs.csv"], capsys)
    assert code == 2 and out == ""
    assert message in err and str(bad / "epochs.csv") in err
    assert len(err.strip().splitlines()) == 1


def test_missing_run_folder_or_file_exits_2(tmp_path, capsys):
    good = write_run(tmp_path / "good", {"gemm": noisy(0.1)})
    code, _, err = run_cli([good, tmp_path / "nowhere"], capsys)
    assert code == 2 and "nowhere" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli([good, tmp_path / "empty"], capsys)
    assert code == 2 and "epochs.csv" in err and "not found" in err


def test_a_summary_path_reads_the_epochs_beside_it(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.1, 3)})
    (cur / "summary.csv").write_text("backend\n")
    code, out, _ = run_cli([base / "epochs.csv", cur / "summary.csv"], capsys)
    assert code == 0 and "within noise" in out


def test_a_folder_of_repeated_runs_is_read_as_one_run_pooled(tmp_path):
    write_run(tmp_path / "repeats" / "r1", {"gemm": noisy(0.1)}, meta={"git_commit": "abc"})
    write_run(tmp_path / "repeats" / "r2", {"gemm": noisy(0.3)})
    pooled = load_run(tmp_path / "repeats")
    assert len(pooled.epochs) == 2 * len(NOISE)
    assert pooled.meta["pooled_runs"] == ["r1", "r2"] and pooled.meta["git_commit"] == "abc"
    single = write_run(tmp_path / "single", {"gemm": noisy(0.1, 2)})
    row = compare(load_run(single), pooled).rows.iloc[0]
    assert row["current_epochs"] == 2 * len(NOISE)
    assert row["current_median_s"] == pytest.approx(np.median(np.r_[noisy(0.1), noisy(0.3)]))


def test_mismatched_configurations_exit_2(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1)}, n_train=8000)
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.1)}, n_train=2000)
    with pytest.raises(RunFolderError, match="no backend and configuration in common"):
        compare(load_run(base), load_run(cur))
    code, _, err = run_cli([base, cur], capsys)
    assert code == 2 and "n=8000" in err and "n=2000" in err


def test_markdown_is_a_table_for_a_pull_request(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"numpy-per-sample": noisy(0.3), "gemm": noisy(0.1)},
                     meta={"git_commit": "0123456789abcdef", "cpu_model": "Test CPU"})
    cur = write_run(tmp_path / "cur", {"numpy-per-sample": noisy(0.3, 2), "gemm": noisy(0.3)})
    code, out, _ = run_cli(["--normalize", "--fail-above", "50", "--format", "markdown",
                            base, cur], capsys)
    assert code == 1
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| backend"))
    assert set(lines[header + 1]) <= set("|-:")
    rows = [line for line in lines[header + 2:] if line.startswith("|")]
    assert len(rows) == 2 and all(r.count("|") == lines[header].count("|") for r in rows)
    assert "`gemm`" in rows[1] and "**slower**" in rows[1]
    assert "0123456789ab" in out and "Test CPU" in out and "**gate failed" in out


def test_csv_output_holds_every_row(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"gemm": noisy(0.1), "old": noisy(0.1)})
    cur = write_run(tmp_path / "cur", {"gemm": noisy(0.1, 1)})
    code, out, _ = run_cli(["--format", "csv", base, cur], capsys)
    frame = pd.read_csv(StringIO(out))
    assert code == 0 and list(frame["backend"]) == ["gemm", "old"]
    assert list(frame["verdict"]) == [WITHIN_NOISE, "removed"]


# A real gate over real runs: numpy-gemm doing every epoch six times in one series,
# judged with .ci/benchmark-gate's threshold. As the gate does, each side pools
# runs taken in turns, so that a burst of a neighbour's load is shared by all.
# The reference is numpy-gemm's own code under another name: the only difference
# the gate can see is then the slowdown, not how differently two kinds of code
# respond to that load (which the gate's longer measurements absorb).
GATE_THRESHOLD = "25"
ROUNDS = 2
TWIN = "twin=backends.numpy_gemm:NumpyGemm"
SLOWED = "numpy-gemm=fake_backends:SixTimesSlowerGemm"


def short_run(results_dir: Path) -> None:
    # No GEMM peak: the gate normalizes by the twin, and the peak's seconds were half the test's.
    config = RunConfig(backends=("twin", "numpy-gemm"), epochs=4, warmup_epochs=1,
                       dataset="mnist-sample", threads=1, peak_seconds=0,
                       results_dir=results_dir)
    assert execute(config).exit_code == 0


@pytest.mark.slow
def test_the_gate_catches_a_real_slowdown_and_passes_without_one(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    for _ in range(ROUNDS):
        monkeypatch.setenv("NNDL_BENCH_PLUGINS", TWIN)
        short_run(tmp_path / "baseline")
        short_run(tmp_path / "same")
        monkeypatch.setenv("NNDL_BENCH_PLUGINS", f"{TWIN},{SLOWED}")
        short_run(tmp_path / "slowed")
    gate = ["--normalize", "twin", "--fail-above", GATE_THRESHOLD, tmp_path / "baseline"]
    code, out, _ = run_cli([*gate, tmp_path / "slowed"], capsys)
    assert code == 1, out
    assert "gate failed" in out and "numpy-gemm" in out.split("gate failed")[1]
    code, out, _ = run_cli([*gate, tmp_path / "same"], capsys)
    assert code == 0, out


def test_the_workflow_compares_a_pull_requests_base_and_head_in_turn():
    """Pull requests run compare-commits on their base and head, with what it needs
    installed (maturin for a commit's Rust extension, valgrind from a fresh package
    list); no cache is saved that nothing restores."""
    workflow = (ROOT / ".github" / "workflows" / "benchmarks.yml").read_text()
    assert "actions/cache/save" not in workflow or "actions/cache/restore" in workflow
    assert '".[peers,build]"' in workflow
    assert workflow.index("apt-get update") < workflow.index("apt-get install")
    step = workflow.split("python -m harness compare-commits")[1].split("> comparison.md")[0]
    assert "pull_request.base.sha" in step and "pull_request.head.sha" in step
    assert step.index("base.sha") < step.index("head.sha")  # BASE, then HEAD
    assert "--count-fail-above 1" in step and "fetch-depth: 0" in workflow
