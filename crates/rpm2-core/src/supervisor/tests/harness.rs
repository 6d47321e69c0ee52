//! The fake OS and the harness that drives the actor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use rpm2_logs::bus;
use rpm2_node_ipc::Incoming;
use rpm2_proto::{AppSpec, ExecMode, RpcError, WorkerStatus};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::Primary;
use crate::link::fake::FakeLink;
use crate::link::SharedLink;
use crate::paths::Home;
use crate::supervisor::actor::Actor;
use crate::supervisor::os::{Os, SpawnRequest, Started, Target};
use crate::supervisor::run::RunPhase;
use crate::supervisor::worker::WorkerState;
use crate::supervisor::{Call, Msg};
use crate::Gen;

/// What the fake OS was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OsCall {
    Spawn { run: Gen, pid: u32 },
    Signal { pid: u32, signal: Signal },
    WritePid { pid: u32 },
    RemovePid,
}

#[derive(Default)]
pub(super) struct FakeState {
    pub(super) calls: Vec<OsCall>,
    links: Vec<(Gen, Arc<FakeLink>)>,
    next_pid: u32,
    /// Spawns to refuse from now on.
    pub(super) refuse_spawns: bool,
    /// Runs started with the drain preload.
    pub(super) preloaded: Vec<Gen>,
}

pub(super) struct FakeOs(Arc<Mutex<FakeState>>);

impl Os for FakeOs {
    fn spawn(&mut self, req: SpawnRequest<'_>) -> std::io::Result<Started> {
        let mut st = self.0.lock().unwrap();
        if st.refuse_spawns {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        st.next_pid += 1;
        let pid = 1000 + st.next_pid;
        st.calls.push(OsCall::Spawn { run: req.run, pid });
        if req.preload.is_some() {
            st.preloaded.push(req.run);
        }
        let link = req.spec.node.then(|| {
            let link = FakeLink::new();
            st.links.push((req.run, link.clone()));
            link as SharedLink
        });
        Ok(Started {
            pid,
            link,
            log_error: None,
        })
    }

    fn signal(&mut self, target: Target<'_>, signal: Signal) -> nix::Result<()> {
        let pid = target.pid;
        self.0
            .lock()
            .unwrap()
            .calls
            .push(OsCall::Signal { pid, signal });
        Ok(())
    }

    fn sweep(&mut self, _: &str, _: Duration) {}

    fn write_pid_file(&mut self, _: &std::path::Path, pid: u32) {
        self.0.lock().unwrap().calls.push(OsCall::WritePid { pid });
    }

    fn remove_pid_file(&mut self, _: &std::path::Path) {
        self.0.lock().unwrap().calls.push(OsCall::RemovePid);
    }
}

pub(super) struct Harness {
    pub(super) actor: Actor,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub(super) os: Arc<Mutex<FakeState>>,
    _home: tempfile::TempDir,
}

pub(super) type Answer = oneshot::Receiver<Result<(), RpcError>>;

pub(super) fn fork_app(name: &str) -> AppSpec {
    AppSpec::with_defaults(
        name.into(),
        std::path::PathBuf::from("/srv/app.js"),
        std::path::PathBuf::from("/srv"),
    )
}

pub(super) fn cluster_app(name: &str, instances: u32) -> AppSpec {
    let mut spec = fork_app(name);
    spec.exec_mode = ExecMode::Cluster;
    spec.node = true;
    spec.instances = instances;
    spec.wait_ready = true;
    spec
}

impl Harness {
    pub(super) fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
        let (conn_tx, _conn_rx) = mpsc::unbounded_channel();
        let os = Arc::new(Mutex::new(FakeState::default()));
        let actor = Actor::new(
            Home::new(home.path().to_path_buf()),
            tx,
            bus,
            Primary::new(conn_tx),
            Box::new(FakeOs(os.clone())),
        );
        Self {
            actor,
            rx,
            os,
            _home: home,
        }
    }

    /// Handle every message due now (timer tasks included).
    pub(super) async fn settle(&mut self) {
        for _ in 0..8 {
            tokio::task::yield_now().await;
            while let Ok(msg) = self.rx.try_recv() {
                self.actor.handle(msg);
            }
        }
    }

    pub(super) async fn advance(&mut self, ms: u64) {
        tokio::time::advance(Duration::from_millis(ms)).await;
        self.settle().await;
    }

    pub(super) fn call<T>(
        &mut self,
        make: impl FnOnce(oneshot::Sender<Result<T, RpcError>>) -> Call,
    ) -> oneshot::Receiver<Result<T, RpcError>> {
        let (tx, rx) = oneshot::channel();
        self.actor.handle(Msg::Call(make(tx)));
        rx
    }

    /// Register `spec` and start its workers; returns their ids.
    pub(super) async fn start(&mut self, spec: AppSpec) -> Vec<u32> {
        let mut reg = self.call(|reply| Call::Register {
            apps: vec![spec],
            only_new: false,
            force: false,
            stopped: Vec::new(),
            reply,
        });
        let ids = reg.try_recv().unwrap().unwrap().new_ids;
        for &pm_id in &ids {
            drop(self.call(|reply| Call::Start {
                pm_id,
                until_ready: false,
                reply,
            }));
        }
        self.settle().await;
        ids
    }

    pub(super) fn stop(&mut self, pm_id: u32) -> Answer {
        self.call(|reply| Call::Stop { pm_id, reply })
    }

    pub(super) fn restart(&mut self, pm_id: u32) -> Answer {
        self.call(|reply| Call::Restart {
            pm_id,
            update_env: None,
            reply,
        })
    }

    pub(super) fn reload(&mut self, pm_id: u32) -> Answer {
        self.call(|reply| Call::Reload {
            pm_id,
            update_env: None,
            reply,
        })
    }

    pub(super) fn state(&self, pm_id: u32) -> WorkerState {
        self.actor.table.workers[&pm_id].life.state
    }

    pub(super) fn status(&self, pm_id: u32) -> WorkerStatus {
        self.actor.table.workers[&pm_id].life.status()
    }

    pub(super) fn serving(&self, pm_id: u32) -> Gen {
        self.actor.table.workers[&pm_id].life.serving().unwrap()
    }

    pub(super) fn phase(&self, gen: Gen) -> RunPhase {
        self.actor.table.runs[&gen].phase
    }

    pub(super) fn pid(&self, gen: Gen) -> u32 {
        self.actor.table.runs[&gen].pid
    }

    pub(super) fn restarts(&self, pm_id: u32) -> (u32, u32) {
        let c = self.actor.table.workers[&pm_id].life.counters;
        (c.restart_time, c.unstable_restarts)
    }

    pub(super) fn spawns(&self) -> usize {
        let st = self.os.lock().unwrap();
        st.calls
            .iter()
            .filter(|c| matches!(c, OsCall::Spawn { .. }))
            .count()
    }

    pub(super) fn signals_to(&self, pid: u32) -> Vec<Signal> {
        let st = self.os.lock().unwrap();
        st.calls
            .iter()
            .filter_map(|c| match c {
                OsCall::Signal { pid: p, signal } if *p == pid => Some(*signal),
                _ => None,
            })
            .collect()
    }

    pub(super) fn link(&self, gen: Gen) -> Arc<FakeLink> {
        let st = self.os.lock().unwrap();
        st.links.iter().find(|(g, _)| *g == gen).unwrap().1.clone()
    }

    /// The newest run that is not `gen` (a successor).
    pub(super) fn newest_run(&self) -> Gen {
        *self.actor.table.runs.keys().max().unwrap()
    }

    /// The process of `gen` exits.
    pub(super) async fn exit(&mut self, gen: Gen, code: Option<i32>, signal: Option<i32>) {
        self.actor.handle(Msg::Exited { gen, code, signal });
        self.settle().await;
    }

    /// The worker of run `gen` says `msg` on its channel.
    pub(super) async fn says(&mut self, gen: Gen, msg: serde_json::Value) {
        self.actor.handle(Msg::Ipc {
            gen,
            incoming: Incoming::Message { msg, handle: None },
        });
        self.settle().await;
    }
}

pub(super) fn answered(rx: &mut Answer) -> Option<Result<(), RpcError>> {
    rx.try_recv().ok()
}

/// Start a cluster worker and make it ready; returns (id, run).
pub(super) async fn ready_cluster_worker(h: &mut Harness, spec: AppSpec) -> (u32, Gen) {
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    h.says(run, json!("ready")).await;
    assert_eq!(h.status(id), WorkerStatus::Online);
    (id, run)
}
