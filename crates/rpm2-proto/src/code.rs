//! `ErrorCode`: the one list of stable error codes. The daemon sends them,
//! the CLI maps them to exit statuses, and JS sees them as `err.code`.

use serde::{Deserialize, Serialize};

/// Declares the codes once: the variant, its string (wire and `err.code`
/// alike) and what it means.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*) => {
        /// Stable error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $text)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)*];

            /// The code as the wire and `err.code` spell it.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    /// No app or worker matches a target.
    ProcessNotFound = "PROCESS_NOT_FOUND",
    /// The request is malformed or makes no sense (bad signal, bad scale).
    BadRequest = "BAD_REQUEST",
    /// Client and daemon speak different protocol versions.
    ProtocolMismatch = "PROTOCOL_MISMATCH",
    /// Spawning a worker failed.
    SpawnFailed = "SPAWN_FAILED",
    /// An app started but keeps crashing (`resurrect` waits to see it stay up).
    CrashLoop = "CRASH_LOOP",
    /// A reload could not complete (successor crashed or not ready).
    ReloadFailed = "RELOAD_FAILED",
    /// Nothing to do: `save` of an empty list, `scale` to the current count.
    NothingToDo = "NOTHING_TO_DO",
    /// `resurrect` found no dump file.
    NoDump = "NO_DUMP",
    /// Sending a signal to a worker failed (`kill(2)` refused).
    SignalFailed = "SIGNAL_FAILED",
    /// The daemon is shutting down.
    ShuttingDown = "SHUTTING_DOWN",
    /// No daemon answers and none could be started.
    DaemonUnavailable = "DAEMON_UNAVAILABLE",
    /// The daemon did not answer in time (stopped or hung).
    DaemonTimeout = "DAEMON_TIMEOUT",
    /// The daemon has no room for another connection.
    DaemonBusy = "DAEMON_BUSY",
    /// A request or answer exceeds the frame limit.
    TooLarge = "TOO_LARGE",
    /// Reading or writing a file failed.
    Io = "IO_ERROR",
    /// A config file or option is invalid.
    InvalidConfig = "INVALID_CONFIG",
    /// The config file does not exist.
    ConfigNotFound = "CONFIG_NOT_FOUND",
    /// The config file cannot be read.
    ConfigRead = "CONFIG_READ",
    /// The config file cannot be parsed or evaluated.
    ConfigParse = "CONFIG_PARSE",
    /// `node` is needed (JS config, Node app) and not found.
    NodeNotFound = "NODE_NOT_FOUND",
    /// A script to start does not exist and names no known app.
    ScriptNotFound = "SCRIPT_NOT_FOUND",
    /// An app option has an invalid value.
    InvalidOption = "INVALID_OPTION",
    /// An app's interpreter is not found.
    InterpreterNotFound = "INTERPRETER_NOT_FOUND",
    /// `--only` names an app the config file does not have.
    AppNotInConfig = "APP_NOT_IN_CONFIG",
    /// `update` could not hand the daemon over (nothing changed).
    UpdateFailed = "UPDATE_FAILED",
    /// The daemon hit a bug handling the request (logged in its log); it
    /// goes on serving.
    Internal = "INTERNAL_ERROR",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compare with a code string (tests, and JS-facing checks).
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_err_code_spell_the_same() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }
}
