"""The HTML report built from a run folder's files alone, and `harness report`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from harness.__main__ import main
from harness.profiling import flamegraph
from harness.profiling.profile import WITHIN
from harness.reporting import html
from tests.test_flamegraph import flatten, phases


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.tables: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "table" and attrs.get("id"):
            self.tables.append(attrs["id"])


def run_folder(tmp_path: Path) -> Path:
    """A run folder as `run` leaves it, with one profiled backend and one failure."""
    run_dir = tmp_path / "results" / "20260101T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    flames = tmp_path / "flamegraphs" / run_dir.name
    flamegraph.write(flames, "numba", flamegraph.views(phases(), WITHIN), "numba", "")
    meta = {"run_id": run_dir.name, "started": "2026-01-01T00:00:00+00:00",
            "dataset": "mnist-sample", "config": {"backends": ["numba", "fails"], "epochs": 2},
            "cpu_model": "Test CPU 3000", "cpu_count": 2, "python": "3.11.7",
            "packages": {"numpy": "2.4.6", "torch": None}, "git_commit": "0123abc",
            "blas": [{"user_api": "blas", "internal_api": "openblas", "version": "0.3.31",
                      "num_threads": 2, "architecture": "Haswell", "filepath": "/x.so"}],
            "gemm_peak": {"gemm_peak_gflops_1thread": 50.0, "gemm_peak_gflops_all": 99.5,
                          "gemm_median_gflops_all": 61.3},
            "flamegraphs": str(Path("flamegraphs") / run_dir.name),
            "failures": [{"backend": "fails", "status": "failed",
                          "message": "RuntimeError: deliberate <failure>",
                          "traceback": "Traceback (most recent call last):\n  boom"}]}
    (run_dir / "run.json").write_text(json.dumps(meta))
    pd.DataFrame([{"run_id": run_dir.name, "backend": "numba", "status": "ok", "median_s": 0.08,
                   "min_s": 0.07, "max_s": 0.09, "speedup": 14.3},
                  {"run_id": run_dir.name, "backend": "fails", "status": "failed",
                   "message": "RuntimeError: deliberate <failure>"}]).to_csv(
        run_dir / "summary.csv", index=False)
    pd.DataFrame([{"backend": "numba", "epoch": e, "seconds": s}
                  for e, s in enumerate([0.07, 0.08, 0.09])]).to_csv(
        run_dir / "epochs.csv", index=False)
    pd.DataFrame([{"backend": "numba", "category": "jit", "share": 1.0}]).to_csv(
        run_dir / "time_breakdown.csv", index=False)
    return run_dir


def test_report_rebuilds_from_the_files_with_every_section(tmp_path, capsys):
    run_dir = run_folder(tmp_path)
    assert main(["report", str(run_dir)]) == 0
    index = run_dir / "index.html"
    assert index.as_uri() in capsys.readouterr().out
    text = index.read_text()
    parser = _Links()
    parser.feed(text)
    assert sorted(parser.tables) == ["blas-table", "summary-table"]
    svg_links = [href for href in parser.links if href.endswith(".svg")]
    assert svg_links and all((run_dir / href).is_file() for href in svg_links)
    for shown in ("Test CPU 3000", "openblas", "0.3.31", "99.5 GFLOP/s", "61.3 GFLOP/s (blas)",
                  "0123abc",
                  "14.30x", "deliberate &lt;failure&gt;", "Traceback (most recent call last)"):
        assert shown in text
    assert "torch" not in re.sub(r"<[^>]+>", " ", text.split('id="machine"')[1].split(
        "</section>")[0])  # a package that is not installed is left out
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text


def test_report_links_the_flamegraphs_of_a_run_written_before_stacks(tmp_path, capsys):
    run_dir = run_folder(tmp_path)
    flatten(tmp_path / "flamegraphs" / run_dir.name)
    assert main(["report", str(run_dir)]) == 0
    parser = _Links()
    parser.feed((run_dir / "index.html").read_text())
    svg_links = [href for href in parser.links if href.endswith(".svg")]
    assert [Path(href).name for href in svg_links] == ["numba.svg"]
    assert (run_dir / svg_links[0]).is_file()


def test_an_epoch_plot_has_a_dot_per_epoch_and_the_median():
    page = html.run_page({}, [{"backend": "a", "median_s": 2.0}],
                         [{"backend": "a", "seconds": s} for s in (1.0, 2.0, 4.0)],
                         [], [], [], {})
    assert page.count('class="epoch"') == 3
    assert "median 2.0000 s" in page


def test_report_of_a_folder_that_is_no_run_says_so(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "run.json" in err and "Traceback" not in err


def test_a_counted_run_shows_its_counts_and_how_they_were_made():
    meta = {"run_id": "r", "instructions": {
        "tool": "callgrind", "valgrind": "valgrind-3.19.0", "aslr": "off (setarch -R)",
        "workload": {"dataset": "mnist-sample", "n_train": 2000},
        "note": "valgrind emulates no AVX-512", "left_out": {"jax": "XLA compiles slowly"},
        "backends": {"rust-fused": {"median": 55931324.0, "per_epoch": [1, 2, 3],
                                    "spread_pct": 0.002, "choices": {"isa": "avx2+fma"}}}}}
    row = {"backend": "rust-fused", "status": "ok", "median_s": 0.01,
           "instructions_per_epoch": 55931324.0}
    page = html.run_page(meta, [row], [], [], [], [], {})
    assert "instructions/epoch" in page and "55,931,324" in page
    assert "Instruction counts" in page and "instruction set avx2+fma" in page
    assert "no AVX-512" in page and "left out: jax" in page
    uncounted = html.run_page({"run_id": "r"}, [{**row, "instructions_per_epoch": float("nan")}],
                              [], [], [], [], {})
    assert "instructions/epoch" not in uncounted and "Instruction counts" not in uncounted
    assert "allocations/epoch" not in page  # counted only when profiled: not in this run


def test_an_unstable_run_says_so_at_the_top():
    meta = {"run_id": "r", "unstable": {"backends": {"numba": "robust CV 12% > 10%"}}}
    page = html.run_page(meta, [], [], [], [], [], {})
    assert '<p class="warning">warning: numba may be unstable: robust CV 12% &gt; 10%</p>' in page
    assert 'class="warning"' not in html.run_page({"run_id": "r"}, [], [], [], [], [], {})
