//! The process table: plain data owned by the supervisor actor alone.
//!
//! - an **app** is one spec (its name is the key);
//! - a **worker** is one `pm_id` of an app and outlives its processes;
//! - a **run** is one OS process of a worker. During a reload a worker has
//!   a successor run and the old run being drained at the same time, so
//!   runs are keyed by a generation number that is never reused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use rpm2_proto::{AppSpec, RpcError, Target};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::run::RunPhase;
use super::worker::{Life, Waiting};
use crate::link::SharedLink;
pub use crate::Gen;

/// A reply waiting for something to happen to a worker or a run.
pub type Waiter = oneshot::Sender<Result<(), RpcError>>;

pub struct App {
    pub spec: AppSpec,
    /// Watch, cron: dropped (disarmed) with the app or a new spec.
    pub triggers: super::triggers::Triggers,
}

pub struct Worker {
    pub pm_id: u32,
    pub app: String,
    /// `NODE_APP_INSTANCE` (or `instance_var`).
    pub instance: u32,
    /// Its state machine (`worker.rs`) with the counters it keeps.
    pub life: Life,
    pub created_at: u64,
    pub unique_id: String,
    /// Callers waiting for it to be online, ready, or reloaded.
    pub waiters: Waiters,
    /// Environment the last run got (shown by `describe`/`env`).
    pub env: BTreeMap<String, String>,
    pub out_log: Option<PathBuf>,
    pub err_log: Option<PathBuf>,
    pub combined_log: Option<PathBuf>,
    pub pid_path: PathBuf,
    /// A log file its last start could not open.
    pub log_error: Option<String>,
    /// What the app reported through `@pm2/io` (`axm:*` messages).
    pub axm: rpm2_proto::info::Axm,
}

/// Replies parked on a worker until its machine says what became of them.
#[derive(Default)]
pub struct Waiters {
    online: Vec<Waiter>,
    ready: Vec<Waiter>,
    reload: Vec<Waiter>,
}

impl Waiters {
    fn list(&mut self, which: Waiting) -> &mut Vec<Waiter> {
        match which {
            Waiting::Online => &mut self.online,
            Waiting::Ready => &mut self.ready,
            Waiting::Reload => &mut self.reload,
        }
    }

    pub fn push(&mut self, which: Waiting, waiter: Waiter) {
        self.list(which).push(waiter);
    }

    pub fn take(&mut self, which: Waiting) -> Vec<Waiter> {
        std::mem::take(self.list(which))
    }
}

/// One OS process of a worker.
pub struct Run {
    pub pm_id: u32,
    pub pid: u32,
    pub started: Instant,
    /// Its state machine (`run.rs`).
    pub phase: RunPhase,
    /// Its IPC channel (Node workers).
    pub link: Option<SharedLink>,
    /// A cluster worker with a channel: the primary routes to it.
    pub cluster: bool,
    /// Waiting for this run to exit.
    pub exit_waiters: Vec<Waiter>,
    /// Its drain preload, as far as we know.
    pub preload: super::drain::Preload,
    /// Requests in flight, as its preload last reported.
    pub inflight: Option<u32>,
    /// Watchdog and probes (`health.rs`).
    pub health: super::health::RunHealth,
}

/// Everything the actor owns.
#[derive(Default)]
pub struct Table {
    pub apps: BTreeMap<String, App>,
    pub workers: BTreeMap<u32, Worker>,
    pub runs: HashMap<Gen, Run>,
    /// Run numbers and restart timers: never reused.
    pub next_id: u64,
    /// `NODE_UNIQUE_ID`s: Node never reuses one, neither do we.
    pub next_cluster_id: u32,
}

impl Table {
    /// pm2 hands out ids upward and starts again at 0 once the list is empty.
    #[must_use]
    pub fn next_pm_id(&self) -> u32 {
        // Cannot overflow in practice: one id per worker ever registered
        // in this daemon's life, each a process started (2^32 of them).
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

    /// The key of a second app named `name` (`start -f`): the name, a NUL
    /// (which no name given through argv or JSON config holds in
    /// practice) and a number, so it never meets a real name.
    #[must_use]
    pub fn second_key(&self, name: &str) -> String {
        (1..)
            .map(|n| format!("{name}\0{n}"))
            .find(|k| !self.apps.contains_key(k))
            .unwrap_or_default()
    }

    /// The key of the (first) app named `name`: its own name, unless it
    /// was renamed.
    #[must_use]
    pub fn key_of(&self, name: &str) -> Option<String> {
        match self.apps.get(name) {
            Some(a) if a.spec.name == name => Some(name.to_owned()),
            _ => self
                .apps
                .iter()
                .find(|(_, a)| a.spec.name == name)
                .map(|(k, _)| k.clone()),
        }
    }

    /// The app name a worker shows (its key may be a second app's).
    #[must_use]
    pub fn name_of<'a>(&'a self, w: &'a Worker) -> &'a str {
        self.apps
            .get(&w.app)
            .map_or(w.app.as_str(), |a| a.spec.name.as_str())
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
    /// looks like a number wins over the id, as in pm2). Unknown → `Err`,
    /// and so is `all` when there is no worker (pm2: "No process found").
    ///
    /// Indexes by app and namespace are built once per call (when a
    /// target needs them), so a start of thousands of apps, which resolves
    /// each of their names, stays linear.
    pub fn resolve(&self, targets: &[Target]) -> Result<Vec<u32>, Target> {
        let mut ids = BTreeSet::new();
        let mut by_app: Option<BTreeMap<&str, Vec<u32>>> = None;
        let mut by_ns: Option<BTreeMap<&str, Vec<u32>>> = None;
        for target in targets {
            let name = match target {
                Target::All if self.workers.is_empty() => return Err(Target::All),
                Target::All => {
                    ids.extend(self.workers.keys().copied());
                    continue;
                }
                Target::Id(id) => id.to_string(),
                Target::Name(name) => name.clone(),
            };
            let by_app = by_app.get_or_insert_with(|| {
                let mut index: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
                for w in self.workers.values() {
                    index.entry(self.name_of(w)).or_default().push(w.pm_id);
                }
                index
            });
            if let Some(found) = by_app.get(name.as_str()) {
                ids.extend(found);
                continue;
            }
            let by_ns = by_ns.get_or_insert_with(|| {
                let mut index: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
                for w in self.workers.values() {
                    if let Some(app) = self.apps.get(&w.app) {
                        index
                            .entry(app.spec.namespace.as_str())
                            .or_default()
                            .push(w.pm_id);
                    }
                }
                index
            });
            if let Some(found) = by_ns.get(name.as_str()) {
                ids.extend(found);
                continue;
            }
            match target {
                Target::Id(id) if self.workers.contains_key(id) => {
                    ids.insert(*id);
                }
                _ => return Err(target.clone()),
            }
        }
        Ok(ids.into_iter().collect())
    }

    pub fn alloc_cluster_id(&mut self) -> u32 {
        self.next_cluster_id += 1;
        self.next_cluster_id
    }

    /// True while some worker of `app` has, or is about to have, a process:
    /// the app's listening sockets must stay open meanwhile.
    #[must_use]
    pub fn app_alive(&self, app: &str) -> bool {
        self.workers
            .values()
            .any(|w| w.app == app && w.life.is_alive())
    }
}
