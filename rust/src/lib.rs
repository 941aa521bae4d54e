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

// Links OpenBLAS (Debian's libopenblas through openblas-src's "system" feature)
// behind ndarray's `dot`.
extern crate blas_src;

pub mod batched;
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
