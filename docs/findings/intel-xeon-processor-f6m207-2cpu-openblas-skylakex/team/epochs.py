"""Eight epochs of the team's kernel, each time printed: python epochs.py DTYPE BATCH
THREADS [N_TRAIN [PARTS]]."""

import sys

from problem import epoch_seconds, problem

from backends.rust_extension import extension

dtype, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 50000
parts = int(sys.argv[5]) if len(sys.argv) > 5 else 2
rng, X, y, weights, biases = problem(dtype, n)
trainer = extension().Trainer("fused-parallel", dtype, weights, biases, threads=threads,
                              parts=parts)
print(" ".join(f"{epoch_seconds(trainer, rng, X, y, batch):.4f}" for _ in range(8)))
