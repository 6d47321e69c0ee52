//! The RPC between clients (CLI, addon) and the daemon.
//!
//! A connection starts with `Request::Hello` / `Response::Hello` carrying
//! [`PROTOCOL_VERSION`]; after that each request gets exactly one response,
//! except `Subscribe`, which turns the connection into a stream of
//! `Response::Event`s until the client hangs up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::info::ProcessInfo;
use crate::spec::AppSpec;

/// Bumped on any incompatible change to these types.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        client: String,
    },
    Ping,
    /// Start apps. An app whose name is already known is restarted with the
    /// new spec (what `pm2 start ecosystem.config.js` does), unless
    /// `only_new` is set (resurrect: apps already running are left alone).
    Start {
        apps: Vec<AppSpec>,
        #[serde(default)]
        only_new: bool,
    },
    /// pm2's `startOrReload`: start the apps not known yet, reload (with
    /// the new spec) those that are, remove workers above a lowered count.
    StartOrReload {
        apps: Vec<AppSpec>,
    },
    Stop {
        targets: Vec<String>,
    },
    Restart {
        targets: Vec<String>,
        /// `--update-env`: environment merged over the stored one.
        #[serde(default)]
        update_env: Option<BTreeMap<String, String>>,
    },
    Reload {
        targets: Vec<String>,
        #[serde(default)]
        update_env: Option<BTreeMap<String, String>>,
        /// Workers replaced at once (`--parallel`); 1 by default.
        #[serde(default)]
        parallel: Option<u32>,
    },
    Delete {
        targets: Vec<String>,
    },
    /// `scale <app> <n|+n|-n>`: `count` as typed.
    Scale {
        name: String,
        count: String,
    },
    List,
    /// Workers matching the targets; an unknown target is an error.
    Describe {
        targets: Vec<String>,
    },
    SendSignal {
        signal: String,
        targets: Vec<String>,
    },
    /// `sendDataToProcessId`: the packet reaches the worker's
    /// `process.on('message')`.
    SendData {
        pm_id: u32,
        packet: serde_json::Value,
    },
    Reset {
        targets: Vec<String>,
    },
    /// Truncate the log files of the targets (all apps and the daemon log
    /// when empty).
    Flush {
        targets: Vec<String>,
    },
    ReloadLogs,
    /// Write the dump file.
    Save {
        #[serde(default)]
        force: bool,
    },
    /// Start what the dump file holds and is not running.
    Resurrect,
    /// Stream events (logs, process events, messages) until the client
    /// disconnects.
    Subscribe,
    /// Stop every app gracefully, then the daemon exits.
    Kill,
}

/// A response from the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Hello {
        protocol: u32,
        daemon_version: String,
        pid: u32,
        home: String,
    },
    Pong,
    Ok,
    /// Workers touched by an action, after it completed.
    Processes {
        processes: Vec<ProcessInfo>,
    },
    /// `Save`: where the dump went and how many apps it holds.
    Saved {
        path: String,
        apps: usize,
    },
    Event {
        event: Event,
    },
    Error {
        error: RpcError,
    },
}

/// An error with a stable code that survives RPC → CLI → JS (`err.code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No app or worker matches a target.
    ProcessNotFound,
    /// The request is malformed or makes no sense (bad signal, bad scale).
    BadRequest,
    /// Client and daemon speak different protocol versions.
    ProtocolMismatch,
    /// Spawning a worker failed.
    SpawnFailed,
    /// A reload could not complete (successor crashed or not ready).
    ReloadFailed,
    /// `save` on an empty list, or `resurrect` with no dump.
    NothingToDo,
    /// The daemon is shutting down.
    ShuttingDown,
    /// No daemon answers and none could be started.
    DaemonUnavailable,
    /// Reading or writing a file failed.
    Io,
    /// A config file or option is invalid.
    InvalidConfig,
}

impl ErrorCode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessNotFound => "PROCESS_NOT_FOUND",
            Self::BadRequest => "BAD_REQUEST",
            Self::ProtocolMismatch => "PROTOCOL_MISMATCH",
            Self::SpawnFailed => "SPAWN_FAILED",
            Self::ReloadFailed => "RELOAD_FAILED",
            Self::NothingToDo => "NOTHING_TO_DO",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::DaemonUnavailable => "DAEMON_UNAVAILABLE",
            Self::Io => "IO_ERROR",
            Self::InvalidConfig => "INVALID_CONFIG",
        }
    }
}

/// The worker an event is about, as pm2's bus packets name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProcess {
    pub pm_id: u32,
    pub name: String,
    pub namespace: String,
}

/// Something that happened, published to subscribers (pm2's bus).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A line (or chunk) a worker wrote.
    #[serde(rename = "log:out")]
    LogOut {
        process: EventProcess,
        at: u64,
        data: String,
    },
    #[serde(rename = "log:err")]
    LogErr {
        process: EventProcess,
        at: u64,
        data: String,
    },
    /// Lifecycle: `start`, `online`, `exit`, `stop`, `restart`, `delete`,
    /// `reload`, `restart overlimit`.
    #[serde(rename = "process:event")]
    ProcessEvent {
        process: EventProcess,
        at: u64,
        event: String,
        manually: bool,
    },
    /// A user message from `process.send`. `{type, data}` objects keep
    /// their type as `msg_type`; anything else arrives as `raw`.
    #[serde(rename = "process:msg")]
    ProcessMsg {
        process: EventProcess,
        at: u64,
        msg_type: Option<String>,
        data: Option<serde_json::Value>,
        raw: Option<serde_json::Value>,
    },
}
