"""rust-fused, and rust-fused-parallel on one thread and on two, five epochs each in turn
on 50,000 synthetic samples: python one_or_two.py DTYPE BATCH [fused|team1|team2]."""

import sys

import numpy as np
from problem import epoch_seconds, problem

from backends.base import Params
from backends.rust_fused import RustFused
from backends.rust_fused_parallel import RustFusedParallel

dtype = sys.argv[1] if len(sys.argv) > 1 else "float64"
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 10
only = sys.argv[3] if len(sys.argv) > 3 else "all"
rng, X, y, weights, biases = problem(dtype)
params = Params(tuple(weights), tuple(biases))
trainers = {"fused": RustFused(params, dtype, threads=1),
            "team1": RustFusedParallel(params, dtype, threads=1),
            "team2": RustFusedParallel(params, dtype, threads=2)}
if only != "all":
    trainers = {only: trainers[only]}
seconds = {name: [] for name in trainers}
for _ in range(5):
    for name, trainer in trainers.items():
        seconds[name].append(epoch_seconds(trainer, rng, X, y, batch))
for name, s in seconds.items():
    print(f"{dtype} batch {batch} {name}: median {np.median(s):.4f} min {min(s):.4f}")
