//! The process table: plain data owned by the supervisor actor alone.
//!
//! - an **app** is one spec (its name is the key);
//! - a **worker** is one `pm_id` of an app and outlives its processes;
//! - a **run** is one OS process of a worker. During a reload a worker has
//!   a successor run and the old run being drained at the same time, so
//!   runs are keyed by a generation number that is never reused.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use rpm2_node_ipc::ChannelSender;
use rpm2_proto::{AppSpec, WorkerStatus};
use tokio::sync::oneshot;

use crate::cluster::primary::ClusterApp;
use crate::worker::policy::RestartCounters;

/// Generation number of a run (a process), unique for the daemon's life.
pub type Gen = u64;

/// Replies waiting for something to happen to a worker.
pub type Waiter = oneshot::Sender<Result<(), rpm2_proto::RpcError>>;

pub struct App {
    pub spec: AppSpec,
    pub cluster: ClusterApp,
    /// Watch, cron: dropped (disarmed) with the app or a new spec.
    pub triggers: super::triggers::Triggers,
}

pub struct Worker {
    pub pm_id: u32,
    pub app: String,
    /// `NODE_APP_INSTANCE` (or `instance_var`).
    pub instance: u32,
    pub status: WorkerStatus,
    pub counters: RestartCounters,
    pub created_at: u64,
    pub pm_uptime: u64,
    pub exit_code: Option<i32>,
    pub unique_id: String,
    /// The run that serves (or is starting) for this worker.
    pub run: Option<Gen>,
    /// A reload's successor, until it is ready.
    pub successor: Option<Gen>,
    /// Bumped to cancel a pending delayed restart.
    pub restart_token: u64,
    /// Replies for callers waiting for the worker to be online.
    pub online_waiters: Vec<Waiter>,
    /// Replies for callers waiting for the worker to be ready to serve.
    pub ready_waiters: Vec<Waiter>,
    /// Replies for a reload in progress (answered when the old run is gone).
    pub reload_waiters: Vec<Waiter>,
    /// `restart` in progress: start again once the current run has exited.
    pub restart_pending: Option<Vec<Waiter>>,
    /// Environment the last run got (shown by `describe`/`env`).
    pub env: BTreeMap<String, String>,
    pub out_log: Option<PathBuf>,
    pub err_log: Option<PathBuf>,
    pub combined_log: Option<PathBuf>,
    pub pid_path: PathBuf,
}

impl Worker {
    /// Answer callers waiting for this worker to be ready to serve, and with
    /// `online_too` those waiting for it to be online.
    pub fn answer_start_waiters(
        &mut self,
        result: &Result<(), rpm2_proto::RpcError>,
        online_too: bool,
    ) {
        let online = if online_too {
            std::mem::take(&mut self.online_waiters)
        } else {
            Vec::new()
        };
        for waiter in online
            .into_iter()
            .chain(std::mem::take(&mut self.ready_waiters))
        {
            let _ = waiter.send(result.clone());
        }
    }
}

/// How far a run has come.
pub struct Run {
    pub pm_id: u32,
    pub pid: u32,
    pub started: Instant,
    pub channel: Option<ChannelSender>,
    /// Counts as started (`online`): spawned (fork), cluster `online`, or
    /// `ready`/listen_timeout with `wait_ready`.
    pub online: bool,
    /// Ready to take over in a reload/scale: `listening` (or `ready` with
    /// `wait_ready`), or listen_timeout.
    pub ready: bool,
    /// Someone asked this run to end; its exit is not a crash, and it gets
    /// no new connections.
    pub stop_requested: bool,
    /// SIGINT (or `'shutdown'`) was sent, with its SIGKILL timer.
    pub interrupted: bool,
    /// Cluster listener keys this run has joined.
    pub keys: BTreeSet<String>,
    /// Connections handed over with `newconn`, waiting for `accepted`
    /// (several at once: see `MAX_PENDING_CONNS`).
    pub pending_conns: VecDeque<crate::cluster::primary::PendingConn>,
    /// Connections waiting for this run in particular (sticky mode).
    pub queued_conns: VecDeque<crate::cluster::primary::Conn>,
    /// Waiting for this run to exit.
    pub exit_waiters: Vec<Waiter>,
    /// Our cluster message counter towards this worker.
    pub next_seq: u64,
}

impl Run {
    #[must_use]
    pub fn new(pm_id: u32, pid: u32, channel: Option<ChannelSender>) -> Self {
        Self {
            pm_id,
            pid,
            started: Instant::now(),
            channel,
            online: false,
            ready: false,
            stop_requested: false,
            interrupted: false,
            keys: BTreeSet::new(),
            pending_conns: VecDeque::new(),
            queued_conns: VecDeque::new(),
            exit_waiters: Vec::new(),
            next_seq: 0,
        }
    }
}

/// Everything the actor owns.
#[derive(Default)]
pub struct Table {
    pub apps: BTreeMap<String, App>,
    pub workers: BTreeMap<u32, Worker>,
    pub runs: HashMap<Gen, Run>,
    pub next_gen: Gen,
    /// `NODE_UNIQUE_ID`s: Node never reuses one, neither do we.
    pub next_cluster_id: u32,
}

impl Table {
    /// pm2 hands out ids upward and starts again at 0 once the list is empty.
    #[must_use]
    pub fn next_pm_id(&self) -> u32 {
        self.workers.keys().next_back().map_or(0, |last| last + 1)
    }

    /// The lowest instance index not used by another worker of `app`.
    #[must_use]
    pub fn free_instance(&self, app: &str) -> u32 {
        let used: BTreeSet<u32> = self
            .workers
            .values()
            .filter(|w| w.app == app)
            .map(|w| w.instance)
            .collect();
        (0..).find(|i| !used.contains(i)).unwrap_or(0)
    }

    #[must_use]
    pub fn workers_of(&self, app: &str) -> Vec<u32> {
        self.workers
            .values()
            .filter(|w| w.app == app)
            .map(|w| w.pm_id)
            .collect()
    }

    /// Resolve pm2 targets: `all`, a name, a namespace, an id (a name that
    /// looks like a number wins over the id, as in pm2). Unknown → `Err`.
    pub fn resolve(&self, targets: &[String]) -> Result<Vec<u32>, String> {
        let mut ids = BTreeSet::new();
        for t in targets {
            let before = ids.len();
            if t == "all" {
                ids.extend(self.workers.keys().copied());
                continue;
            }
            let by_name: Vec<u32> = self.workers_of(t);
            if by_name.is_empty() {
                let by_ns: Vec<u32> = self
                    .workers
                    .values()
                    .filter(|w| {
                        self.apps
                            .get(&w.app)
                            .is_some_and(|a| &a.spec.namespace == t)
                    })
                    .map(|w| w.pm_id)
                    .collect();
                if by_ns.is_empty() {
                    if let Ok(id) = t.parse::<u32>() {
                        if self.workers.contains_key(&id) {
                            ids.insert(id);
                        }
                    }
                } else {
                    ids.extend(by_ns);
                }
            } else {
                ids.extend(by_name);
            }
            if ids.len() == before && !self.target_matches_known(t) {
                return Err(t.clone());
            }
        }
        Ok(ids.into_iter().collect())
    }

    fn target_matches_known(&self, t: &str) -> bool {
        t == "all"
            || self.apps.contains_key(t)
            || t.parse::<u32>()
                .is_ok_and(|id| self.workers.contains_key(&id))
    }

    pub fn alloc_gen(&mut self) -> Gen {
        self.next_gen += 1;
        self.next_gen
    }

    pub fn alloc_cluster_id(&mut self) -> u32 {
        self.next_cluster_id += 1;
        self.next_cluster_id
    }

    /// True while some worker of `app` has, or is about to have, a process:
    /// the app's listening sockets must stay open meanwhile.
    #[must_use]
    pub fn app_alive(&self, app: &str) -> bool {
        self.workers.values().any(|w| {
            w.app == app
                && (w.run.is_some()
                    || w.restart_pending.is_some()
                    || matches!(
                        w.status,
                        WorkerStatus::Launching
                            | WorkerStatus::Online
                            | WorkerStatus::WaitingRestart
                    ))
        })
    }
}
