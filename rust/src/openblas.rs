//! The OpenBLAS this crate links, reached through its own C interface: its
//! thread count (NumPy's too: build.rs links the file NumPy loads, so the
//! process holds one OpenBLAS) and its build, for the run's record: the
//! configuration, the kernels chosen for this CPU, the version and the file.
//!
//! NumPy's scipy_openblas renames its symbols (`scipy_` before, `64_` after,
//! for its 64-bit integer build): `openblas_get_config` is
//! `scipy_openblas_get_config64_`. Its thread count and strings are C `int`s
//! and `char *` as in any OpenBLAS.

use std::ffi::{CStr, OsStr};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;

extern "C" {
    #[link_name = "scipy_openblas_set_num_threads64_"]
    fn openblas_set_num_threads(n: c_int);
    #[link_name = "scipy_openblas_get_num_threads64_"]
    fn openblas_get_num_threads() -> c_int;
    #[link_name = "scipy_openblas_get_config64_"]
    fn openblas_get_config() -> *const c_char;
    #[link_name = "scipy_openblas_get_corename64_"]
    fn openblas_get_corename() -> *const c_char;
}

/// The library build.rs linked, as it found it (NNDL_OPENBLAS, NumPy's, or scipy-openblas64's).
pub const LINKED_PATH: &str = env!("NNDL_OPENBLAS_PATH");
/// Where build.rs found it: "NNDL_OPENBLAS", "numpy" or "scipy-openblas64".
pub const LINKED_FROM: &str = env!("NNDL_OPENBLAS_FROM");
/// Its version at build time, from its `openblas_get_config()`.
pub const LINKED_VERSION: &str = env!("NNDL_OPENBLAS_VERSION");

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

/// The version from `openblas_get_config()`, e.g. "0.3.31.188.0": threadpoolctl's reading.
pub fn version() -> String {
    version_of(&config())
}

/// "OpenBLAS 0.3.31.188.0  USE64BITINT DYNAMIC_ARCH ..." -> "0.3.31.188.0".
pub fn version_of(config: &str) -> String {
    config.split_whitespace().nth(1).unwrap_or_default().to_string()
}

/// The file this process runs OpenBLAS from: the one that defines the GEMM
/// ndarray's products reach (dladdr); empty where the loader cannot say.
pub fn library() -> String {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address and fills `info`; the name it returns
    // is the loaded object's, valid while the library stays loaded (for good).
    let found = unsafe { libc::dladdr(crate::cblas::dgemm_address(), &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return String::new();
    }
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = std::path::Path::new(OsStr::from_bytes(name.to_bytes()));
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
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

    #[test]
    fn the_library_running_is_the_one_linked() {
        assert_eq!(version(), LINKED_VERSION);
        assert!(version().starts_with("0."), "{}", config());
        let linked = std::fs::canonicalize(LINKED_PATH).unwrap();
        assert_eq!(library(), linked.to_string_lossy(), "built against {LINKED_PATH} ({LINKED_FROM})");
    }

    #[test]
    fn the_version_is_the_configs_second_word() {
        assert_eq!(version_of("OpenBLAS 0.3.31.188.0  USE64BITINT DYNAMIC_ARCH"), "0.3.31.188.0");
        assert_eq!(version_of(""), "");
    }
}
