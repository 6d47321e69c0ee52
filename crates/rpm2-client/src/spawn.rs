//! Reaching a daemon, starting one when none answers: `rpm2 __daemon`
//! re-executed, detached, its output appended to the daemon log.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Client, ClientError, Home, Timeouts};

/// The hidden subcommand that runs the daemon (re-executing our binary).
pub const DAEMON_SUBCOMMAND: &str = "__daemon";

/// Connect, starting the daemon (`exe __daemon`) if none answers. Returns
/// whether a daemon was started.
pub fn connect_or_spawn(home: &Home, exe: &Path) -> Result<(Client, bool), ClientError> {
    connect_or_spawn_with(home, exe, Timeouts::from_env())
}

/// `connect_or_spawn` with explicit bounds. A daemon that is there but
/// does not answer (stopped, hung, busy) is reported, never replaced.
pub fn connect_or_spawn_with(
    home: &Home,
    exe: &Path,
    timeouts: Timeouts,
) -> Result<(Client, bool), ClientError> {
    match Client::connect_with(home, timeouts) {
        Ok(c) => return Ok((c, false)),
        Err(ClientError::Unavailable(_) | ClientError::Io(_)) => {}
        Err(e) => return Err(e),
    }
    if let Some(e) = crate::pidfile::foreign_owner(home) {
        return Err(e);
    }
    // A path moved by a PM2_* variable that cannot work: said now, before
    // anything is created or started.
    home.check()
        .map_err(|e| ClientError::rejected(rpm2_proto::ErrorCode::InvalidConfig, e.to_string()))?;
    home.ensure().map_err(|e| {
        ClientError::Unavailable(format!("cannot create {}: {e}", home.root().display()))
    })?;
    // A live daemon whose socket was deleted binds it again on its own
    // (within a few seconds): wait for it rather than start another.
    let mut orphaned = crate::pidfile::live_daemon(home);
    if orphaned.is_none() {
        spawn_daemon(home, exe)?;
    }
    let deadline = Instant::now() + timeouts.connect();
    let mut last = String::new();
    while Instant::now() < deadline {
        match Client::connect_with(home, timeouts) {
            Ok(c) => return Ok((c, orphaned.is_none())),
            Err(e @ (ClientError::Timeout(_) | ClientError::Rpc(_))) => return Err(e),
            Err(e) => last = e.to_string(),
        }
        // It was not orphaned but exiting (`kill` answered, then it removes
        // its socket, its pid file, and exits): start one once it is gone.
        if let Some(pid) = orphaned {
            match crate::pidfile::live_daemon(home) {
                Some(now) if now == pid => {}
                // Another daemon took its place: wait for its socket.
                now @ Some(_) => orphaned = now,
                None => {
                    orphaned = None;
                    spawn_daemon(home, exe)?;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(pid) = orphaned.or_else(|| crate::pidfile::live_daemon(home)) {
        return Err(crate::pidfile::socket_lost(home, pid));
    }
    Err(ClientError::Unavailable(format!(
        "started a daemon but it does not answer ({last}); see {}",
        home.daemon_log().display()
    )))
}

/// The daemon's own executable, installed next to `rpm2`.
pub const DAEMON_EXECUTABLE: &str = "rpm2-daemon";

/// The daemon's answer to whether it can take over (`rpm2 update`) and
/// which build it is.
pub const CHECK_COMMAND: &str = "__handover-check";

/// A digest of the daemon's sources (build.rs), which the daemon reports
/// in `__handover-check`.
pub const SOURCE_ID: &str = env!("RPM2_SOURCE_ID");

/// What `__handover-check` prints, one JSON line: read by `rpm2 update`'s
/// preflight and by [`daemon_executable`].
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CheckAnswer {
    /// The hand-over snapshot versions the binary reads.
    pub reads: Vec<u32>,
    /// Its package version.
    pub version: String,
    /// Its [`SOURCE_ID`]; binaries older than `rpm2-daemon` print none.
    #[serde(default)]
    pub build: Option<String>,
}

/// How long `rpm2-daemon __handover-check` may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What runs the daemon for the `rpm2` at `exe`: `rpm2-daemon` beside it
/// (following symlinks) when it reports the daemon sources `exe` was built
/// from, so that one left by another build is never started; else `exe`
/// itself, which runs the daemon as well.
pub fn daemon_executable(exe: &Path) -> std::path::PathBuf {
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    match exe.parent().map(|dir| dir.join(DAEMON_EXECUTABLE)) {
        Some(daemon) if reports_our_build(&daemon) => daemon,
        _ => exe,
    }
}

/// Whether `daemon __handover-check` answers, in time, with our `build`.
fn reports_our_build(daemon: &Path) -> bool {
    use std::io::Read;
    let Ok(mut child) = std::process::Command::new(daemon)
        .arg(CHECK_COMMAND)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    // The answer is one short line: it fits in the pipe, so waiting for the
    // exit before reading cannot block the child.
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let exited = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    let mut out = Vec::new();
    let read = child
        .stdout
        .take()
        .is_some_and(|mut s| s.read_to_end(&mut out).is_ok());
    exited
        && read
        && serde_json::from_slice::<CheckAnswer>(&out)
            .is_ok_and(|a| a.build.as_deref() == Some(SOURCE_ID))
}

/// Start `exe __daemon` detached, its output appended to the daemon log.
/// The daemon forks once more and the first child exits at once, which we
/// reap here, so no zombie is left behind in long-lived callers.
fn spawn_daemon(home: &Home, exe: &Path) -> Result<(), ClientError> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.daemon_log())
        .map_err(|e| {
            ClientError::Unavailable(format!("cannot open {}: {e}", home.daemon_log().display()))
        })?;
    let log2 = log.try_clone()?;
    let exe = daemon_executable(exe);
    let mut child = std::process::Command::new(&exe)
        .arg(DAEMON_SUBCOMMAND)
        .env("RPM2_HOME", home.root())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| ClientError::Unavailable(format!("cannot start {}: {e}", exe.display())))?;
    let status = child.wait()?;
    if !status.success() {
        return Err(ClientError::Unavailable(format!(
            "daemon failed to start ({status}); see {}",
            home.daemon_log().display()
        )));
    }
    Ok(())
}
