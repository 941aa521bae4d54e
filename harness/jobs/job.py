"""What every child process that trains a backend starts from: the job (the run's
settings, the backend, the dataset), the trainer built from the seeded
parameters, the arrays it trains on, and the shuffle of every epoch.

Shared by the timed worker (``harness.running.worker``), the profiled process,
the allocation counter and the counted child (``harness.profiling``: the last is
``instructions_worker``, run under valgrind), so that all of them train on the
same arrays from the same parameters in the same order; it sits below both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.config import RunConfig

if TYPE_CHECKING:
    from backends.base import Trainer
    from harness.data.catalogue import Dataset


@dataclass(frozen=True)
class Job:
    """What a worker needs: the run's settings, the backend, the dataset to load."""

    config: RunConfig
    backend: str
    dataset: str  # resolved: never "auto", so every worker loads the same data
    run_id: str


def epoch_orders(seed: int, n_samples: int):
    """The shuffle of every epoch, warm-up included: the same for every backend.

    Drawn from its own stream so that it does not depend on how the parameters
    were initialised.
    """
    rng = np.random.default_rng([seed, 1])
    while True:
        yield rng.permutation(n_samples)


def _limit_threads(threads: int | None):
    """Set BLAS (and Numba) threads before the backend's modules are imported."""
    if threads is not None:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    from threadpoolctl import threadpool_info, threadpool_limits

    limiter = threadpool_limits(limits=threads, user_api="blas") if threads else None
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return limiter, (threads or (blas[0] if blas else os.cpu_count() or 1))


@dataclass
class Setup:
    """A trainer ready to train, and the arrays it trains and is evaluated on."""

    trainer: Trainer
    data: Dataset
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    threads: int


def prepare(job: Job) -> Setup:
    """Limit threads, load the data and build the trainer, as every child process does.

    Shared by the timed worker and the profiled one, so that both train on the
    same arrays from the same parameters.
    """
    import backends
    from backends.base import init_params, trainer_threads
    from harness.data.catalogue import load_dataset

    cfg = job.config
    _, threads = _limit_threads(cfg.threads)
    data = load_dataset(
        job.dataset, data_dir=cfg.data_dir, n_train=cfg.n_train,
        input_size=cfg.sizes[0], seed=cfg.seed, download=False,
    )
    # Converted once, outside the timed region: every backend gets contiguous
    # arrays of its dtype and starts from the same parameters.
    X = np.ascontiguousarray(data.train_images, dtype=cfg.dtype)
    y = np.ascontiguousarray(data.train_labels)
    X_test = np.ascontiguousarray(data.test_images, dtype=cfg.dtype)
    # None unless --threads was given: each backend then keeps its own default
    # (numpy-gemm: one BLAS thread) and reports the count it uses as ``threads``.
    trainer = backends.create(job.backend, init_params(cfg.sizes, cfg.seed), cfg.dtype,
                              cfg.threads)
    threads = trainer_threads(trainer) or threads
    return Setup(trainer, data, X, y, X_test, threads)
