"""What the scripts beside this one share: the synthetic problem (at [784, 30,
10] unless asked) and the timing of an epoch. Run them from the checkout's root with its venv."""

import time

import numpy as np

SIZES = [784, 30, 10]
ETA = 3.0


def problem(dtype: str, n: int = 50000, sizes: list[int] = SIZES):
    """(rng, X, y, weights, biases): n random samples and seeded parameters in ``dtype``;
    the rng goes on to draw the epochs' shuffles."""
    rng = np.random.default_rng(0)
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, 10, n).astype(np.int64)
    weights = [rng.standard_normal((b, a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((s, 1)).astype(dtype) for s in sizes[1:]]
    return rng, X, y, weights, biases


def epoch_seconds(trainer, rng, X, y, batch: int) -> float:
    """One epoch of ``trainer`` on a fresh shuffle, timed."""
    order = rng.permutation(len(X)).astype(np.int64)
    start = time.perf_counter()
    trainer.train_epoch(X, y, order, batch, ETA)
    return time.perf_counter() - start
