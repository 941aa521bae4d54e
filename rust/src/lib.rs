//! The Rust backends of nndl-bench: five strategies for the book's
//! `update_mini_batch`, each plain Rust over `ndarray` views and testable with
//! `cargo test`; `python` (feature "python") only converts arguments.
//!
//! - [`port`]: the ndarray port of `network.py` as the post wrote it, per-sample
//!   backprop on column vectors, and its batched and rayon forms.
//! - [`kernels`]: Rust written for the CPU: one call per epoch, nothing
//!   allocated in it, every inner loop vectorised for the running CPU; on one
//!   thread or on a team.
//! - [`strategy`]: which of them a trainer runs, on how many threads, and what
//!   it chose.
//!
//! Each module imports only those below it: `data` and `real` at the bottom,
//! then `port` and `kernels`, then `strategy`, then `python`.

// ndarray's `dot` calls CBLAS; these forward to the OpenBLAS NumPy runs (its
// ILP64 scipy_openblas, linked by build.rs), so that both share one BLAS.
pub mod cblas;
pub mod data;
pub mod kernels;
pub mod openblas;
pub mod port;
pub mod real;
pub mod strategy;

#[cfg(feature = "python")]
mod python;
