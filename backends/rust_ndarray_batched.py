"""The Rust port's final form: each mini-batch as one matrix, one GEMM per layer.

The same ``Network`` as rust-ndarray, with the batch's samples as the columns
of an (n_in, m) matrix, so the forward pass, the backprop and the weight
gradient are each one GEMM per layer (``rust/src/port/batched.rs``), still written
as a port: every step returns a fresh array.
"""

from backends.rust_extension import RustTrainer


class RustNdarrayBatched(RustTrainer):
    name = "rust-ndarray-batched"
    strategy = "batched"
