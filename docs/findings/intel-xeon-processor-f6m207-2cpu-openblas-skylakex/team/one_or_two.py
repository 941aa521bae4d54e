"""rust-fused, and rust-fused-parallel on one thread and on two, five epochs each in turn
on 50,000 synthetic samples: python one_or_two.py DTYPE BATCH [fused|team1|team2]."""
import sys, time
import numpy as np
from backends.base import Params
from backends.rust_fused_parallel import RustFusedParallel
from backends.rust_fused import RustFused

dtype = sys.argv[1] if len(sys.argv) > 1 else "float64"
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 10
only = sys.argv[3] if len(sys.argv) > 3 else "all"
rng = np.random.default_rng(0)
n = 50000
X = rng.random((n, 784)).astype(dtype)
y = rng.integers(0, 10, n)
sizes = [784, 30, 10]
w = tuple(rng.standard_normal((b, a)) for a, b in zip(sizes[:-1], sizes[1:]))
b = tuple(rng.standard_normal((s, 1)) for s in sizes[1:])
p = Params(w, b)
trainers = {"fused": RustFused(p, dtype, threads=1), "team1": RustFusedParallel(p, dtype, threads=1),
            "team2": RustFusedParallel(p, dtype, threads=2)}
if only != "all":
    trainers = {only: trainers[only]}
res = {k: [] for k in trainers}
for rep in range(5):
    for k, t in trainers.items():
        order = rng.permutation(n)
        s = time.perf_counter(); t.train_epoch(X, y, order, batch, 3.0); res[k].append(time.perf_counter() - s)
for k, v in res.items():
    print(f"{dtype} batch {batch} {k}: median {np.median(v):.4f} min {min(v):.4f}")
