"""The team of two's ways with the rest of each mini-batch, in turns:
python rest.py DTYPE HIDDEN BATCH [ROUNDS [WAYS]]. Each round trains a whole
epoch of 20,000 samples each way (WAYS a comma list, by default every way
the extension has), "whole" first; printed per way, scaled to 50,000
samples, then the epochs' median and least, and the ratio of the medians,
"whole" over each."""

import statistics
import sys
import time

import numpy as np
from problem import problem

from backends.rust_extension import extension

dtype, hidden, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 6
n = 20000
rng, X, y, weights, biases = problem(dtype, n, [784, hidden, 10])
ways = sys.argv[5].split(",") if len(sys.argv) > 5 else ["whole", "by-samples"]
trainers = {w: extension().Trainer("fused-parallel", dtype, weights, biases, threads=2, parts=2,
                                   rest=w) for w in ways}
seconds = {w: [] for w in ways}
for r in range(rounds + 1):
    order = rng.permutation(n).astype(np.int64)
    for w in ways:
        start = time.perf_counter()
        trainers[w].train_epoch(X, y, order, batch, 3.0)
        if r:  # the first round warms up
            seconds[w].append((time.perf_counter() - start) * 50000 / n)
for w in ways:
    s = seconds[w]
    print(f"{w:>10}: " + " ".join(f"{v:.4f}" for v in s)
          + f"   median {statistics.median(s):.4f} least {min(s):.4f}")
for w in ways[1:]:
    ratio = statistics.median(seconds[ways[0]]) / statistics.median(seconds[w])
    print(f"{ways[0]} / {w}, medians: {ratio:.2f}x")
