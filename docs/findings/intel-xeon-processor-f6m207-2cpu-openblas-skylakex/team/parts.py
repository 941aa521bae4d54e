"""The team's epoch on one thread and one part, and on two threads with 2, 4, 8 and 16
parts, five epochs each in turn: python parts.py DTYPE BATCH."""
import sys, time
import numpy as np
from backends.rust_extension import extension
dtype = sys.argv[1]; batch = int(sys.argv[2])
rng = np.random.default_rng(0)
n = 50000
X = rng.random((n, 784)).astype(dtype)
y = rng.integers(0, 10, n).astype(np.int64)
sizes = [784, 30, 10]
w = [rng.standard_normal((b, a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
b = [rng.standard_normal((s, 1)).astype(dtype) for s in sizes[1:]]
E = extension()
tr = {f"t{t}p{p}": E.Trainer("fused-parallel", dtype, w, b, threads=t, parts=p) for t, p in [(1,1),(2,2),(2,4),(2,8),(2,16)]}
res = {k: [] for k in tr}
for rep in range(5):
    for k, t in tr.items():
        order = rng.permutation(n).astype(np.int64)
        s = time.perf_counter(); t.train_epoch(X, y, order, batch, 3.0); res[k].append(time.perf_counter() - s)
print(dtype, batch, "  ".join(f"{k} {np.median(v):.4f}/{min(v):.4f}" for k, v in res.items()))
