//! The supervisor: one actor owns the process table (`state.rs`); RPC
//! handlers, timers, worker tasks and accept loops talk to it only by
//! message. Long operations (restart, reload, stop) are sequences of
//! `Call`s made by `ops.rs` from the RPC task; each `Call` answers through a
//! oneshot once it is done, so a dead actor is an error and never a hang.

pub(crate) mod actor;
mod adopt;
mod axm;
mod axm_book;
mod calls;
pub mod drain;
mod env;
pub mod exits;
pub mod handover;
mod health;
mod info;
mod lifecycle;
mod module_env;
pub mod notices;
pub mod ops;
mod os;
mod probe;
mod replace;
mod restore;
pub mod run;
mod settle;
pub(crate) mod state;
#[cfg(test)]
mod tests;
mod triggers;
pub mod worker;

use std::collections::BTreeMap;

use rpm2_logs::bus;
use rpm2_node_ipc::Incoming;
use rpm2_proto::{AppSpec, ErrorCode, ProcessInfo, RpcError, ScaleCount, SignalName, Target};
use tokio::sync::{mpsc, oneshot};

pub use actor::{spawn_supervisor, spawn_supervisor_restored};
use run::RunTimer;
use state::Gen;

pub type Reply<T> = oneshot::Sender<Result<T, RpcError>>;

/// Most workers one app may have (`instances`, `scale`): far above any
/// machine's cores, far below what would exhaust the daemon's memory.
pub const MAX_WORKERS_PER_APP: u32 = 10_000;

/// Everything the actor reacts to.
pub enum Msg {
    /// A run's process was reaped.
    Exited {
        gen: Gen,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// A message (or EOF) on a run's IPC channel.
    Ipc { gen: Gen, incoming: Incoming },
    /// A per-run deadline fired.
    Timer { gen: Gen, timer: RunTimer },
    /// A delayed restart is due (ignored if `timer` is stale).
    RestartDue { pm_id: u32, timer: u64 },
    /// A request from `ops`.
    Call(Call),
    /// A watch or cron trigger of an app fired.
    Triggered {
        app: String,
        trigger: triggers::Trigger,
    },
    /// The watch delay after a change has passed.
    WatchDue { app: String },
    /// Time to compare memory with `max_memory_restart`.
    MemoryTick,
    /// A `trigger`'s wait for replies is over.
    TriggerDue { id: u64 },
    /// Time to ping the workers' event loops (`health.rs`).
    WatchdogTick,
    /// Time for a run's probe (`probe.rs`).
    ProbeDue { gen: Gen, kind: probe::ProbeKind },
    /// A run's probe ended.
    ProbeDone {
        gen: Gen,
        kind: probe::ProbeKind,
        result: Result<(), String>,
    },
}

/// The primitive operations `ops` composes.
pub enum Call {
    /// Add apps (or, for a known name, replace its spec). Returns the ids
    /// to start and the ids that already existed (to restart).
    /// New apps named in `stopped` are registered but stay stopped
    /// (resurrect of a dump where they were stopped). With `force`, a known
    /// name gets a second app beside the first (`start <script> -f`); a
    /// name given twice in one call does too (a dump of such apps).
    Register {
        apps: Vec<AppSpec>,
        only_new: bool,
        force: bool,
        stopped: Vec<String>,
        reply: Reply<Registered>,
    },
    Resolve {
        targets: Vec<Target>,
        reply: Reply<Vec<u32>>,
    },
    /// Merge options given with restart/reload into the apps of `ids`.
    Update {
        ids: Vec<u32>,
        update: rpm2_proto::SpecUpdate,
        reply: Reply<()>,
    },
    /// Start a worker that is not running; answers once it is online, or
    /// with `until_ready` once it is ready to serve (scale-up waits for
    /// `listening`/`ready`, like a reload).
    Start {
        pm_id: u32,
        until_ready: bool,
        reply: Reply<()>,
    },
    /// Stop (and start again) a worker; answers once it is online.
    Restart {
        pm_id: u32,
        update_env: Option<BTreeMap<String, String>>,
        reply: Reply<()>,
    },
    /// Zero-downtime replacement of a cluster worker; answers when the old
    /// process is gone, or with an error if the successor failed.
    Reload {
        pm_id: u32,
        update_env: Option<BTreeMap<String, String>>,
        reply: Reply<()>,
    },
    Stop {
        pm_id: u32,
        reply: Reply<()>,
    },
    /// Remove a stopped worker from the table.
    Remove {
        pm_id: u32,
        reply: Reply<()>,
    },
    /// Workers to add (started by the caller) or remove to reach a count.
    Scale {
        name: String,
        count: ScaleCount,
        reply: Reply<ScalePlan>,
    },
    Info {
        ids: Option<Vec<u32>>,
        reply: Reply<Vec<ProcessInfo>>,
    },
    /// Connections each cluster worker's live runs accepted (`/metrics`).
    HandedOff {
        reply: Reply<std::collections::HashMap<u32, u64>>,
    },
    Signal {
        pm_id: u32,
        signal: SignalName,
        reply: Reply<()>,
    },
    SendData {
        pm_id: u32,
        packet: serde_json::Value,
        reply: Reply<()>,
    },
    Reset {
        pm_id: u32,
        reply: Reply<()>,
    },
    /// Log file paths of the workers (all when `None`).
    LogPaths {
        ids: Option<Vec<u32>>,
        reply: Reply<Vec<std::path::PathBuf>>,
    },
    /// Turn watching of the workers' apps off, or toggle it (pm2's
    /// `stopWatch`, `toggleWatch`).
    Watch {
        ids: Vec<u32>,
        change: WatchChange,
        reply: Reply<()>,
    },
    /// Specs of every app with whether it has a running worker (for save).
    Specs {
        reply: Reply<Vec<(AppSpec, bool)>>,
    },
    /// Send an `@pm2/io` action to the matching workers; answers with
    /// their replies (`axm_book.rs`).
    Trigger {
        target: Target,
        action: String,
        params: Option<serde_json::Value>,
        reply: Reply<axm_book::Triggered>,
    },
    /// No more new work: the daemon is going down.
    ShutDown {
        reply: Reply<()>,
    },
    /// A step of `rpm2 update` (`handover.rs`).
    Handover {
        step: handover::HandoverStep,
    },
}

/// What `Call::Watch` does to an app's watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchChange {
    /// `stop`: pm2 stops watching what it stops.
    Off,
    /// `restart --watch`: on if it was off, off if it was on.
    Toggle,
}

pub struct Registered {
    pub new_ids: Vec<u32>,
    pub existing_ids: Vec<u32>,
    /// Workers above a known app's new instance count (to delete).
    pub extra_ids: Vec<u32>,
    /// New ids that must stay stopped (`autostart: false`, or stopped in a dump).
    pub stay_stopped: Vec<u32>,
}

pub struct ScalePlan {
    pub add: Vec<u32>,
    pub remove: Vec<u32>,
}

/// A cheap, cloneable way to talk to the actor.
#[derive(Clone)]
pub struct SupervisorHandle {
    tx: mpsc::UnboundedSender<Msg>,
    bus: bus::Sender,
    logs: rpm2_logs::LogRegistry,
    /// The actor's instance id: the prefix of its runs' process markers.
    instance: std::sync::Arc<str>,
    notices: notices::Notices,
    exits: exits::ExitBook,
}

impl SupervisorHandle {
    /// Send a call built around a fresh oneshot and wait for its answer.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Call) -> Result<T, RpcError> {
        self.send(make)?.await.map_err(|_| self.unanswered())?
    }

    /// Why a call's reply was dropped: the actor is gone (shutting down),
    /// or it is alive and dropped it, which only a panic on that call's
    /// path does (contained in `actor.rs`, logged by the panic hook).
    pub(crate) fn unanswered(&self) -> RpcError {
        if self.tx.is_closed() {
            shutting_down()
        } else {
            RpcError::new(
                ErrorCode::Internal,
                "the daemon dropped this request without an answer (a bug; see its log)",
            )
        }
    }

    /// Send a call built around a fresh oneshot; its answer comes on the
    /// receiver (for several calls in flight at once).
    pub fn send<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Call,
    ) -> Result<oneshot::Receiver<Result<T, RpcError>>, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Call(make(tx)))
            .map_err(|_| shutting_down())?;
        Ok(rx)
    }

    #[must_use]
    pub fn subscribe(&self) -> bus::Receiver {
        self.bus.subscribe()
    }

    #[must_use]
    pub fn logs(&self) -> &rpm2_logs::LogRegistry {
        &self.logs
    }

    /// The last exit of each worker (`rpm2-runtime`'s exit code).
    #[must_use]
    pub fn exits(&self) -> &exits::ExitBook {
        &self.exits
    }

    /// What the daemon has to tell the user (previous crash, orphans).
    #[must_use]
    pub fn notices(&self) -> &notices::Notices {
        &self.notices
    }

    /// Look for processes a previous daemon of `home` left running
    /// (blocks for the /proc walk: no thread is started for it).
    pub fn find_orphans(&self, home: &std::path::Path) {
        let found = crate::worker::tree::orphans(home, &self.instance);
        if !found.is_empty() {
            tracing::warn!("{}", notices::describe_orphans(&found));
        }
        self.notices.set_orphans(found);
    }

    /// What is left of the stopped workers' process trees gets SIGKILL
    /// once `grace` has passed (the daemon is about to exit).
    pub async fn kill_leftovers(&self, grace: std::time::Duration) {
        let instance = std::sync::Arc::clone(&self.instance);
        let _ = tokio::task::spawn_blocking(move || {
            crate::worker::tree::kill_leftovers(&instance, grace);
        })
        .await;
    }
}

fn not_found(pm_id: u32) -> RpcError {
    RpcError::new(
        ErrorCode::ProcessNotFound,
        format!("process {pm_id} not found"),
    )
}

fn shutting_down() -> RpcError {
    RpcError::new(ErrorCode::ShuttingDown, "the daemon is shutting down")
}

/// ms since the epoch.
#[must_use]
pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(u64::MAX)
}
