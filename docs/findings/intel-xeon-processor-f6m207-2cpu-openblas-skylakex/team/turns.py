"""Six epochs of 50,000 samples of one trainer, the first dropped: python turns.py
DTYPE BATCH THREADS KIND, KIND "team" (rust-fused-parallel's kernel, THREADS threads
and parts) or "fused" (rust-fused's tiles kernel). Prints the median and least of the five."""

import statistics
import sys

from problem import epoch_seconds, problem

from backends.rust_extension import extension

dtype, batch, threads, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng, X, y, weights, biases = problem(dtype, 50000)
if kind == "team":
    trainer = extension().Trainer("fused-parallel", dtype, weights, biases, threads=threads,
                                  parts=threads)
else:
    trainer = extension().Trainer("fused", dtype, weights, biases)
    trainer.set_kernel("tiles")
seconds = [epoch_seconds(trainer, rng, X, y, batch) for _ in range(6)][1:]
print(f"median {statistics.median(seconds):.4f} least {min(seconds):.4f}")
