"""Progress of a run or a sweep on the terminal: bars on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from harness.config import RunConfig
from harness.records import BackendOutcome, EpochRecord
from harness.running.run import Observer
from harness.running.sweep import SweepObserver


class ConsoleProgress(Observer):
    # A sweep shows each backend's bar under its own, only while that backend runs.
    _backend_bar_position: int | None = None
    _leave_backend_bars = True

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None):
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self._bar = None

    def notice(self, message: str) -> None:
        self._write(f"note: {message}")

    def backend_started(self, backend: str, epochs: int, warmup_epochs: int) -> None:
        if self.bars:
            from tqdm import tqdm

            self._bar = tqdm(total=epochs + warmup_epochs, desc=f"{backend:>18}", unit="epoch",
                             file=self.stream, leave=self._leave_backend_bars,
                             position=self._backend_bar_position, dynamic_ncols=True)
        else:
            self._write(f"{backend}: {warmup_epochs} warm-up + {epochs} timed epochs")

    def warmup_done(self, backend: str, seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(f"warm-up {seconds:.2f} s")
        else:
            self._write(f"{backend}: warm-up epoch {seconds:.3f} s")

    def epoch_done(self, record: EpochRecord) -> None:
        text = f"{record.seconds:.3f} s, {record.accuracy:.2%}"
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(text)
        else:
            self._write(f"{record.backend}: epoch {record.epoch} {text}")

    def backend_finished(self, outcome: BackendOutcome) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if outcome.status != "ok":
            self._write(f"{outcome.backend}: {outcome.status}: {outcome.message}")

    def counting_allocations(self, backend: str) -> None:
        self._write(f"{backend}: counting allocations per epoch under memray")

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)


class SweepProgress(ConsoleProgress, SweepObserver):
    """A sweep on the terminal: a bar over every backend run of every cell, with the
    time left, above each backend's own bar (plain lines when not on a TTY)."""

    _backend_bar_position = 1
    _leave_backend_bars = False

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(stream, bars)
        self._clock = clock
        self._sweep_bar = None
        self._cells = self._total = self._done = 0
        self._started = 0.0

    def sweep_started(self, cells: Sequence[RunConfig], grid_size: int | None = None) -> None:
        self._cells, self._total = grid_size or len(cells), sum(len(c.backends) for c in cells)
        self._started = self._clock()
        if self.bars:
            from tqdm import tqdm

            # smoothing=0: the time left from the mean pace of the whole sweep so far
            self._sweep_bar = tqdm(total=self._total, desc="sweep", unit="run", position=0,
                                   file=self.stream, dynamic_ncols=True, smoothing=0)
        else:
            self._write(f"sweep: {len(cells)} cells, {self._total} backend runs")

    def cell_started(self, index: int, cell: RunConfig) -> None:
        threads = "default" if cell.threads is None else cell.threads
        text = (f"cell {index + 1}/{self._cells}: {cell.sizes_label} {cell.dtype} "
                f"batch {cell.batch_size} threads {threads}")
        if self._sweep_bar is not None:
            self._sweep_bar.set_postfix_str(text)
        else:
            self._write(text)

    def backend_finished(self, outcome: BackendOutcome) -> None:
        super().backend_finished(outcome)
        self._done += 1
        if self._sweep_bar is not None:
            self._sweep_bar.update(1)
        else:
            self._write(f"sweep: {self._done}/{self._total} backend runs, {self.time_left()}")

    def time_left(self) -> str:
        """'1:05 elapsed, about 3:20 left', from the mean time per backend run so far."""
        elapsed = self._clock() - self._started
        text = f"{_minutes(elapsed)} elapsed"
        if 0 < self._done <= self._total:
            text += f", about {_minutes(elapsed / self._done * (self._total - self._done))} left"
        return text

    def close(self) -> None:
        if self._sweep_bar is not None:
            self._sweep_bar.close()
            self._sweep_bar = None

    def _write(self, line: str) -> None:
        if self._sweep_bar is not None and self._bar is None:
            self._sweep_bar.write(line, file=self.stream)
        else:
            super()._write(line)


def _minutes(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:0{2 if hours else 1}d}:{rest % 60:02d}"
