//! The Rust backends of nndl-bench: four strategies for the book's
//! `update_mini_batch`, each plain Rust over `ndarray` views and testable with
//! `cargo test`; `python` (feature "python") only converts arguments.
//!
//! - [`port`]: the ndarray port of `network.py`, per-sample backprop on column vectors.
//! - [`batched`]: the same port with each mini-batch as one matrix, one GEMM per layer.
//! - [`parallel`]: the per-sample port with the samples of a mini-batch spread over rayon.
//! - [`fused`]: a kernel written for the CPU: one call per epoch, nothing allocated in it.
//! - [`tiles`]: the fused kernel's first layer as register tiles over W1 transposed.
//! - [`team`]: the fused kernel's first layer split by rows over a team of threads.

pub mod batched;
// ndarray's `dot` calls CBLAS; these forward to the OpenBLAS NumPy runs (its
// ILP64 scipy_openblas, linked by build.rs), so that both share one BLAS.
pub mod cblas;
pub mod data;
pub mod fused;
pub mod openblas;
pub mod parallel;
pub mod port;
pub mod real;
pub mod simd;
pub mod team;
pub mod tiles;

#[cfg(feature = "python")]
mod python;
