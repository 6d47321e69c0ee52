//! `ClientError`: everything a client call can fail with, each with its
//! stable `ErrorCode`.

use std::io;

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

    /// The stable code (`err.code` in JS, the CLI's exit status).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rpc(e) | Self::Rejected(e) => e.code,
            Self::Unavailable(_) | Self::Io(_) => ErrorCode::DaemonUnavailable,
            Self::Unexpected(_) => ErrorCode::ProtocolMismatch,
            #[cfg(feature = "plan")]
            Self::Config(e) => e.code(),
        }
    }
}
