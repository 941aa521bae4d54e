//! The post's port of `network.py` and the two forms it grew, as plain
//! ndarray code written the way the post wrote it: the baseline the kernels
//! are measured against, left unoptimised.
//!
//! - [`network`]: per-sample backprop on column vectors, as ported.
//! - [`batched`]: the same port with each mini-batch as one matrix, one GEMM per layer.
//! - [`parallel`]: the per-sample port with the samples of a mini-batch spread over rayon.

pub mod batched;
pub mod network;
pub mod parallel;

pub use network::Network;
