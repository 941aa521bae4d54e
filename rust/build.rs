//! Records what the extension was built with, for the run's metadata: the
//! compiler, the target and profile, and the locked versions of the crates
//! that do the arithmetic.

use std::env;
use std::fs;
use std::process::Command;

const CRATES: [&str; 7] = ["ndarray", "pyo3", "numpy", "rayon", "blas-src", "openblas-src", "matrixmultiply"];

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
