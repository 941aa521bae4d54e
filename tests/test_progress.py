"""The sweep's progress lines: each cell as it starts, and the time left."""

from __future__ import annotations

import io

from harness.commands.progress import SweepProgress
from harness.records import BackendOutcome
from harness.running.sweep import Grid
from tests.test_sweep import base


def test_progress_shows_each_cell_and_the_time_left(tmp_path):
    now = [0.0]
    stream = io.StringIO()
    progress = SweepProgress(stream, bars=False, clock=lambda: now[0])
    cells = Grid(batch_sizes=(10, 100), sizes=((784, 30, 10),), dtypes=("float64",)).cells(
        base(tmp_path, ["numpy-gemm", "numpy-book"]))
    progress.sweep_started(cells)
    progress.cell_started(0, cells[0])
    now[0] = 30.0
    progress.backend_finished(BackendOutcome("numpy-gemm"))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sweep: 2 cells, 4 backend runs"
    assert "cell 1/2: 784,30,10 float64 batch 10 threads default" in lines
    assert lines[-1] == "sweep: 1/4 backend runs, 0:30 elapsed, about 1:30 left"
