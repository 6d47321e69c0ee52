//! End-to-end tests of the public API with real files and the real `node`.
//! `formats`: file kinds, top-level shapes, entry points; `options`: per-app options.

use std::path::{Path, PathBuf};

use super::*;

mod formats;
mod health;
mod options;
mod props;

fn shell_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    env.insert("HOME".to_owned(), "/home/tester".to_owned());
    env.insert("SHELL_ONLY".to_owned(), "shell".to_owned());
    env.insert("SHARED".to_owned(), "from-shell".to_owned());
    env
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        cwd: dir.to_path_buf(),
        shell_env: shell_env(),
        ..LoadOptions::default()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A temp dir with `app.js` and `worker.js` in it.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app.js", "setInterval(() => {}, 1000);\n");
    write(dir.path(), "worker.js", "setInterval(() => {}, 1000);\n");
    dir
}

fn load(dir: &Path, name: &str, text: &str) -> Result<Loaded, ConfigError> {
    let path = write(dir, name, text);
    load_file(&path, &opts(dir))
}

fn cpus() -> u32 {
    resolve::cpu_count()
}
