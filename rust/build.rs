//! Finds and links the OpenBLAS NumPy runs, and records what the extension
//! was built with, for the run's metadata: the compiler, the target and
//! profile, the locked versions of the crates that do the arithmetic, and the
//! OpenBLAS file and version.
//!
//! The OpenBLAS, in this order (Linux: an ILP64 scipy_openblas, whose symbols
//! are `scipy_cblas_dgemm64_` and so on; see src/cblas.rs):
//! 1. `$NNDL_OPENBLAS`, a path to the library file;
//! 2. the one NumPy loads (its wheels' `numpy.libs/libscipy_openblas64_-<hash>.so`),
//!    asked of the Python that maturin builds for (`$PYO3_PYTHON`; else the
//!    active venv's, `$VIRTUAL_ENV`; else `python3`);
//! 3. the `scipy-openblas64` package of that Python (pip install scipy-openblas64),
//!    for a NumPy that carries none (conda's, Debian's).
//!
//! Linking NumPy's own file by its path, with an rpath to its folder, makes the
//! loader, which finds that SONAME already loaded by NumPy, map it once: NumPy
//! and the extension then share one OpenBLAS, one thread pool and one choice of
//! kernels. The rpath also lets `cargo test` binaries load it without Python.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const CRATES: [&str; 7] = ["ndarray", "pyo3", "numpy", "rayon", "cblas-sys", "libc", "matrixmultiply"];
const LIBRARY_VARIABLE: &str = "NNDL_OPENBLAS";
// The ILP64 scipy_openblas's GEMM, the symbol src/cblas.rs calls.
const GEMM_SYMBOL: &str = "scipy_cblas_dgemm64_";

// Run by the chosen Python, with the path of $NNDL_OPENBLAS or nothing as its
// argument; prints the library's path, where it was found, and its config.
const PROBE: &str = r#"
import ctypes, os, sys

def numpys():
    import numpy  # noqa: F401 - maps the OpenBLAS it runs
    with open("/proc/self/maps") as maps:
        paths = [line.split(None, 5)[-1].strip() for line in maps if "/" in line]
    return next((p for p in paths if os.path.basename(p).startswith("libscipy_openblas64_")), None)

def packaged():
    import scipy_openblas64
    return os.path.join(scipy_openblas64.get_lib_dir(), f"lib{scipy_openblas64.get_library()}.so")

path, source = (sys.argv[1], "NNDL_OPENBLAS") if len(sys.argv) > 1 else (None, None)
for name, find in (("numpy", numpys), ("scipy-openblas64", packaged)):
    if path is None:
        try:
            path, source = find(), name
        except ImportError:
            pass
if path is None:
    sys.exit("neither NumPy's bundled scipy_openblas64 nor the scipy-openblas64 package is installed")
lib = ctypes.CDLL(path)
if not hasattr(lib, "GEMM_SYMBOL"):
    sys.exit(f"{path} defines no GEMM_SYMBOL: not an ILP64 scipy_openblas")
lib.scipy_openblas_get_config64_.restype = ctypes.c_char_p
print(os.path.realpath(path), source, lib.scipy_openblas_get_config64_().decode(), sep="\n")
"#;

fn main() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=NNDL_RUSTC_VERSION={version}");
    for key in ["TARGET", "PROFILE", "OPT_LEVEL", "DEBUG"] {
        println!("cargo:rustc-env=NNDL_BUILD_{key}={}", env::var(key).unwrap_or_default());
    }
    println!("cargo:rustc-env=NNDL_CRATE_VERSIONS={}", locked_versions());
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    link_openblas();
}

/// Links the OpenBLAS found by [`find_openblas`] and records it; stops the build,
/// saying what to install, where there is none.
fn link_openblas() {
    for variable in [LIBRARY_VARIABLE, "PYO3_PYTHON", "VIRTUAL_ENV"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    let (path, source, config) = find_openblas().unwrap_or_else(|why| {
        eprintln!(
            "error: no OpenBLAS to link the Rust extension to: {why}.\n\
             The extension links the OpenBLAS NumPy runs. Build with the venv's Python \
             (PYO3_PYTHON=/abs/path/.venv/bin/python; `make rust` does), or `pip install scipy-openblas64` \
             into it, or set {LIBRARY_VARIABLE} to the path of an ILP64 scipy_openblas library \
             (libscipy_openblas64_*.so)."
        );
        exit(1)
    });
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(file)) => (dir.display().to_string(), file.to_string_lossy().into_owned()),
        _ => {
            eprintln!("error: {} is not a library file ({source})", path.display());
            exit(1)
        }
    };
    println!("cargo:rustc-link-search=native={dir}");
    // The exact file (its name carries NumPy's hash), not a lib<name>.so to look for.
    println!("cargo:rustc-link-lib=dylib:+verbatim={file}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-env=NNDL_OPENBLAS_PATH={}", path.display());
    println!("cargo:rustc-env=NNDL_OPENBLAS_FROM={source}");
    let version = config.split_whitespace().nth(1).unwrap_or_default();
    println!("cargo:rustc-env=NNDL_OPENBLAS_VERSION={version}");
}

/// (the library's path, where it was found, its `openblas_get_config()`).
fn find_openblas() -> Result<(PathBuf, String, String), String> {
    let given = env::var_os(LIBRARY_VARIABLE).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = &given {
        if !path.is_file() {
            return Err(format!("{LIBRARY_VARIABLE}={} is not a file", path.display()));
        }
    }
    let python = python();
    let mut command = Command::new(&python);
    command.arg("-c").arg(PROBE.replace("GEMM_SYMBOL", GEMM_SYMBOL));
    command.args(given.iter());
    let output = command.output().map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().lines().last().unwrap_or_default().to_string();
        return Err(format!("{} says: {why}", python.display()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    match (lines.next(), lines.next(), lines.next()) {
        (Some(path), Some(source), Some(config)) => Ok((PathBuf::from(path), source.into(), config.into())),
        _ => Err(format!("{} printed no library: {stdout:?}", python.display())),
    }
}

/// The Python to ask: maturin's (PYO3_PYTHON), else the active venv's, else python3.
fn python() -> PathBuf {
    if let Some(python) = env::var_os("PYO3_PYTHON").filter(|v| !v.is_empty()) {
        return python.into();
    }
    if let Some(venv) = env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()) {
        let python = Path::new(&venv).join("bin").join("python");
        if python.is_file() {
            return python;
        }
    }
    "python3".into()
}

/// "name version" of each of `CRATES` in Cargo.lock, comma-separated.
fn locked_versions() -> String {
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if CRATES.contains(&n.as_str()) {
                found.push(format!("{n} {}", value.trim_matches('"')));
            }
        }
    }
    found.join(",")
}
