//! The `RPM2_HOME` layout (pm2's file names under our home): where the
//! daemon keeps its files and where clients find its socket.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where one daemon keeps its socket, pid file, logs and dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `RPM2_HOME`, else `~/.rpm2`.
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
        Self::new(root)
    }

    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        // Relative homes would break once the daemon chdirs; anchor them.
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir().map_or(root.clone(), |cwd| cwd.join(root))
        };
        Self { root }
    }

    /// Create the home (mode 0700) and its `logs/` and `pids/` folders.
    pub fn ensure(&self) -> io::Result<()> {
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
                .create(sub)?;
        }
        Ok(())
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
    #[must_use]
    pub fn rpc_socket(&self) -> PathBuf {
        self.root.join("rpc.sock")
    }
    #[must_use]
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("rpm2.pid")
    }
    #[must_use]
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("rpm2.log")
    }
    #[must_use]
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    #[must_use]
    pub fn pids_dir(&self) -> PathBuf {
        self.root.join("pids")
    }
    #[must_use]
    pub fn dump_file(&self) -> PathBuf {
        self.root.join("dump.pm2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        home.ensure().unwrap();
        let mode = fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(home.logs_dir().is_dir() && home.pids_dir().is_dir());
    }
}
