"""harness/storage.py: the run-folder format, written and read in one place, and
a corrupted folder read back by the commands as one line naming the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from harness_runs import rows
from test_compare import noisy, write_run

from harness import storage
from harness.__main__ import main
from harness.records import EpochRecord
from harness.storage import FORMAT_VERSION, RunFolderError, RunWriter, load_run

ROOT = Path(__file__).resolve().parents[1]


def record(epoch: int, seconds: float, backend: str = "numpy-gemm") -> EpochRecord:
    return EpochRecord(run_id="r1", timestamp="2026-01-01T00:00:00+00:00", backend=backend,
                       dtype="float64", sizes="784,30,10", batch_size=10, eta=3.0, seed=0,
                       dataset="mnist-sample", n_train=100, threads=1, epoch=epoch,
                       seconds=seconds, samples_per_s=100.0, gflops=1.0,
                       accuracy=0.5, eval_seconds=0.01)


def test_a_run_folder_written_is_read_back_with_its_version(tmp_path):
    writer = RunWriter(tmp_path / "r1", {"run_id": "r1"})
    meta = json.loads((tmp_path / "r1" / "run.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["run_id"] == "r1"
    assert pd.read_csv(tmp_path / "r1" / "epochs.csv").empty  # a header from the start
    for epoch, seconds in enumerate([0.3, 0.1, 0.2], 1):
        writer.add(record(epoch, seconds))
    writer.update_meta(finished="now")
    run = load_run(tmp_path / "r1")
    assert list(run.epochs["seconds"]) == [0.3, 0.1, 0.2]
    assert run.meta["finished"] == "now" and run.label == "r1"
    assert not list((tmp_path / "r1").glob(".*.tmp"))  # atomic writes leave nothing behind


def test_an_unknown_format_version_is_a_clear_error(tmp_path):
    RunWriter(tmp_path / "r1", {"run_id": "r1"}).add(record(1, 0.1))
    path = tmp_path / "r1" / "run.json"
    path.write_text(json.dumps({"run_id": "r1", "format_version": 99}))
    with pytest.raises(RunFolderError, match=r"run\.json: format_version 99 is not one .* \(1\)"):
        load_run(tmp_path / "r1")


def test_a_folder_without_a_version_reads_as_version_1(tmp_path):
    """Folders written before run.json carried format_version are version 1."""
    RunWriter(tmp_path / "r1", {"run_id": "r1"}).add(record(1, 0.1))
    path = tmp_path / "r1" / "run.json"
    path.write_text(json.dumps({"run_id": "r1"}))
    assert storage.check_version(json.loads(path.read_text()), path) == 1
    assert list(load_run(tmp_path / "r1").epochs["seconds"]) == [0.1]


def test_the_committed_baselines_hold_the_gates_runs_one_kind_of_machine_each():
    kinds = sorted(p for p in (ROOT / "results" / "baseline").iterdir() if p.is_dir())
    assert kinds, "results/baseline holds the gate's runs, a folder per kind of machine"
    for kind in kinds:
        folders = sorted(kind.glob("*/run.json"))
        assert folders, f"{kind.name} holds runs"
        metas = [json.loads(p.read_text()) for p in folders]
        assert all(storage.check_version(m, p) == 1 for m, p in zip(metas, folders))
        # every run in a kind's folder was measured on that kind of machine
        for meta in metas:
            blas = [p for p in meta["blas"] if p["user_api"] == "blas"]
            assert meta.get("machine_key", kind.name) == kind.name
            assert kind.name.startswith(machine_key_prefix(meta["cpu_model"]))
            kernels = f"{blas[0]['internal_api']}-{blas[0]['architecture']}".lower()
            assert kind.name.endswith(kernels)
        pooled = load_run(kind)
        assert len(pooled.meta["pooled_runs"]) == len(folders)
        assert {"numpy-per-sample", "numpy-gemm"} <= set(pooled.epochs["backend"])


def machine_key_prefix(cpu_model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_model.lower().replace("(r)", "")).strip("-")


def test_only_the_epochs_that_stand_are_read(tmp_path):
    writer = RunWriter(tmp_path / "r1", {})
    writer.add(record(1, 0.2))
    writer.add(record(2, 0.0))  # no time: not a measurement
    writer.records.append(EpochRecord(**{**record(3, 0.4).to_row(), "status": "diverged"}))
    writer.add(record(4, 0.3))
    assert list(load_run(tmp_path / "r1").epochs["epoch"]) == [1, 4]
    rows = storage.read_standing_rows(tmp_path / "r1" / storage.EPOCHS_CSV)
    assert [r["epoch"] for r in rows] == [1, 4]  # what the report plots, too


def test_the_report_reads_missing_or_empty_tables_as_no_rows(tmp_path):
    assert storage.read_rows(tmp_path / storage.HOT_FUNCTIONS_CSV) == []
    (tmp_path / storage.SUMMARY_CSV).write_text("")
    assert storage.read_rows(tmp_path / storage.SUMMARY_CSV) == []
    assert storage.read_standing_rows(tmp_path / storage.EPOCHS_CSV) == []
    (tmp_path / storage.EPOCHS_CSV).write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(RunFolderError, match="epochs.csv: not a readable CSV"):
        storage.read_rows(tmp_path / storage.EPOCHS_CSV)


def test_the_sweep_and_history_files_are_named_here(tmp_path):
    sweep = storage.SweepWriter(tmp_path / "s1", {"sweep_id": "s1"})
    sweep.frame(pd.DataFrame({"cell": [0]}))
    sweep.winners(pd.DataFrame({"winner": ["numba"]}))
    sweep.update_meta(exit_code=0)
    assert sweep.cells_dir == tmp_path / "s1" / "cells"
    meta = json.loads((tmp_path / "s1" / "sweep.json").read_text())
    assert meta == {"format_version": FORMAT_VERSION, "sweep_id": "s1", "exit_code": 0}
    assert pd.read_csv(tmp_path / "s1" / "winners.csv")["winner"].tolist() == ["numba"]
    path = storage.write_history(pd.DataFrame({"backend": ["jax"]}), tmp_path)
    assert path == tmp_path / "history.csv" and path.read_text() == "backend\njax\n"


def counts(backend: str, values: list[int]) -> pd.DataFrame:
    rows = [{"backend": backend, "dtype": "float64", "sizes": "784,30,10", "batch_size": 10,
             "eta": 3.0, "dataset": "mnist-sample", "n_train": 2000, "threads": 1,
             "count": 0, "epoch": e, "instructions": n} for e, n in enumerate(values, 1)]
    return pd.DataFrame(rows)


def test_instruction_counts_are_optional_and_pooled_runs_number_theirs_apart(tmp_path):
    for name, values in (("a", [100, 101]), ("b", [102, 103])):
        writer = RunWriter(tmp_path / "pool" / name, {"run_id": name})
        writer.add(record(1, 0.1))
        writer.instructions(counts("numpy-gemm", values))
    uncounted = RunWriter(tmp_path / "pool" / "c", {"run_id": "c"})
    uncounted.add(record(1, 0.1))
    assert load_run(tmp_path / "pool" / "c").instructions is None  # as older folders read
    one = load_run(tmp_path / "pool" / "a").instructions
    assert list(one.columns) == storage.INSTRUCTION_COLUMNS and one["sizes"].iloc[0] == "784,30,10"
    pooled = load_run(tmp_path / "pool").instructions
    assert pooled["instructions"].tolist() == [100, 101, 102, 103]
    assert pooled["count"].tolist() == [0, 0, 1, 1]


def test_an_instructions_csv_without_its_columns_is_a_clear_error(tmp_path):
    RunWriter(tmp_path / "r1", {"run_id": "r1"}).add(record(1, 0.1))
    (tmp_path / "r1" / storage.INSTRUCTIONS_CSV).write_text("backend,epoch\nnumpy-gemm,1\n")
    with pytest.raises(RunFolderError, match=r"instructions.csv: missing column\(s\) dtype"):
        load_run(tmp_path / "r1")


# Corrupted run folders ------------------------------------------------------

def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) - 12])  # into the last record


def _drop_seconds(path: Path) -> None:
    rows(path).drop(columns="seconds").to_csv(path, index=False)


def _break_json(path: Path) -> None:
    path.write_text(path.read_text()[:-20])


CORRUPTIONS = [("epochs.csv", _truncate, "incomplete"),
               ("epochs.csv", _drop_seconds, "missing column(s) seconds"),
               ("run.json", _break_json, "not readable JSON")]


@pytest.mark.parametrize(("name", "corrupt", "said"), CORRUPTIONS)
@pytest.mark.parametrize("command", ["compare", "history", "report"])
def test_a_corrupted_run_folder_exits_2_naming_the_file(tmp_path, capsys, name, corrupt, said,
                                                        command):
    results = tmp_path / "results"
    good = write_run(results / "good", {"numpy-gemm": noisy(0.1)},
                     meta={"git_commit": "a" * 40, "started": "2026-01-01T00:00:00+00:00"})
    bad = write_run(results / "bad", {"numpy-gemm": noisy(0.2)},
                    meta={"git_commit": "b" * 40, "started": "2026-01-02T00:00:00+00:00"})
    corrupt(bad / name)
    args = {"compare": [str(good), str(bad)], "history": ["--results-dir", str(results)],
            "report": [str(bad)]}[command]
    assert main([command, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert str(bad / name) in err and said in err
