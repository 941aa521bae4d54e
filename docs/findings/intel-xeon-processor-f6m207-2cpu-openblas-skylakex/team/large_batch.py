"""Four epochs of the team of two at a large batch, each printed (scaled to
50,000 samples): python large_batch.py DTYPE HIDDEN BATCH. With phases.patch's
build first on PYTHONPATH each thread also prints its phases."""

import sys
import time

import numpy as np

from backends.rust_extension import extension

dtype, hidden, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 20000
rng = np.random.default_rng(0)
sizes = [784, hidden, 10]
X = rng.random((n, sizes[0])).astype(dtype)
y = rng.integers(0, 10, n).astype(np.int64)
weights = [rng.standard_normal((b, a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
biases = [rng.standard_normal((s, 1)).astype(dtype) for s in sizes[1:]]
trainer = extension().Trainer("fused-parallel", dtype, weights, biases, threads=2, parts=2)
seconds = []
for _ in range(4):
    order = rng.permutation(n).astype(np.int64)
    start = time.perf_counter()
    trainer.train_epoch(X, y, order, batch, 3.0)
    seconds.append((time.perf_counter() - start) * 50000 / n)
print(" ".join(f"{s:.3f}" for s in seconds))
