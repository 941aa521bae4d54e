"""harness/running/worker.py and manager.py: a worker trains one backend and
reports every epoch; the manager turns its messages, or its end, into an outcome."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from backends.base import init_params
from backends.numpy_gemm import NumpyGemm
from harness.config import RunConfig
from harness.data.catalogue import load_dataset
from harness.jobs.job import Job, epoch_orders
from harness.records import FAILED, OK, TIMEOUT
from harness.running import worker
from harness.running.manager import run_worker


def job(backend: str, epochs: int = 2) -> Job:
    config = RunConfig(backends=(backend,), epochs=epochs, warmup_epochs=1,
                       dataset="mnist-sample", n_train=300, peak_seconds=0)
    return Job(config, backend, "mnist-sample", "run-1")


def messages(job: Job) -> list[tuple]:
    """Every message a worker sends, with the worker run in this process."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    worker.main(job, sender)
    out = []
    while True:
        try:
            out.append(receiver.recv())
        except EOFError:  # the worker closed its end: nothing more to come
            return out


def test_a_worker_reports_the_epochs_it_trained(plugins):
    sent = messages(job("numpy-gemm"))
    kinds = [m[0] for m in sent]
    assert kinds == ["started", "warmup", "epoch", "epoch", "done"]
    assert sent[0][1] == {"threads": 1}  # numpy-gemm keeps BLAS on one thread
    records = [m[1] for m in sent if m[0] == "epoch"]
    assert [r.epoch for r in records] == [1, 2] and all(r.status == OK for r in records)
    assert all(r.n_train == 300 and r.dataset == "mnist-sample" for r in records)
    # The same training done here, from the same parameters and shuffles, scores the same.
    data = load_dataset("mnist-sample", n_train=300)
    trainer = NumpyGemm(init_params((784, 30, 10), 0))
    orders = epoch_orders(0, 300)
    X = np.ascontiguousarray(data.train_images, dtype="float64")
    for _ in range(3):
        trainer.train_epoch(X, data.train_labels, next(orders), 10, 3.0)
    accuracy = float(np.mean(trainer.predict(data.test_images) == data.test_labels))
    assert records[-1].accuracy == accuracy
    assert sent[-1][1]["compile_seconds"] is None  # numpy compiles nothing
    assert sent[-1][1]["peak_rss_mb"] > 0


def test_a_backend_that_raises_is_reported_as_failed(plugins):
    sent = messages(job("fails"))
    assert [m[0] for m in sent] == ["started", "warmup", "error"]  # fails in the first timed
    _, status, message, trace = sent[-1]
    assert status == FAILED and message == "RuntimeError: deliberate failure in the second epoch"
    assert "train_epoch" in trace


@pytest.mark.slow
def test_the_manager_hands_on_each_epoch_as_it_arrives(plugins):
    seen, warmups = [], []
    outcome = run_worker(job("numpy-gemm", epochs=3), on_epoch=seen.append,
                         on_warmup=warmups.append)
    assert outcome.status == OK and outcome.ok and outcome.threads == 1
    assert [r.epoch for r in seen] == [1, 2, 3] and outcome.epochs == seen
    assert len(warmups) == 1 and outcome.warmup_seconds == warmups


@pytest.mark.slow
def test_a_budget_ending_before_any_epoch_is_a_timeout(plugins, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP_SECONDS", "30")
    outcome = run_worker(job("sleepy"), budget=0.5)
    assert outcome.status == TIMEOUT and not outcome.epochs
    assert "stopped after 0 epochs at the 0.5 s budget" in outcome.message
