//! The one error type of config loading.
//!
//! Every message names where the problem is (file, app, option) because the
//! user has to find it in an ecosystem file that may hold many apps; `code()`
//! gives the CLI and the JS API a stable string to branch on.

use rpm2_proto::ErrorCode;

/// A config could not be turned into app specs; nothing must be started.
///
/// `origin` is the config file as the user wrote it, or the script given on
/// the command line (or `"app object"` for the JS API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The config file does not exist.
    #[error("{file}: config file not found")]
    NotFound { file: String },
    /// The config file exists but could not be read.
    #[error("{file}: cannot read config file: {message}")]
    Read { file: String, message: String },
    /// Syntax error, exception thrown by a JS config, wrong top-level shape.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// A `.js/.cjs/.mjs` config needs `node` to be evaluated.
    #[error("{file}: cannot evaluate a JavaScript config: `node` was not found in PATH")]
    NodeNotFound { file: String },
    /// The script is neither a file (relative to the app's cwd) nor on PATH.
    #[error("{origin}: app \"{app}\": script not found: {script}")]
    ScriptNotFound {
        origin: String,
        app: String,
        script: String,
    },
    /// The script names a directory.
    #[error("{origin}: app \"{app}\": script is a directory, not a file to run: {script}")]
    ScriptIsDirectory {
        origin: String,
        app: String,
        script: String,
    },
    /// An option has the wrong type or an impossible value.
    #[error("{origin}: app \"{app}\": option \"{option}\": {message}")]
    InvalidOption {
        origin: String,
        app: String,
        option: String,
        message: String,
    },
    /// The interpreter (explicit or chosen by extension) is not available.
    #[error("{origin}: app \"{app}\": interpreter \"{interpreter}\" is not available in PATH")]
    InterpreterNotFound {
        origin: String,
        app: String,
        interpreter: String,
    },
    /// `--only` named apps that the config does not define.
    #[error("{origin}: --only: no app named {} in this config (apps: {})", quoted(.missing), quoted(.available))]
    AppNotInConfig {
        origin: String,
        missing: Vec<String>,
        available: Vec<String>,
    },
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConfigError {
    /// A stable, machine-readable code for the CLI's exit paths and the JS
    /// API's `err.code`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::ConfigNotFound,
            Self::Read { .. } => ErrorCode::ConfigRead,
            Self::Parse { .. } => ErrorCode::ConfigParse,
            Self::NodeNotFound { .. } => ErrorCode::NodeNotFound,
            Self::ScriptNotFound { .. } | Self::ScriptIsDirectory { .. } => {
                ErrorCode::ScriptNotFound
            }
            Self::InvalidOption { .. } => ErrorCode::InvalidOption,
            Self::InterpreterNotFound { .. } => ErrorCode::InterpreterNotFound,
            Self::AppNotInConfig { .. } => ErrorCode::AppNotInConfig,
        }
    }
}

/// Shows a JSON value the way the user wrote it, shortened, for "got …".
pub(crate) fn show(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}
