"""harness/files.py: a write that fails leaves the file's last complete version
and no temporary file, and a run that cannot write its folder says so in one line."""

from __future__ import annotations

import resource
import signal

import pytest
from harness_runs import TINY

from harness import files
from harness.__main__ import main


def test_an_unwritable_results_folder_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["run", "--backend", "numpy-gemm", "--no-flamegraphs", *TINY,
                 "--results-dir", str(tmp_path / "a-file" / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "a-file/results" in err and "cannot write" in err


def test_results_are_writable_after_a_write_fails(tmp_path):
    """A failed write leaves the file's last complete version, and no temporary file."""
    path = tmp_path / "epochs.csv"
    files.write_atomic(path, "a,b\n1,2\n")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, limit[1]))
        with pytest.raises(files.StorageError, match=r"epochs\.csv: cannot write"):
            files.write_atomic(path, "a,b\n" + "1,2\n" * 100)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert path.read_text() == "a,b\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["epochs.csv"]
