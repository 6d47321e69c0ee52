//! `ClientError`: everything a client call can fail with, each with its
//! stable `ErrorCode`.

use std::io;
use std::time::Duration;

use rpm2_proto::{ErrorCode, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    /// Refused before anything was sent (a bad argument, an unknown script).
    #[error("{0}")]
    Rejected(RpcError),
    #[error("daemon unavailable: {0}")]
    Unavailable(String),
    /// A bounded wait ran out: the daemon is stopped or hung.
    #[error("{0}")]
    Timeout(String),
    /// A request too large for one frame.
    #[error("the `{op}` request is too large to send: {detail}")]
    TooLarge { op: &'static str, detail: String },
    #[error("connection to the daemon lost: {0}")]
    Io(#[from] io::Error),
    /// The daemon answered with a response this request never gets.
    #[error("unexpected answer from the daemon: {0}")]
    Unexpected(String),
    #[cfg(feature = "plan")]
    #[error("{0}")]
    Config(#[from] rpm2_config::ConfigError),
}

impl ClientError {
    /// A client-side refusal with its code.
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Rejected(RpcError::new(code, message))
    }

    /// "waited 10 s for the answer to `list`", with the daemon's pid, its
    /// state and what to do.
    #[must_use]
    pub fn timeout(waited_for: &str, pid: Option<u32>, bound: Duration) -> Self {
        let waited = crate::timeout::human(bound);
        let env = crate::timeout::TIMEOUT_ENV;
        let Some(pid) = pid else {
            return Self::Timeout(format!(
                "the rpm2 daemon did not answer: waited {waited} {waited_for}, and its pid file \
                 names no pid; `rpm2 kill` ends it (set {env} to wait longer)"
            ));
        };
        let what_to_do = if crate::timeout::is_stopped(pid) {
            format!(
                "It is stopped (SIGSTOP or a debugger): `kill -CONT {pid}` resumes it; \
                 `kill -KILL {pid}` ends it at once, leaving its apps running"
            )
        } else {
            format!(
                "It may be hung or overloaded: `rpm2 kill` or `kill {pid}` asks it to stop \
                 every app and exit; `kill -KILL {pid}` ends it at once"
            )
        };
        Self::Timeout(format!(
            "the rpm2 daemon (pid {pid}) did not answer: waited {waited} {waited_for}. \
             {what_to_do} (set {env} or --rpc-timeout to wait longer)"
        ))
    }

    /// The stable code (`err.code` in JS, the CLI's exit status).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rpc(e) | Self::Rejected(e) => e.code,
            Self::Unavailable(_) | Self::Io(_) => ErrorCode::DaemonUnavailable,
            Self::Timeout(_) => ErrorCode::DaemonTimeout,
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Unexpected(_) => ErrorCode::ProtocolMismatch,
            #[cfg(feature = "plan")]
            Self::Config(e) => e.code(),
        }
    }
}
