"""One epoch of every installed backend, for pytest-benchmark's own storage and
comparison (--benchmark-autosave, --benchmark-compare, --benchmark-compare-fail).

Left out of the unit tests (pyproject's addopts); run with
``python -m pytest tests/benchmarks -p no:cacheprovider --benchmark-enable``.
Every round builds a fresh trainer from the same parameters and trains it one
untimed warm-up epoch first, as a run's worker does, so that JIT compilation and
per-trainer caches (JAX compiles per trainer) stay out of the timed epoch.

With ``NNDL_BENCH_COUNT_INSTRUCTIONS=1`` (and valgrind installed) every backend's
instructions per epoch are counted too, once per session and all backends at
once (``harness.profiling.instructions``, minutes under valgrind), and recorded in
each benchmark's ``extra_info``: ``instructions_per_epoch`` and its spread, on
the counted workload (2,000 samples, one thread), which ``instructions_workload``
describes. Counts of the same code move by hundredths of a percent, where times
move by tens.
"""

from __future__ import annotations

import itertools
import os
import shutil

import numpy as np
import pytest

import backends
from backends.base import epoch_flops, init_params
from harness.config import RunConfig
from harness.data.catalogue import load_dataset
from harness.jobs.job import epoch_orders
from harness.profiling import instructions

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


@pytest.fixture(scope="session")
def instruction_counts(request) -> dict:
    """The count of every backend this session benchmarks (but those valgrind is too
    slow for), made once; {} unless NNDL_BENCH_COUNT_INSTRUCTIONS=1 and valgrind is
    installed."""
    if os.environ.get("NNDL_BENCH_COUNT_INSTRUCTIONS") != "1" or not shutil.which("valgrind"):
        return {}
    selected = {item.callspec.params.get("backend") for item in request.session.items
                if hasattr(item, "callspec")}
    names = [b for b in backends.available() if b in selected and b not in instructions.LEFT_OUT]
    config = RunConfig(backends=tuple(names), sizes=SIZES, batch_size=BATCH_SIZE, eta=ETA,
                       dtype=DTYPE, seed=SEED)
    found = instructions.count_all(config, names, "pytest-benchmark")
    workload = instructions.description(config, instructions.available(), {})["workload"]
    return {b: {"instructions_per_epoch": c.median, "instructions_spread_pct": c.spread_pct,
                "instructions_workload": workload}
            for b, c in found.items() if isinstance(c, instructions.InstructionCount)}


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("backend", backends.available())
def test_epoch(benchmark, workload, instruction_counts, backend):
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
                                epoch_flops=flops, **instruction_counts.get(backend, {}))
    if benchmark.stats:  # None with --benchmark-disable
        benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9
