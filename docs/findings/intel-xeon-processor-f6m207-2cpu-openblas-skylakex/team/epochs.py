"""Eight epochs of the team's kernel, each time printed: python epochs.py DTYPE BATCH
THREADS [N_TRAIN [PARTS]]."""
import sys, time
import numpy as np
from backends.rust_extension import extension
dtype = sys.argv[1]; batch = int(sys.argv[2]); threads = int(sys.argv[3])
rng = np.random.default_rng(0)
n = int(sys.argv[4]) if len(sys.argv) > 4 else 50000
X = rng.random((n, 784)).astype(dtype)
y = rng.integers(0, 10, n).astype(np.int64)
sizes = [784, 30, 10]
w = [rng.standard_normal((b, a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
b = [rng.standard_normal((s, 1)).astype(dtype) for s in sizes[1:]]
t = extension().Trainer("fused-parallel", dtype, w, b, threads=threads, parts=int(sys.argv[5]) if len(sys.argv) > 5 else 2)
for rep in range(8):
    order = rng.permutation(n).astype(np.int64)
    s = time.perf_counter(); t.train_epoch(X, y, order, batch, 3.0); print(f"{time.perf_counter() - s:.4f}", end=" ")
print()
