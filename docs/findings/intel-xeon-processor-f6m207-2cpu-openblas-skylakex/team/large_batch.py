"""Four epochs of the team of two at a large batch, each printed (scaled to
50,000 samples): python large_batch.py DTYPE HIDDEN BATCH. With phases.patch's
build first on PYTHONPATH each thread also prints its phases."""

import sys
import time

import numpy as np
from problem import problem

from backends.rust_extension import extension

dtype, hidden, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 20000
rng, X, y, weights, biases = problem(dtype, n, [784, hidden, 10])
trainer = extension().Trainer("fused-parallel", dtype, weights, biases, threads=2, parts=2)
seconds = []
for _ in range(4):
    order = rng.permutation(n).astype(np.int64)
    start = time.perf_counter()
    trainer.train_epoch(X, y, order, batch, 3.0)
    seconds.append((time.perf_counter() - start) * 50000 / n)
print(" ".join(f"{s:.3f}" for s in seconds))
