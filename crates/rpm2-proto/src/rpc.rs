//! The RPC between clients (CLI, addon) and the daemon.
//!
//! A connection starts with `Request::Hello` / `Response::Hello` carrying
//! [`PROTOCOL_VERSION`]; after that each request gets exactly one response,
//! except `Subscribe`, which turns the connection into a stream of
//! `Response::Event`s until the client hangs up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::code::ErrorCode;
use crate::info::ProcessInfo;
use crate::scale::ScaleCount;
use crate::signal::SignalName;
use crate::spec::AppSpec;
use crate::target::Target;

/// Bumped on any incompatible change to these types. 2: error codes
/// `NO_DUMP`, `SIGNAL_FAILED` and the config codes, which a version 1
/// client cannot decode. 3: codes `DAEMON_BUSY` and `TOO_LARGE`, and the
/// `log:dropped` event. 4: `force` on `start` and `update` on `restart`/
/// `reload`, which an older daemon would ignore (restarting instead of
/// starting beside, restarting without the new options).
pub const PROTOCOL_VERSION: u32 = 5;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        client: String,
        /// A client of any protocol version may connect to ask for
        /// `update` (and nothing else, by convention): the one request an
        /// old daemon must understand from a newer CLI.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        update_only: bool,
    },
    Ping,
    /// Start apps. An app whose name is already known is restarted with the
    /// new spec (what `pm2 start ecosystem.config.js` does), unless
    /// `only_new` is set (resurrect: apps already running are left alone).
    /// With `force` (`start <script> -f`) an app whose name is known is
    /// added beside it, as pm2 does: two apps of one name.
    Start {
        apps: Vec<AppSpec>,
        #[serde(default)]
        only_new: bool,
        #[serde(default)]
        force: bool,
        /// Names of new apps to register without starting (stopped in a
        /// saved list that is being resurrected).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stopped: Vec<String>,
    },
    /// pm2's `startOrReload`: start the apps not known yet, reload (with
    /// the new spec) those that are, remove workers above a lowered count.
    StartOrReload {
        apps: Vec<AppSpec>,
    },
    Stop {
        targets: Vec<Target>,
    },
    Restart {
        targets: Vec<Target>,
        /// `--update-env`: environment merged over the stored one.
        #[serde(default)]
        update_env: Option<BTreeMap<String, String>>,
        /// Options given with the command, merged into the apps' specs.
        #[serde(default, skip_serializing_if = "SpecUpdate::is_empty")]
        update: SpecUpdate,
    },
    Reload {
        targets: Vec<Target>,
        #[serde(default)]
        update_env: Option<BTreeMap<String, String>>,
        #[serde(default, skip_serializing_if = "SpecUpdate::is_empty")]
        update: SpecUpdate,
        /// Workers replaced at once (`--parallel`); 1 by default.
        #[serde(default)]
        parallel: Option<u32>,
    },
    Delete {
        targets: Vec<Target>,
    },
    /// pm2's `toggleWatch` (`restart --watch`): watching of the targets'
    /// apps turns on if it was off, off if it was on. (`stop` turns it off.)
    ToggleWatch {
        targets: Vec<Target>,
    },
    /// `scale <app> <n|+n|-n>`: `count` as typed.
    Scale {
        name: String,
        count: ScaleCount,
    },
    List,
    /// Workers matching the targets; an unknown target is an error.
    Describe {
        targets: Vec<Target>,
    },
    SendSignal {
        signal: SignalName,
        targets: Vec<Target>,
    },
    /// `sendDataToProcessId`: the packet reaches the worker's
    /// `process.on('message')`.
    SendData {
        pm_id: u32,
        packet: serde_json::Value,
    },
    Reset {
        targets: Vec<Target>,
    },
    /// Truncate the log files of the targets (all apps and the daemon log
    /// when empty).
    Flush {
        targets: Vec<Target>,
    },
    ReloadLogs,
    /// Read rpm2's own settings (log rotation: `pm2-logrotate:*` in
    /// `module_conf.json`; the daemon's: `rpm2:*`) again and apply them;
    /// sent by `set`/`unset`.
    ReloadSettings,
    /// Write the dump file.
    Save {
        #[serde(default)]
        force: bool,
    },
    /// Start what the dump file holds and is not running.
    Resurrect,
    /// What the daemon has to tell besides answers: its predecessor died
    /// (told once), processes that one left running.
    Notices,
    /// Stream events (logs, process events, messages) until the client
    /// disconnects.
    Subscribe,
    /// Stop every app gracefully, then the daemon exits.
    Kill,
    /// pm2's `update`: the daemon re-executes the rpm2 binary now on disk
    /// in place, handing its state and open descriptors over, so no worker
    /// stops. Answered just before the exec.
    Update,
    /// pm2's `trigger`: run an `@pm2/io` action (`io.action`) in the
    /// matching workers and wait for their `axm:reply`. An id must name a
    /// worker that has the action; a name, namespace or `all` reaches the
    /// online workers that have it (maybe none).
    Trigger {
        target: Target,
        action: String,
        /// The action's first argument (`io.action(name, (params, reply))`).
        #[serde(default)]
        params: Option<serde_json::Value>,
    },
}

impl Request {
    /// Every request's `op` string, as serde spells it: the list JS clients
    /// are checked against (`index.js` builds its methods from these names).
    pub const OPS: &'static [&'static str] = &[
        "hello",
        "ping",
        "start",
        "start_or_reload",
        "stop",
        "restart",
        "reload",
        "delete",
        "toggle_watch",
        "scale",
        "list",
        "describe",
        "send_signal",
        "send_data",
        "reset",
        "flush",
        "reload_logs",
        "reload_settings",
        "save",
        "resurrect",
        "notices",
        "subscribe",
        "kill",
        "update",
        "trigger",
    ];

    /// This request's `op`; the match keeps [`Request::OPS`] complete.
    #[must_use]
    pub fn op(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Ping => "ping",
            Self::Start { .. } => "start",
            Self::StartOrReload { .. } => "start_or_reload",
            Self::Stop { .. } => "stop",
            Self::Restart { .. } => "restart",
            Self::Reload { .. } => "reload",
            Self::Delete { .. } => "delete",
            Self::ToggleWatch { .. } => "toggle_watch",
            Self::Scale { .. } => "scale",
            Self::List => "list",
            Self::Describe { .. } => "describe",
            Self::SendSignal { .. } => "send_signal",
            Self::SendData { .. } => "send_data",
            Self::Reset { .. } => "reset",
            Self::Flush { .. } => "flush",
            Self::ReloadLogs => "reload_logs",
            Self::ReloadSettings => "reload_settings",
            Self::Save { .. } => "save",
            Self::Resurrect => "resurrect",
            Self::Notices => "notices",
            Self::Subscribe => "subscribe",
            Self::Kill => "kill",
            Self::Update => "update",
            Self::Trigger { .. } => "trigger",
        }
    }
}

/// Options given with `restart`/`reload` (or `start` of a known app):
/// pm2 merges them into the app for this and every later start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecUpdate {
    /// `--name`: the app's new name (its log and pid files keep theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `--node-args` / `--interpreter-args`; empty clears them (`null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_args: Option<Vec<String>>,
}

impl SpecUpdate {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.interpreter_args.is_none()
    }
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
        /// The last `update` did not go through: the new image could not
        /// carry on and gave the daemon back to this one (why).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        update_refused: Option<String>,
    },
    Pong,
    Ok,
    /// Workers touched by an action, after it completed.
    Processes {
        processes: Vec<ProcessInfo>,
    },
    /// `Notices`: one line each, for stderr.
    Notices {
        notices: Vec<String>,
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
    /// `Trigger`: the workers the action was sent to, and the replies that
    /// came back (a worker that exited or never answered has none).
    Triggered {
        sent: Vec<EventProcess>,
        replies: Vec<ActionReply>,
    },
}

/// One worker's `axm:reply` to a triggered action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReply {
    pub process: EventProcess,
    /// When the daemon received it (ms since the epoch).
    pub at: u64,
    /// The reply as the app sent it: `{action_name, at, return}` from
    /// `@pm2/io`.
    pub data: serde_json::Value,
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
    /// Events this subscriber missed because it read too slowly: the
    /// daemon keeps a bounded number of bytes for each subscriber.
    #[serde(rename = "log:dropped")]
    Dropped {
        at: u64,
        /// Events left out (log chunks, process events).
        events: u64,
        /// Log lines in them.
        lines: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request of each kind.
    fn samples() -> Vec<Request> {
        let targets = vec![Target::All];
        vec![
            Request::Hello {
                protocol: PROTOCOL_VERSION,
                client: "t".into(),
                update_only: false,
            },
            Request::Ping,
            Request::Start {
                apps: Vec::new(),
                only_new: true,
                force: true,
                stopped: vec!["a".into()],
            },
            Request::StartOrReload { apps: Vec::new() },
            Request::Stop {
                targets: targets.clone(),
            },
            Request::Restart {
                targets: targets.clone(),
                update_env: None,
                update: SpecUpdate::default(),
            },
            Request::Reload {
                targets: targets.clone(),
                update_env: None,
                update: SpecUpdate {
                    name: Some("b".into()),
                    interpreter_args: Some(Vec::new()),
                },
                parallel: None,
            },
            Request::Delete {
                targets: targets.clone(),
            },
            Request::ToggleWatch {
                targets: targets.clone(),
            },
            Request::Scale {
                name: "a".into(),
                count: ScaleCount::Up(1),
            },
            Request::List,
            Request::Describe {
                targets: targets.clone(),
            },
            Request::SendSignal {
                signal: SignalName::SIGINT,
                targets: targets.clone(),
            },
            Request::SendData {
                pm_id: 0,
                packet: serde_json::Value::Null,
            },
            Request::Reset {
                targets: targets.clone(),
            },
            Request::Flush { targets },
            Request::ReloadLogs,
            Request::ReloadSettings,
            Request::Save { force: false },
            Request::Resurrect,
            Request::Notices,
            Request::Subscribe,
            Request::Kill,
            Request::Update,
            Request::Trigger {
                target: Target::Name("a".into()),
                action: "hello".into(),
                params: None,
            },
        ]
    }

    #[test]
    fn ops_list_matches_serde() {
        let samples = samples();
        let ops: Vec<&str> = samples.iter().map(Request::op).collect();
        assert_eq!(ops, Request::OPS);
        for req in &samples {
            let json = serde_json::to_value(req).unwrap();
            assert_eq!(json["op"], req.op());
        }
    }

    #[test]
    fn typed_fields_keep_their_wire_shape() {
        let json = serde_json::json!({"op": "scale", "name": "a", "count": "-2"});
        let req: Request = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&req).unwrap(), json);
        let json =
            serde_json::json!({"op": "send_signal", "signal": "usr2", "targets": ["0", "web"]});
        let req: Request = serde_json::from_value(json).unwrap();
        assert_eq!(
            req,
            Request::SendSignal {
                signal: "SIGUSR2".parse().unwrap(),
                targets: vec![Target::Id(0), Target::Name("web".into())],
            }
        );
        let bad = serde_json::json!({"op": "scale", "name": "a", "count": "lots"});
        assert!(serde_json::from_value::<Request>(bad).is_err());
    }
}
