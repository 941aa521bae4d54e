"""What the four Rust backends share: the extension module and its wrapper.

The Rust side (``rust/``, built by maturin into the module ``nndl_bench_rust``)
views X, the labels and the shuffle order in place, releases the GIL for the
whole of ``train_epoch`` and raises TypeError or ValueError for a wrong dtype,
shape or index. Labels and order are handed over as int64, which is what NumPy
makes of them already (a copy only for other integer types).

The OpenBLAS the extension links is NumPy's own (the file NumPy bundles, loaded
once for both), so that the port and the Python it is compared with run the
same BLAS build on the same kernels. Its threads are pinned for each epoch
exactly as numpy-gemm pins them, to one unless ``threads`` asks for more, and
set back after; ``threads`` reports the count the run used.
"""

from __future__ import annotations

import time

import numpy as np

from backends.base import Params, predict_labels

MODULE = "nndl_bench_rust"
BUILD_HINT = "build the Rust extension with `make rust` (needs cargo)"


def extension():
    """The compiled module; ImportError with the build command where it is missing."""
    try:
        import nndl_bench_rust
    except ImportError as e:
        raise ImportError(f"the Rust extension {MODULE} is not built: {BUILD_HINT}") from e
    return nndl_bench_rust


# Enough samples that a probe takes milliseconds even at batch 1, and whole
# mini-batches of it; the best of a few repeats after one that warms up.
PROBE_SAMPLES = 1000
PROBE_BATCHES = 4
PROBE_REPEATS = 2


def probe_samples(batch_size: int) -> int:
    """How many samples a probe trains: whole mini-batches, at least PROBE_SAMPLES."""
    return max(PROBE_SAMPLES, PROBE_BATCHES * batch_size) // batch_size * batch_size


def time_in_turns(copies: dict, X, y, order, batch_size: int, eta: float) -> dict:
    """Best seconds of each copy's training on this epoch's first mini-batches
    (at least ``PROBE_SAMPLES`` samples). The copies take turns, so that a
    burst of load from elsewhere falls on all of them."""
    probe = _integers(order, "order")[:probe_samples(batch_size)]
    labels = _integers(y, "y")
    seconds = {key: float("inf") for key in copies}
    for repeat in range(PROBE_REPEATS + 1):
        for key, copy in copies.items():
            start = time.perf_counter()
            copy.train_epoch(X, labels, probe, batch_size, float(eta))
            if repeat:  # the first round touches the buffers and the caches
                seconds[key] = min(seconds[key], time.perf_counter() - start)
    return seconds


def _integers(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{what} must hold integers; got a {values.dtype} array")
    return np.ascontiguousarray(values, dtype=np.int64)


class RustTrainer:
    """A Trainer over one strategy of the extension's ``Trainer``."""

    name = ""
    strategy = ""

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 **options):
        self.dtype = np.dtype(dtype)
        p = params.astype(self.dtype)
        self._rust = extension().Trainer(self.strategy, self.dtype.name, list(p.weights),
                                         list(p.biases), threads=threads or 1, **options)
        self.threads = self._rust.threads

    def train_epoch(self, X, y, order, batch_size, eta):
        self._rust.train_epoch(X, _integers(y, "y"), _integers(order, "order"),
                               int(batch_size), float(eta))

    def predict(self, X):
        return predict_labels(self.params(), X)

    def params(self) -> Params:
        weights, biases = self._rust.params()
        return Params(tuple(weights), tuple(biases))
