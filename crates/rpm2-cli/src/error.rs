//! `CliError`: the CLI's one error type. It carries the stable
//! `ErrorCode`, which decides the exit status (the table in README.md).

use std::fmt;

use rpm2_client::ClientError;
use rpm2_proto::ErrorCode;

/// Exit statuses scripts can rely on. pm2 exits 1 on any failure; we keep
/// 1 for failed actions and usage errors and tell two classes apart.
pub mod exit {
    /// An action failed (or an app did not come up, or a usage error).
    pub const ERROR: u8 = 1;
    /// The config is invalid: nothing was started or changed.
    pub const CONFIG: u8 = 2;
    /// No daemon could be reached, or it speaks another protocol.
    pub const DAEMON: u8 = 3;
}

/// The exit status for an error code.
#[must_use]
pub fn exit_status(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::ProcessNotFound
        | ErrorCode::BadRequest
        | ErrorCode::SpawnFailed
        | ErrorCode::CrashLoop
        | ErrorCode::ReloadFailed
        | ErrorCode::NothingToDo
        | ErrorCode::NoDump
        | ErrorCode::SignalFailed
        | ErrorCode::UpdateFailed
        | ErrorCode::TooLarge
        | ErrorCode::Io
        | ErrorCode::Internal => exit::ERROR,
        ErrorCode::InvalidConfig
        | ErrorCode::ConfigNotFound
        | ErrorCode::ConfigRead
        | ErrorCode::ConfigParse
        | ErrorCode::NodeNotFound
        | ErrorCode::ScriptNotFound
        | ErrorCode::InvalidOption
        | ErrorCode::InterpreterNotFound
        | ErrorCode::AppNotInConfig => exit::CONFIG,
        ErrorCode::ProtocolMismatch
        | ErrorCode::ShuttingDown
        | ErrorCode::DaemonUnavailable
        | ErrorCode::DaemonTimeout
        | ErrorCode::DaemonBusy => exit::DAEMON,
    }
}

/// A failed command: its code and the message for stderr.
#[derive(Debug)]
pub struct CliError {
    pub code: ErrorCode,
    pub message: String,
}

impl CliError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    #[must_use]
    pub fn exit_status(&self) -> u8 {
        exit_status(self.code)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorCode::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md's table must list every code with the status used here.
    #[test]
    fn readme_documents_every_code() {
        let readme = include_str!("../../../README.md");
        for &code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), exit_status(code));
            assert!(readme.contains(&row), "README.md lacks the row {row:?}");
        }
    }
}
