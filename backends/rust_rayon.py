"""The per-sample Rust port with each mini-batch's samples spread over rayon.

The samples' gradients come back in sample order and are summed in that order
(``rust/src/port/parallel.rs``), so the result has the same bits on any number of
threads. ``threads`` is the size of the rayon pool (default 1, as for every
backend; the run's ``--threads`` sets it); each worker's small BLAS calls run
on one OpenBLAS thread.
"""

from backends.rust_extension import RustTrainer


class RustRayon(RustTrainer):
    name = "rust-rayon"
    strategy = "rayon"
