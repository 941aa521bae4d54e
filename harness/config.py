"""A run's settings, checked once, shared by the run and its workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from backends.base import DTYPES, validate_sizes


class UsageError(ValueError):
    """Settings that cannot describe a run; the message says which and what is accepted."""


@dataclass(frozen=True)
class RunConfig:
    backends: tuple[str, ...]
    epochs: int = 3
    warmup_epochs: int = 1
    sizes: tuple[int, ...] = (784, 30, 10)
    batch_size: int = 10
    eta: float = 3.0
    seed: int = 0
    dtype: str = "float64"
    dataset: str = "auto"
    data_dir: Path | None = None
    n_train: int | None = None
    threads: int | None = None
    results_dir: Path = Path("results")
    timeout: float | None = None
    download_timeout: float = 10.0  # all of a missing dataset's files and mirrors together
    peak_seconds: float = 1.0  # the GEMM peak calibration; 0 skips it
    argv: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _positive("--epochs", self.epochs)
        _positive("--batch-size", self.batch_size)
        if self.warmup_epochs < 0:
            raise UsageError(f"--warmup-epochs must be 0 or more, got {self.warmup_epochs}")
        if not self.eta > 0:
            raise UsageError(f"--eta must be positive, got {self.eta}")
        if self.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.n_train is not None:
            _positive("--n-train", self.n_train)
        if self.threads is not None:
            _positive("--threads", self.threads)
        if not self.peak_seconds >= 0:
            raise UsageError(f"--peak-seconds must be 0 or more, got {self.peak_seconds}")
        if self.timeout is not None and not self.timeout > 0:
            raise UsageError(f"--timeout must be positive seconds, got {self.timeout}")
        if not self.download_timeout > 0:
            raise UsageError(f"--download-timeout must be positive seconds, "
                             f"got {self.download_timeout}")
        try:
            validate_sizes(self.sizes)
        except ValueError as e:
            raise UsageError(f"--sizes: {e}") from None
        if not self.backends:
            raise UsageError("no backend to run")

    @property
    def sizes_label(self) -> str:
        return ",".join(map(str, self.sizes))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir) if self.data_dir else None
        d["results_dir"] = str(self.results_dir)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The settings :meth:`to_dict` wrote (in sweep.json, or sent to a worker)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for key in ("backends", "sizes", "argv"):
            if key in d:
                d[key] = tuple(d[key])
        if d.get("data_dir"):
            d["data_dir"] = Path(d["data_dir"])
        if "results_dir" in d:
            d["results_dir"] = Path(d["results_dir"])
        return cls(**d)


def _positive(option: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{option} must be a positive whole number, got {value}")
