"""harness/compare/commits.py and ``compare-commits``: two commits of a scratch
repository measured in turn; the commit that adds 2% instructions to a plugin
backend fails against its parent, the parent passes against itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.__main__ import main
from harness.compare import commits
from harness.config import UsageError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = '''"""numpy-gemm under another name: the backend the scratch commits change."""
import numpy as np

from backends.numpy_gemm import NumpyGemm


class Plugin(NumpyGemm):
    def train_epoch(self, X, y, order, batch_size, eta):
        super().train_epoch(X, y, order, batch_size, eta)
'''
# The change: np.exp over 5.5% of X's rows each epoch, about 2% more instructions.
EXTRA = "        np.exp(X[: max(1, int(len(X) * 0.055))])\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c",
                           "user.email=bench@example.com", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A repository of this harness and a plugin backend, in two commits: the
    plugin as numpy-gemm, then the plugin doing ~2% more instructions."""
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("harness", "backends"):
        shutil.copytree(ROOT / package, repo / package, ignore=ignore)
    # A quarter of the counted workload and two counted epochs, in both commits: the
    # test's time is valgrind's.
    counting = repo / "harness" / "profiling" / "instructions.py"
    text = counting.read_text()
    for setting, smaller in (("N_TRAIN = 2000", "N_TRAIN = 500"), ("EPOCHS = 3", "EPOCHS = 2")):
        assert f"\n{setting}\n" in text
        text = text.replace(f"\n{setting}\n", f"\n{smaller}\n")
    counting.write_text(text)
    (repo / "rust").mkdir()
    (repo / "rust" / "README").write_text("the extension's sources\n")
    (repo / "plugin_backend.py").write_text(PLUGIN)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "A plugin backend")
    (repo / "plugin_backend.py").write_text(PLUGIN + EXTRA)
    git(repo, "commit", "-qam", "The plugin computes np.exp over part of X")
    return repo


def test_the_rust_extension_is_built_only_where_rust_differs(scratch):
    assert not commits.rust_differs(scratch, "HEAD~1", "HEAD")
    (scratch / "rust" / "README").write_text("changed\n")
    git(scratch, "commit", "-qam", "Change the extension")
    assert commits.rust_differs(scratch, "HEAD~1", "HEAD")
    checkout = commits.Checkout("current", "abc", scratch / "wt")
    build, install = commits.build_commands(checkout, scratch / "ext")
    assert "maturin" in build and str(scratch / "wt" / "rust" / "Cargo.toml") in build
    assert "--auditwheel" in build and "skip" in build  # NumPy's OpenBLAS, not a copy
    assert "--target" in install and str(scratch / "ext" / "site") in install


@pytest.mark.parametrize("run_args, builds", [
    (["--backend", "numpy-gemm,numba"], False),
    (["--backend=numpy-gemm"], False),
    (["--backend", "numpy-gemm,rust-fused"], True),
    (["--backend", "all"], True),
    (["--dataset", "mnist-sample"], True),  # run's default: every backend
])
def test_the_extension_is_built_only_for_a_run_with_a_rust_backend(run_args, builds):
    assert commits.runs_rust(run_args) is builds


def test_a_checkout_runs_its_own_code_and_its_own_extension_first(tmp_path):
    plain = commits.Checkout("baseline", "abc", tmp_path / "wt")
    assert plain.environment({"PYTHONPATH": "/x"})["PYTHONPATH"] == os.pathsep.join(
        [str(tmp_path / "wt"), "/x"])
    built = commits.Checkout("current", "abc", tmp_path / "wt", tmp_path / "ext")
    assert built.environment({})["PYTHONPATH"].split(os.pathsep) == [
        str(tmp_path / "ext"), str(tmp_path / "wt")]


def test_an_unknown_commit_is_a_usage_error_that_names_it(scratch):
    with pytest.raises(UsageError, match=r"'nope' is no commit of"):
        commits.resolve(scratch, "nope")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_two_percent_more_instructions_fail_against_the_parent_only(scratch, monkeypatch,
                                                                   capsys, tmp_path):
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", "plugin=plugin_backend:Plugin")
    run = ["--backend", "plugin", "--dataset", "mnist-sample", "--n-train", "500",
           "--epochs", "2", "--threads", "1", "--peak-seconds", "0"]
    command = ["compare-commits", "--repo", str(scratch), "--rounds", "1"]
    monkeypatch.chdir(tmp_path)  # a relative --keep: read from inside each worktree too
    code = main([*command, "--keep", "kept", "HEAD~1", "HEAD", *run])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "gate failed: more instructions by more than 1%" in out
    assert re.search(r"plugin \(1\.0[12]\d*x", out.split("gate failed")[1])
    assert (tmp_path / "kept" / "timed" / "current").is_dir()
    assert git(scratch, "worktree", "list").count("\n") == 0  # the worktrees are removed
    code = main([*command, "HEAD~1", "HEAD~1", *run])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "gate passed: no backend more instructions" in out
