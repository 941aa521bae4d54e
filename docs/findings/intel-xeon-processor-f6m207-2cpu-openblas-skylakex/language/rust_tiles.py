"""rust-fused held to its tiles kernel: the algorithm numba-tiles writes in Numba,
without the per-batch-size timing that may pick the sweep instead."""

from backends.rust_fused import RustFused


class RustTiles(RustFused):
    def __init__(self, params, dtype="float64", threads=None):
        super().__init__(params, dtype, threads, kernel="tiles")
