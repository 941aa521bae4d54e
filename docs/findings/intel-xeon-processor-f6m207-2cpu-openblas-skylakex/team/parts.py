"""The team's epoch on one thread and one part, and on two threads with 2, 4, 8 and 16
parts, five epochs each in turn: python parts.py DTYPE BATCH."""

import sys

import numpy as np
from problem import epoch_seconds, problem

from backends.rust_extension import extension

dtype, batch = sys.argv[1], int(sys.argv[2])
rng, X, y, weights, biases = problem(dtype)
trainers = {f"t{t}p{p}": extension().Trainer("fused-parallel", dtype, weights, biases,
                                             threads=t, parts=p)
            for t, p in [(1, 1), (2, 2), (2, 4), (2, 8), (2, 16)]}
seconds = {name: [] for name in trainers}
for _ in range(5):
    for name, trainer in trainers.items():
        seconds[name].append(epoch_seconds(trainer, rng, X, y, batch))
print(dtype, batch, "  ".join(f"{name} {np.median(s):.4f}/{min(s):.4f}"
                              for name, s in seconds.items()))
