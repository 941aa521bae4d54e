"""The records a run produces: one per timed epoch, one per backend."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Status of a backend in a run; anything but "ok" makes the run exit 1.
OK = "ok"
FAILED = "failed"  # the trainer raised
DIVERGED = "diverged"  # the parameters became NaN or infinite
CRASHED = "crashed"  # the worker process died (a signal, the OOM killer)
TIMEOUT = "timeout"  # the worker ran past --timeout and was stopped
INTERRUPTED = "interrupted"  # the run was stopped (Ctrl-C) during this backend
CUT_SHORT = "cut-short"  # a time budget ended the backend early; its epochs stand
LOST = "lost"  # a sweep's cell whose cluster worker died or left while it ran
# The backend statuses whose timed epochs stand as measurements.
STANDING = (OK, CUT_SHORT)


@dataclass(frozen=True)
class EpochRecord:
    """One timed epoch of one backend: a row of epochs.csv."""

    run_id: str
    timestamp: str
    backend: str
    dtype: str
    sizes: str
    batch_size: int
    eta: float
    seed: int
    dataset: str
    n_train: int
    threads: int
    epoch: int
    seconds: float
    samples_per_s: float
    gflops: float
    accuracy: float
    eval_seconds: float
    status: str = OK

    def to_row(self) -> dict:
        return asdict(self)


@dataclass
class BackendOutcome:
    """How one backend's worker ended, and what it measured outside the epochs."""

    backend: str
    status: str = OK
    message: str = ""
    traceback: str = ""  # of an exception the trainer raised
    warmup_seconds: list[float] = field(default_factory=list)
    compile_seconds: float | None = None
    peak_rss_mb: float | None = None
    threads: int | None = None
    choices: dict | None = None  # what the trainer chose for this machine (Trainer.choices)
    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in STANDING
