"""Progress of a run on the terminal: a bar per backend on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from harness.records import BackendOutcome, EpochRecord
from harness.run import Observer


class ConsoleProgress(Observer):
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
                             file=self.stream, leave=True, dynamic_ncols=True)
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

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
