//! Path helpers: `~` expansion, lexical `path.resolve`, `which`, and the
//! nearest package.json's version.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The `PATH` the CLI was started with; falls back to this process's own
/// when the caller gave no shell environment (the JS API).
pub(crate) fn path_var(shell_env: &BTreeMap<String, String>) -> Option<OsString> {
    match shell_env.get("PATH") {
        Some(p) => Some(p.into()),
        None if shell_env.is_empty() => std::env::var_os("PATH"),
        None => None,
    }
}

fn home(shell_env: &BTreeMap<String, String>) -> Option<PathBuf> {
    shell_env
        .get("HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
}

/// `~` and `~/x` → the home directory, as pm2 does for paths in configs.
pub(crate) fn expand_tilde(path: &str, shell_env: &BTreeMap<String, String>) -> PathBuf {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = home(shell_env) {
            return home.join(path.trim_start_matches('~').trim_start_matches('/'));
        }
    }
    PathBuf::from(path)
}

/// Node's `path.resolve(base, path)`: absolute, `.` and `..` removed
/// lexically (symlinks are kept, so `pm_exec_path` shows what the user wrote).
pub(crate) fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolves a path option against the app's cwd, with `~` expansion.
pub(crate) fn resolve_in(cwd: &Path, path: &str, shell_env: &BTreeMap<String, String>) -> PathBuf {
    absolute(cwd, &expand_tilde(path, shell_env))
}

/// `which`: the first executable file named `name` in `PATH`.
pub(crate) fn which(name: &str, path_var: Option<&OsString>) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// A program given by name (looked up in `PATH`) or by path (resolved
/// against `cwd`), as for `interpreter`.
pub(crate) fn find_program(
    program: &str,
    cwd: &Path,
    shell_env: &BTreeMap<String, String>,
) -> Option<PathBuf> {
    if program.contains('/') || program.starts_with('~') {
        let path = resolve_in(cwd, program, shell_env);
        return path.is_file().then_some(path);
    }
    which(program, path_var(shell_env).as_ref())
}

/// `version` of the nearest package.json above `dir`, which `list` shows.
pub(crate) fn package_version(dir: &Path) -> Option<String> {
    let mut dir = Some(dir);
    while let Some(d) = dir {
        let manifest = d.join("package.json");
        if manifest.is_file() {
            let text = std::fs::read_to_string(manifest).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            return json.get("version")?.as_str().map(str::to_owned);
        }
        dir = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_like_node() {
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("./c/../d.js")),
            PathBuf::from("/a/b/d.js")
        );
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("/x/./y")),
            PathBuf::from("/x/y")
        );
        let env: BTreeMap<_, _> = [("HOME".to_owned(), "/home/u".to_owned())].into();
        assert_eq!(expand_tilde("~/app", &env), PathBuf::from("/home/u/app"));
        assert_eq!(expand_tilde("a~", &env), PathBuf::from("a~"));
    }
}
