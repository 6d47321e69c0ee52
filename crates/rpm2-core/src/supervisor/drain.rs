//! The drain preload (`preload/drain.cjs`): the file the daemon writes into
//! its home and passes to Node workers with `--require`, and the internal
//! messages it exchanges with them.
//!
//! Worker → daemon: `NODE_RPM2_HELLO` once loaded (with `error` if it could
//! not install itself), `NODE_RPM2_STATS` with the requests in flight when
//! that number changed (at most every 500 ms), `NODE_RPM2_DRAINED` once a
//! drain left no request in flight and no HTTP connection open.
//! `NODE_RPM2_PONG` answers the watchdog's `NODE_RPM2_PING` (same `seq`).
//! Daemon → worker: `NODE_RPM2_DRAIN` with the linger for idle connections,
//! `NODE_RPM2_PING` (`health.rs`).
//! `cmd` starts with `NODE_`, so Node hands them to `internalMessage`
//! listeners only: the app's `process.on('message')` never sees them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// The preload's source, built into the binary so a bare binary and an npm
/// install find the same file.
pub const SOURCE: &str = include_str!("../../preload/drain.cjs");

/// Its file name in `RPM2_HOME` (`.cjs`: CommonJS whatever the
/// `package.json` around it says).
pub const FILE_NAME: &str = "drain.cjs";

/// The longest an idle keep-alive connection is kept open by a drain.
pub const MAX_LINGER: Duration = Duration::from_secs(2);

/// Write the preload into `home` (atomically: another daemon version may
/// have left an older one, and a worker may be starting) and return its path.
pub fn install(home: &Path) -> io::Result<PathBuf> {
    let path = home.join(FILE_NAME);
    if std::fs::read_to_string(&path).is_ok_and(|s| s == SOURCE) {
        return Ok(path);
    }
    let tmp = home.join(format!(".{FILE_NAME}.{}", std::process::id()));
    std::fs::write(&tmp, SOURCE)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// How long a drain keeps idle keep-alive connections open before it closes
/// them: half of `kill_timeout` (so the worker can say `drained` before the
/// drain timer fires), at most [`MAX_LINGER`].
#[must_use]
pub fn linger(kill_timeout: Duration) -> Duration {
    (kill_timeout / 2).min(MAX_LINGER)
}

/// The message that starts a worker's drain.
#[must_use]
pub fn drain_message(linger: Duration) -> Value {
    json!({
        "cmd": "NODE_RPM2_DRAIN",
        "linger": u64::try_from(linger.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The watchdog's ping; the preload answers `NODE_RPM2_PONG` with `seq`.
#[must_use]
pub fn ping_message(seq: u64) -> Value {
    json!({ "cmd": "NODE_RPM2_PING", "seq": seq })
}

/// What the preload of a run is known to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Preload {
    /// Not injected (not Node, `drain: false`, or no preload file).
    #[default]
    Absent,
    /// Injected; no hello yet.
    Expected,
    /// It said hello: it drains.
    Loaded,
    /// It said it could not install itself.
    Failed(String),
}

/// A message from a worker's preload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreloadMessage {
    Hello {
        error: Option<String>,
    },
    Stats {
        inflight: u32,
    },
    Drained,
    /// The answer to the watchdog's ping `seq`.
    Pong {
        seq: u64,
    },
}

impl PreloadMessage {
    /// `None` for any other message.
    #[must_use]
    pub fn parse(msg: &Value) -> Option<Self> {
        let inflight = || {
            msg.get("inflight")
                .and_then(Value::as_u64)
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        match msg.get("cmd")?.as_str()? {
            "NODE_RPM2_HELLO" => Some(Self::Hello {
                error: msg.get("error").and_then(Value::as_str).map(str::to_owned),
            }),
            "NODE_RPM2_STATS" => Some(Self::Stats {
                inflight: inflight(),
            }),
            "NODE_RPM2_DRAINED" => Some(Self::Drained),
            "NODE_RPM2_PONG" => Some(Self::Pong {
                seq: msg.get("seq").and_then(Value::as_u64)?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_preload_messages_and_nothing_else() {
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_HELLO", "version": 1})),
            Some(PreloadMessage::Hello { error: None })
        );
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_HELLO", "error": "no dc"})),
            Some(PreloadMessage::Hello {
                error: Some("no dc".into())
            })
        );
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_STATS", "inflight": 7})),
            Some(PreloadMessage::Stats { inflight: 7 })
        );
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_DRAINED"})),
            Some(PreloadMessage::Drained)
        );
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_PONG", "seq": 3})),
            Some(PreloadMessage::Pong { seq: 3 })
        );
        assert_eq!(
            PreloadMessage::parse(&json!({"cmd": "NODE_RPM2_PONG"})),
            None
        );
        assert_eq!(PreloadMessage::parse(&json!({"cmd": "NODE_CLUSTER"})), None);
        assert_eq!(PreloadMessage::parse(&json!("ready")), None);
    }

    #[test]
    fn the_linger_is_half_the_kill_timeout_at_most_two_seconds() {
        assert_eq!(
            linger(Duration::from_millis(1600)),
            Duration::from_millis(800)
        );
        assert_eq!(linger(Duration::from_secs(30)), MAX_LINGER);
    }

    #[test]
    fn install_writes_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = install(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SOURCE);
        std::fs::write(&path, "old").unwrap();
        assert_eq!(install(dir.path()).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), SOURCE);
    }
}
