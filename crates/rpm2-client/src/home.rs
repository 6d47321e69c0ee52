//! The `RPM2_HOME` layout (pm2's file names under our home): where the
//! daemon keeps its files and where clients find its socket.
//!
//! As in pm2 (`paths.js`), each path can be moved by an environment
//! variable (`PM2_PID_FILE_PATH=/run/pm2.pid`, …; see [`OVERRIDES`]). The
//! CLI reads them, and the daemon it starts inherits them.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One path of the layout that pm2 lets an environment variable move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathKey {
    /// The daemon's pid file (also its lock).
    PidFile,
    /// The daemon's own log.
    DaemonLog,
    DumpFile,
    DumpBackup,
    /// The default folder of app logs.
    LogsDir,
    /// The default folder of app pid files.
    PidsDir,
    /// `set`/`get` store (`module_conf.json`).
    ModuleConf,
    /// The control socket.
    RpcSocket,
}

impl PathKey {
    /// A folder (created when missing), not a file.
    #[must_use]
    pub fn is_dir(self) -> bool {
        matches!(self, Self::LogsDir | Self::PidsDir)
    }
}

/// pm2's variable for each overridable path (its `paths.js` key with the
/// `PM2_` prefix).
pub const OVERRIDES: &[(&str, PathKey)] = &[
    ("PM2_PID_FILE_PATH", PathKey::PidFile),
    ("PM2_LOG_FILE_PATH", PathKey::DaemonLog),
    ("PM2_DUMP_FILE_PATH", PathKey::DumpFile),
    ("PM2_DUMP_BACKUP_FILE_PATH", PathKey::DumpBackup),
    ("PM2_DEFAULT_LOG_PATH", PathKey::LogsDir),
    ("PM2_DEFAULT_PID_PATH", PathKey::PidsDir),
    ("PM2_MODULE_CONF_FILE", PathKey::ModuleConf),
    ("PM2_DAEMON_RPC_PORT", PathKey::RpcSocket),
];

/// Where one daemon keeps its socket, pid file, logs and dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
    /// Paths moved by `PM2_*` variables, by key (few: a short list).
    moved: Vec<(PathKey, PathBuf)>,
}

impl Home {
    /// `RPM2_HOME`, else `~/.rpm2`, with the `PM2_*` path overrides of
    /// this process's environment.
    #[must_use]
    pub fn from_env() -> Self {
        let root = std::env::var_os("RPM2_HOME")
            .filter(|v| !v.is_empty())
            .map_or_else(
                || {
                    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
                    PathBuf::from(home).join(".rpm2")
                },
                PathBuf::from,
            );
        Self::new(root).with_overrides(|name| std::env::var_os(name))
    }

    /// The layout under `root`, no path moved.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: anchor(root.into()),
            moved: Vec::new(),
        }
    }

    /// Move the paths whose `PM2_*` variable `lookup` gives (an empty value
    /// moves nothing, as in pm2).
    #[must_use]
    pub fn with_overrides(mut self, lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        for &(name, key) in OVERRIDES {
            if let Some(v) = lookup(name).filter(|v| !v.is_empty()) {
                self.moved.retain(|(k, _)| *k != key);
                self.moved.push((key, anchor(PathBuf::from(v))));
            }
        }
        self
    }

    /// The paths moved by `PM2_*` variables, with their variable's name.
    pub fn overrides(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        OVERRIDES.iter().filter_map(|&(name, key)| {
            self.moved
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| (name, p.as_path()))
        })
    }

    fn path(&self, key: PathKey, default: &str) -> PathBuf {
        self.moved
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(|| self.root.join(default), |(_, p)| p.clone())
    }

    /// Refuse moved paths that cannot work, before anything is created: a
    /// file whose folder does not exist, or a file path that is a folder.
    pub fn check(&self) -> io::Result<()> {
        for (name, path) in self.overrides() {
            let key = OVERRIDES.iter().find(|(n, _)| *n == name).map(|&(_, k)| k);
            if key.is_some_and(PathKey::is_dir) {
                if path.exists() && !path.is_dir() {
                    return Err(bad_override(name, path, "it is not a folder"));
                }
                continue;
            }
            if path.is_dir() {
                return Err(bad_override(name, path, "it is a folder"));
            }
            let parent = path.parent().unwrap_or_else(|| Path::new("/"));
            if !parent.is_dir() {
                return Err(bad_override(
                    name,
                    path,
                    &format!("folder {} does not exist", parent.display()),
                ));
            }
        }
        Ok(())
    }

    /// Create the home (mode 0700) and its `logs/` and `pids/` folders,
    /// after [`Home::check`].
    pub fn ensure(&self) -> io::Result<()> {
        self.check()?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        // An existing home keeps its files but is made private again.
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))?;
        for sub in [self.logs_dir(), self.pids_dir()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&sub)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", sub.display())))?;
        }
        Ok(())
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
    #[must_use]
    pub fn rpc_socket(&self) -> PathBuf {
        self.path(PathKey::RpcSocket, "rpc.sock")
    }
    #[must_use]
    pub fn pid_file(&self) -> PathBuf {
        self.path(PathKey::PidFile, "pm2.pid")
    }
    #[must_use]
    pub fn daemon_log(&self) -> PathBuf {
        self.path(PathKey::DaemonLog, "pm2.log")
    }
    #[must_use]
    pub fn logs_dir(&self) -> PathBuf {
        self.path(PathKey::LogsDir, "logs")
    }
    #[must_use]
    pub fn pids_dir(&self) -> PathBuf {
        self.path(PathKey::PidsDir, "pids")
    }
    #[must_use]
    pub fn dump_file(&self) -> PathBuf {
        self.path(PathKey::DumpFile, "dump.pm2")
    }
    #[must_use]
    pub fn dump_backup_file(&self) -> PathBuf {
        self.path(PathKey::DumpBackup, "dump.pm2.bak")
    }
    /// pm2's `module_conf.json`: what `set`/`get` store.
    #[must_use]
    pub fn module_conf_file(&self) -> PathBuf {
        self.path(PathKey::ModuleConf, "module_conf.json")
    }
}

/// Relative paths would break once the daemon chdirs; anchor them.
fn anchor(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map_or(p.clone(), |cwd| cwd.join(p))
    }
}

fn bad_override(name: &str, path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name}={}: {why}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn creates_a_private_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        home.ensure().unwrap();
        let mode = fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(home.logs_dir().is_dir() && home.pids_dir().is_dir());
    }

    #[test]
    fn pm2_variables_move_paths() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("elsewhere");
        fs::create_dir(&other).unwrap();
        let pid = other.join("daemon.pid");
        let logs = other.join("applogs");
        let vars = [
            ("PM2_PID_FILE_PATH", pid.to_str().unwrap()),
            ("PM2_DEFAULT_LOG_PATH", logs.to_str().unwrap()),
            ("PM2_DUMP_FILE_PATH", ""),
        ];
        let home = Home::new(dir.path().join("h")).with_overrides(env(&vars));
        assert_eq!(home.pid_file(), pid);
        assert_eq!(home.logs_dir(), logs);
        // Empty: not moved. Not named: not moved.
        assert_eq!(home.dump_file(), dir.path().join("h/dump.pm2"));
        assert_eq!(home.daemon_log(), dir.path().join("h/pm2.log"));
        home.ensure().unwrap();
        assert!(logs.is_dir(), "a moved folder is created");
        assert_eq!(
            home.overrides().map(|(n, _)| n).collect::<Vec<_>>(),
            ["PM2_PID_FILE_PATH", "PM2_DEFAULT_LOG_PATH"]
        );
    }

    #[test]
    fn a_pid_file_in_a_missing_folder_is_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("h");
        let vars = [("PM2_PID_FILE_PATH", "/nonexistent-rpm2-dir/x.pid")];
        let home = Home::new(&root).with_overrides(env(&vars));
        let err = home.ensure().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "PM2_PID_FILE_PATH=/nonexistent-rpm2-dir/x.pid: folder /nonexistent-rpm2-dir does not exist"
        );
        assert!(!root.exists(), "nothing created");
    }

    #[test]
    fn a_file_path_that_is_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vars = [("PM2_LOG_FILE_PATH", dir.path().to_str().unwrap())];
        let home = Home::new(dir.path().join("h")).with_overrides(env(&vars));
        let err = home.check().unwrap_err();
        assert!(err.to_string().ends_with("it is a folder"), "{err}");
    }
}
