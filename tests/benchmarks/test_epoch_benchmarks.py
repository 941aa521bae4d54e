"""One epoch of every installed backend, for pytest-benchmark's own storage and
comparison (--benchmark-autosave, --benchmark-compare, --benchmark-compare-fail).

Left out of the unit tests (pyproject's addopts); run with
``python -m pytest tests/benchmarks -p no:cacheprovider --benchmark-enable``.
Every round builds a fresh trainer from the same parameters and trains it one
untimed warm-up epoch first, as a run's worker does, so that JIT compilation and
per-trainer caches (JAX compiles per trainer) stay out of the timed epoch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import backends
from backends.base import epoch_flops, init_params
from harness.data.catalogue import load_dataset
from harness.jobs.job import epoch_orders

DATASET, N_TRAIN, SIZES, BATCH_SIZE, ETA, DTYPE, SEED = (
    "mnist-sample", 5000, (784, 30, 10), 10, 3.0, "float64", 0)
ROUNDS = 5
GROUP = (f"epoch: {DATASET} n={N_TRAIN} [{','.join(map(str, SIZES))}] batch {BATCH_SIZE} "
         f"{DTYPE}")


@pytest.fixture(scope="module")
def workload():
    data = load_dataset(DATASET, n_train=N_TRAIN, download=False)
    X = np.ascontiguousarray(data.train_images, dtype=DTYPE)
    y = np.ascontiguousarray(data.train_labels)
    warmup_order, timed_order = itertools.islice(epoch_orders(SEED, len(X)), 2)
    return X, y, warmup_order, timed_order


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("backend", backends.available())
def test_epoch(benchmark, workload, backend):
    X, y, warmup_order, timed_order = workload

    def fresh_trainer():
        trainer = backends.create(backend, init_params(SIZES, SEED), DTYPE)
        trainer.train_epoch(X, y, warmup_order, BATCH_SIZE, ETA)
        return (trainer,), {}

    def one_epoch(trainer):
        trainer.train_epoch(X, y, timed_order, BATCH_SIZE, ETA)

    benchmark.pedantic(one_epoch, setup=fresh_trainer, rounds=ROUNDS, iterations=1)
    flops = epoch_flops(SIZES, N_TRAIN, BATCH_SIZE)
    benchmark.extra_info.update(backend=backend, dataset=DATASET, n_train=N_TRAIN,
                                sizes=list(SIZES), batch_size=BATCH_SIZE, dtype=DTYPE,
                                epoch_flops=flops)
    if benchmark.stats:  # None with --benchmark-disable
        benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9
