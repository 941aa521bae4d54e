"""The findings pages: written from the committed data alone, up to date with it,
and a run filed under its machine key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.__main__ import main
from harness.config import RunConfig, UsageError
from harness.reporting import findings
from harness.running.run import execute

DOCS = Path(__file__).resolve().parents[1] / "docs" / "findings"


@pytest.mark.parametrize("key", findings.machine_keys(DOCS))
def test_each_committed_page_is_what_its_data_writes(key):
    committed = (DOCS / f"{key}.md").read_text()
    assert committed == findings.page(DOCS, key), (
        f"docs/findings/{key}.md is out of date with its data: python -m harness findings")


def test_the_index_lists_every_machine():
    assert (DOCS / "README.md").read_text() == findings.index_page(DOCS)
    for key in findings.machine_keys(DOCS):
        assert f"]({key}.md)" in findings.index_page(DOCS)


def test_every_file_a_page_links_to_is_committed():
    for key in findings.machine_keys(DOCS):
        text = findings.page(DOCS, key)
        for target in findings.linked_files(text):
            assert (DOCS / target).exists(), f"{key}.md links to {target}, which is missing"


@pytest.mark.slow
def test_a_run_is_filed_under_its_machine_key_and_shown(tmp_path):
    config = RunConfig(backends=("numpy-per-sample", "numpy-gemm"), epochs=1, warmup_epochs=1,
                       dataset="mnist-sample", n_train=500, peak_seconds=0,
                       results_dir=tmp_path / "results")
    result = execute(config)
    out = tmp_path / "findings"
    assert main(["findings", "--findings-dir", str(out), "--add-run", str(result.run_dir)]) == 0
    key = json.loads((result.run_dir / "run.json").read_text())["machine_key"]
    filed = out / key / "runs" / result.run_id
    assert (filed / "summary.csv").is_file() and (filed / "run.json").is_file()
    text = (out / f"{key}.md").read_text()
    assert result.run_id in text and "numpy-gemm" in text and "## The machine" in text
    assert f"]({key}.md)" in (out / "README.md").read_text()


def test_a_folder_without_a_machine_key_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text('{"run_id": "x"}')
    with pytest.raises(UsageError, match="machine_key"):
        findings.add_run(tmp_path / "findings", tmp_path / "run")


def _counted_run(folder, key, counts):
    """A run folder that counted numpy-gemm: one process, its three counted epochs."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "machine_key": key}))
    rows = [f"numpy-gemm,float64,\"784,30,10\",10,3.0,mnist-sample,2000,1,0,{i},{n}"
            for i, n in enumerate(counts, start=1)]
    (folder / "instructions.csv").write_text(
        "backend,dtype,sizes,batch_size,eta,dataset,n_train,threads,count,epoch,instructions\n"
        + "\n".join(rows) + "\n")
    return folder


def test_counted_runs_are_pooled_into_one_spread_per_backend(tmp_path, capsys):
    runs = [_counted_run(tmp_path / "r1", "k", [1000, 1001, 999]),
            _counted_run(tmp_path / "r2", "k", [1002, 1000, 1000])]
    out = tmp_path / "findings"
    args = ["findings", "--findings-dir", str(out)]
    assert main([*args, *[a for r in runs for a in ("--add-counts", str(r))]]) == 0
    assert (out / "k" / "counts" / "r2" / "instructions.csv").is_file()
    text = (out / "k.md").read_text()
    assert "## Instruction counts" in text
    # two processes, six epochs, (1002 - 999) / 1000
    assert "| numpy-gemm | float64 [784,30,10] batch 10 n=2000 | 2 | 6 | 999 | 1,000 | 1,002 " \
           "| 0.300% |" in text


def test_a_run_without_counts_is_refused_as_counts(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text('{"run_id": "x", "machine_key": "k"}')
    with pytest.raises(UsageError, match="instructions.csv"):
        findings.add_run(tmp_path / "findings", tmp_path / "run", into=findings.COUNTS)
