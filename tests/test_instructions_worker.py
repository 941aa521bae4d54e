"""The counted child: a mark before every counted epoch and after the last,
the warm-up before them, and choices made by timing fixed first."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from harness.config import RunConfig
from harness.jobs.job import Job
from harness.profiling import instructions_worker


@pytest.fixture
def counting_backend(monkeypatch):
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", "fixable=fake_backends:FixesForCounting")
    # The child's set-up limits this process's threads, as it does a child's: the
    # variable Numba reads is restored after the test, and BLAS's limit on leaving
    # the limiter below, so that later tests start Numba's threads as they would.
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # what the set-up sets; undone after
    with threadpool_limits(limits=None):
        yield


def test_every_counted_epoch_lies_between_two_marks(counting_backend):
    cfg = RunConfig(backends=("fixable",), dataset="synthetic", n_train=200, warmup_epochs=2,
                    threads=1, peak_seconds=0)
    epochs_at_mark = []
    trainers = []

    def mark():
        from fake_backends import FixesForCounting

        trainers.extend(FixesForCounting.instances[-1:])
        epochs_at_mark.append(trainers[-1].calls)

    result = instructions_worker.run(Job(cfg, "fixable", "synthetic", "t"), 3, mark)
    # Two warm-up epochs before the first mark, then one epoch between marks.
    assert epochs_at_mark == [2, 3, 4, 5]
    assert trainers[-1].fixed_before_first_epoch
    assert result["epochs"] == 3 and result["threads"] == 1 and result["finite"]
    assert result["choices"] == {"kernel": "fixed"}
