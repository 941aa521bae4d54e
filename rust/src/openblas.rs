//! The OpenBLAS this crate links, reached through its own C interface: its
//! thread count (a second BLAS in the process beside NumPy's, pinned apart from
//! it) and its build configuration, for the run's record.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

extern "C" {
    fn openblas_set_num_threads(n: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_config() -> *const c_char;
    fn openblas_get_corename() -> *const c_char;
}

pub fn threads() -> usize {
    // SAFETY: a plain getter of OpenBLAS's global state.
    unsafe { openblas_get_num_threads() }.max(1) as usize
}

pub fn set_threads(n: usize) {
    // SAFETY: OpenBLAS clamps n to the threads it was built for.
    unsafe { openblas_set_num_threads(n.clamp(1, c_int::MAX as usize) as c_int) }
}

fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: OpenBLAS returns pointers to static NUL-terminated strings.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().trim().to_string()
}

/// `openblas_get_config()`: version, build options, the kernel target.
pub fn config() -> String {
    text(unsafe { openblas_get_config() })
}

/// The kernels OpenBLAS chose for this CPU at load time, e.g. "SkylakeX", "Haswell".
pub fn corename() -> String {
    text(unsafe { openblas_get_corename() })
}

/// Runs `f` with OpenBLAS on `n` threads and restores the previous count after,
/// as threadpoolctl's limit does for NumPy's BLAS.
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let before = threads();
    set_threads(n);
    let result = f();
    set_threads(before);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_is_set_and_restored() {
        let before = threads();
        let inside = with_threads(1, threads);
        assert_eq!(inside, 1);
        assert_eq!(threads(), before);
    }

    #[test]
    fn config_names_openblas() {
        assert!(config().to_lowercase().contains("openblas"), "{}", config());
        assert!(!corename().is_empty());
    }
}
