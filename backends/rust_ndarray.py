"""The original experiment's Rust port: ``network.py`` on ndarray and OpenBLAS.

A ``Network`` of ``Vec<Array2>`` weights and column-vector biases; per-sample
backprop with ``dot`` on column vectors (each a GEMM call with one column);
``nabla_b``/``nabla_w`` accumulated with ``+=`` over the mini-batch and applied
through ``mapv(|x| x * eta / nbatch)``, allocating wherever that code does
(``rust/src/port/network.rs``). It is the Rust baseline and is left unoptimised.
"""

from backends.rust_extension import RustTrainer


class RustNdarray(RustTrainer):
    name = "rust-ndarray"
    strategy = "port"
