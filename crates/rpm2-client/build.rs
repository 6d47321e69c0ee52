//! `RPM2_SOURCE_ID`: a digest of the daemon's sources (this crate and the
//! crates the daemon is built from). `rpm2` starts the `rpm2-daemon` beside
//! it only when that executable reports the same digest, so a daemon left
//! by an older build is never started by a newer `rpm2`.
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The daemon's crates, relative to this one.
const CRATES: &[&str] = &[
    "rpm2-client",
    "rpm2-core",
    "rpm2-proto",
    "rpm2-logs",
    "rpm2-node-ipc",
    "rpm2-config",
    "rpm2-daemon",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let crates = here.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut all = Vec::new();
    for name in CRATES {
        for part in ["src", "preload", "Cargo.toml"] {
            let path = crates.join(name).join(part);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
                if path.is_dir() {
                    files(&path, &mut all);
                } else {
                    all.push(path);
                }
            }
        }
    }
    all.sort();
    // Fixed keys: the same sources give the same digest (with one compiler,
    // which builds both executables).
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    for path in &all {
        path.strip_prefix(&crates).unwrap_or(path).hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    println!("cargo:rustc-env=RPM2_SOURCE_ID={:016x}", hasher.finish());
}
