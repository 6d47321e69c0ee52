//! The daemon found through its pid file, for when its socket is gone:
//! `kill` must still reach it, and other commands must say what is wrong
//! rather than start a second daemon.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::{ClientError, Home};

/// The pid in the pid file, if that process is alive and is an rpm2
/// daemon (`<exe> __daemon`) of this home (its `RPM2_HOME`).
#[must_use]
pub fn live_daemon(home: &Home) -> Option<u32> {
    let pid = crate::timeout::pid_from_file(&home.pid_file())?;
    is_daemon_of(pid, home.root()).then_some(pid)
}

fn is_daemon_of(pid: u32, root: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let is_daemon = cmdline
        .split(|&b| b == 0)
        .any(|arg| arg == crate::DAEMON_SUBCOMMAND.as_bytes());
    if !is_daemon {
        return false;
    }
    let Ok(environ) = std::fs::read(proc_dir.join("environ")) else {
        return false;
    };
    let home_var = environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"RPM2_HOME="))
        .filter(|v| !v.is_empty());
    let daemon_home = match home_var {
        Some(v) => Home::new(Path::new(OsStr::from_bytes(v))),
        // No RPM2_HOME: the default home of the daemon's HOME.
        None => {
            let home = environ
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(b"HOME="))
                .map_or_else(
                    || Path::new("/tmp").to_path_buf(),
                    |v| Path::new(OsStr::from_bytes(v)).to_path_buf(),
                );
            Home::new(home.join(".rpm2"))
        }
    };
    same_path(daemon_home.root(), root)
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// "the daemon runs but its socket is gone".
#[must_use]
pub fn socket_lost(home: &Home, pid: u32) -> ClientError {
    ClientError::Unavailable(format!(
        "the rpm2 daemon (pid {pid}) is running but does not answer on {}: the socket was \
         deleted or replaced and the daemon has not bound it again; `rpm2 kill` stops it \
         through its pid file",
        home.rpc_socket().display()
    ))
}

/// When the home's socket (or the home itself) belongs to another user:
/// that user's daemon refuses us, and we cannot start one there.
#[must_use]
pub fn foreign_owner(home: &Home) -> Option<ClientError> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    if me == 0 {
        return None;
    }
    let (what, path) = [
        ("socket", home.rpc_socket()),
        ("home", home.root().to_path_buf()),
    ]
    .into_iter()
    .find(|(_, p)| std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() != me))?;
    let owner = std::fs::symlink_metadata(&path).map(|m| m.uid()).ok()?;
    Some(ClientError::Unavailable(format!(
        "the rpm2 {what} {} belongs to another user (uid {owner}, you are uid {me}): a daemon \
         serves only its own user (and root); set RPM2_HOME to a home of your own",
        path.display()
    )))
}
