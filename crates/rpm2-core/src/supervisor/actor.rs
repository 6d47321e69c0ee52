//! The actor loop: receives every `Msg` and accepted connection, feeds the
//! state machines (`worker.rs`, `run.rs`) and performs the effects they
//! return. Event handlers live in `lifecycle.rs` (processes) and `calls.rs`
//! (requests); routing is the cluster primary's (`cluster::Primary`).

use rpm2_logs::bus;
use rpm2_logs::LogRegistry;
use rpm2_proto::{Event, EventProcess};
use tokio::sync::mpsc;

use super::os::{Os, RealOs};
use super::state::{Table, Waiter};
use super::worker::{Answer, Context, Effect, WorkerEvent};
use super::{now_ms, Msg, SupervisorHandle};
use crate::cluster::{Conn, Primary};
use crate::metrics::CpuSampler;
use crate::paths::Home;

pub(crate) struct Actor {
    pub(crate) table: Table,
    pub(crate) home: Home,
    pub(crate) tx: mpsc::UnboundedSender<Msg>,
    pub(crate) bus: bus::Sender,
    pub(crate) cpu: CpuSampler,
    pub(crate) shutting_down: bool,
    pub(crate) primary: Primary,
    pub(crate) os: Box<dyn Os>,
    /// Unique to this daemon's life: with a run's number it marks the
    /// run's processes (`worker::tree`).
    pub(crate) instance: String,
    /// The drain preload in the home, if it could be written there.
    pub(crate) preload_file: Option<std::path::PathBuf>,
    /// `@pm2/io`: which run reports, triggers waiting for replies.
    pub(crate) axm: super::axm_book::AxmBook,
    /// Each worker's last exit, read by `rpm2-runtime`.
    pub(crate) exits: super::exits::ExitBook,
    /// When each armed restart is due, by (worker, timer): an update
    /// carries the deadlines over.
    pub(crate) restart_deadlines: std::collections::HashMap<(u32, u64), tokio::time::Instant>,
    /// Set while `rpm2 update` hands the daemon over.
    pub(crate) frozen: Option<super::handover::Frozen>,
}

/// Start the actor on the current runtime and return its handle.
#[must_use]
pub fn spawn_supervisor(home: Home) -> SupervisorHandle {
    start_actor(home, |_| {})
}

/// Start the actor with the table a previous image of the daemon handed
/// over (`rpm2 update`).
#[must_use]
pub fn spawn_supervisor_restored(
    home: Home,
    table: crate::handover::snapshot::TableSnap,
    listeners: Vec<crate::handover::snapshot::ListenerSnap>,
) -> SupervisorHandle {
    start_actor(home, move |actor| actor.restore(table, listeners))
}

fn start_actor(home: Home, prepare: impl FnOnce(&mut Actor)) -> SupervisorHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Lagging subscribers lose events (and are told so); they never slow
    // the daemon down, and each costs at most `SUBSCRIBER_LIMIT` bytes.
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let logs = LogRegistry::new();
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<Conn>();
    let os = RealOs::new(tx.clone(), bus.clone(), logs.clone());
    let mut actor = Actor::new(
        home,
        tx.clone(),
        bus.clone(),
        Primary::new(conn_tx),
        Box::new(os),
    );
    prepare(&mut actor);
    let instance: std::sync::Arc<str> = std::sync::Arc::from(actor.instance.as_str());
    let exits = actor.exits.clone();
    super::triggers::spawn_memory_ticks(tx.clone());
    super::health::spawn_watchdog_ticks(tx.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => contain("a message", || actor.handle(msg)),
                    None => return,
                },
                Some(conn) = conn_rx.recv() => contain("a connection", || actor.primary.route(conn)),
            }
        }
    });
    SupervisorHandle {
        tx,
        bus,
        logs,
        instance,
        notices: super::notices::Notices::default(),
        exits,
    }
}

/// Run one step of the actor; a panic in it (a bug: the hook has logged
/// it) ends that step only. The actor is the daemon's one owner of the
/// table and the cluster primary: were it to end, or the daemon to exit
/// for a systemd unit to restart it, every cluster worker would lose its
/// channel and exit, so a bug on one message's path would take every app
/// down, and again after each restart if that message comes back. Going
/// on risks one worker's entry being left mid-change (a reply dropped, an
/// effect not done); the state machines refuse events that do not fit
/// their state, and `rpm2 restart`/`delete` of that app sets it straight.
fn contain(what: &str, step: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).is_err() {
        tracing::error!("supervisor: a panic while handling {what}; going on with the next");
    }
}

impl Actor {
    pub(crate) fn new(
        home: Home,
        tx: mpsc::UnboundedSender<Msg>,
        bus: bus::Sender,
        primary: Primary,
        os: Box<dyn Os>,
    ) -> Self {
        let preload_file = super::drain::install(home.root())
            .map_err(|e| {
                tracing::warn!(
                    "cannot write the drain preload into {}: {e}; workers drain without it",
                    home.root().display()
                );
            })
            .ok();
        Self {
            preload_file,
            table: Table::default(),
            home,
            tx,
            bus,
            cpu: CpuSampler::default(),
            shutting_down: false,
            primary,
            os,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            axm: super::axm_book::AxmBook::default(),
            exits: super::exits::ExitBook::default(),
            restart_deadlines: std::collections::HashMap::new(),
            frozen: None,
        }
    }

    /// The environment marker of run `gen`'s processes.
    pub(crate) fn run_marker(&self, gen: crate::Gen) -> String {
        format!("{}.{gen}", self.instance)
    }

    pub(crate) fn handle(&mut self, msg: Msg) {
        #[cfg(debug_assertions)]
        if let Msg::Call(super::Call::Resolve { targets, .. }) = &msg {
            crate::panics::debug::maybe_panic(crate::panics::debug::Place::Actor, targets);
        }
        match msg {
            Msg::Exited { gen, code, signal } => {
                if !self.frozen_exit(gen, code, signal) {
                    self.os.forget(gen);
                    self.on_exit(gen, code, signal);
                }
            }
            Msg::Ipc { gen, incoming } => self.on_ipc(gen, incoming),
            Msg::Timer { gen, timer } => self.run_event(gen, timer.event()),
            Msg::RestartDue { pm_id, timer } => {
                self.restart_deadlines.remove(&(pm_id, timer));
                if !self.frozen_restart(pm_id, timer) {
                    self.worker_event(pm_id, WorkerEvent::RestartDue { timer }, None);
                }
            }
            Msg::Call(super::Call::Handover { step }) => self.on_handover(step),
            Msg::Call(call) => {
                if let Some(call) = self.refused_while_frozen(call) {
                    self.on_call(call);
                }
            }
            Msg::Triggered { app, trigger } => self.on_triggered(&app, trigger),
            Msg::WatchDue { app } => self.on_watch_due(&app),
            Msg::MemoryTick => self.on_memory_tick(),
            Msg::TriggerDue { id } => self.trigger_due(id),
            // While an update hands the daemon over nothing is replaced and
            // no probe connection is handed out; the next image re-arms both.
            Msg::WatchdogTick | Msg::ProbeDue { .. } | Msg::ProbeDone { .. }
                if self.frozen.is_some() => {}
            Msg::WatchdogTick => self.on_watchdog_tick(),
            Msg::ProbeDue { gen, kind } => self.on_probe_due(gen, kind),
            Msg::ProbeDone { gen, kind, result } => self.on_probe_done(gen, kind, result),
        }
    }

    /// Feed `event` to worker `pm_id`'s machine and perform its effects;
    /// `caller` is the reply of the request that caused it, if any.
    pub(crate) fn worker_event(&mut self, pm_id: u32, event: WorkerEvent, caller: Option<Waiter>) {
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            if let Some(reply) = caller {
                let _ = reply.send(Err(super::not_found(pm_id)));
            }
            return;
        };
        let Some(app) = self.table.apps.get(&w.app) else {
            tracing::error!("worker {pm_id} belongs to no app");
            return;
        };
        let before = w.life.state;
        let mut cx = Context {
            spec: &app.spec,
            next_id: &mut self.table.next_id,
            shutting_down: self.shutting_down,
            now_ms: now_ms(),
        };
        let effects = w.life.on(event, &mut cx);
        if w.life.state != before {
            tracing::debug!("worker {pm_id}: {before:?} -> {:?}", w.life.state);
        }
        let mut caller = caller;
        for effect in effects {
            self.perform(pm_id, effect, &mut caller);
        }
        if let Some(reply) = caller {
            // Every event a caller sends says when to answer; a miss is a bug.
            tracing::error!("worker {pm_id}: no answer decided for a caller; answering now");
            let _ = reply.send(Ok(()));
        }
    }

    fn perform(&mut self, pm_id: u32, effect: Effect, caller: &mut Option<Waiter>) {
        match effect {
            Effect::Caller(answer) => {
                if let Some(reply) = caller.take() {
                    self.file_reply(pm_id, answer, reply);
                }
            }
            Effect::Spawn { run, role } => self.spawn_run(pm_id, run, role),
            Effect::StopRun(gen) => self.run_event(gen, super::run::RunEvent::Stop),
            Effect::AbandonRun(gen) => self.run_event(gen, super::run::RunEvent::Abandon),
            Effect::Answer(which, result) => {
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    for waiter in w.waiters.take(which) {
                        let _ = waiter.send(result.clone());
                    }
                }
            }
            Effect::AnswerOnExit(which, gen) => {
                let waiters = self
                    .table
                    .workers
                    .get_mut(&pm_id)
                    .map(|w| w.waiters.take(which))
                    .unwrap_or_default();
                match self.table.runs.get_mut(&gen) {
                    Some(run) => run.exit_waiters.extend(waiters),
                    None => waiters.into_iter().for_each(|w| {
                        let _ = w.send(Ok(()));
                    }),
                }
            }
            Effect::ArmRestart { timer, delay_ms } => {
                let due = tokio::time::Instant::now() + std::time::Duration::from_millis(delay_ms);
                self.restart_deadlines.insert((pm_id, timer), due);
                self.after(delay_ms, Msg::RestartDue { pm_id, timer });
            }
            Effect::Route(gen) => self.primary.set_eligible(gen, true),
            Effect::Emit { event, manually } => self.emit(pm_id, event, manually),
            Effect::WritePid(gen) => {
                let pid = self.table.runs.get(&gen).map(|r| r.pid);
                if let (Some(pid), Some(w)) = (pid, self.table.workers.get(&pm_id)) {
                    self.os.write_pid_file(&w.pid_path, pid);
                }
            }
            Effect::RemovePid => {
                if let Some(w) = self.table.workers.get(&pm_id) {
                    self.os.remove_pid_file(&w.pid_path);
                }
            }
        }
    }

    /// Park or send a caller's reply as the machine said.
    fn file_reply(&mut self, pm_id: u32, answer: Answer, reply: Waiter) {
        match answer {
            Answer::Now(result) => {
                let _ = reply.send(result);
            }
            Answer::With(which) => match self.table.workers.get_mut(&pm_id) {
                Some(w) => w.waiters.push(which, reply),
                None => {
                    let _ = reply.send(Err(super::not_found(pm_id)));
                }
            },
            Answer::OnExit(gen) => match self.table.runs.get_mut(&gen) {
                Some(run) => run.exit_waiters.push(reply),
                None => {
                    let _ = reply.send(Ok(()));
                }
            },
        }
    }

    /// The spec of the app worker `pm_id` belongs to.
    pub(crate) fn spec_of(&self, pm_id: u32) -> Option<&rpm2_proto::AppSpec> {
        let w = self.table.workers.get(&pm_id)?;
        self.table.apps.get(&w.app).map(|a| &a.spec)
    }

    /// Who an event is about.
    pub(crate) fn event_process(&self, pm_id: u32) -> EventProcess {
        let w = self.table.workers.get(&pm_id);
        let name = w
            .map(|w| self.table.name_of(w).to_owned())
            .unwrap_or_default();
        let namespace = w
            .and_then(|w| self.table.apps.get(&w.app))
            .map(|a| a.spec.namespace.clone())
            .unwrap_or_default();
        EventProcess {
            pm_id,
            name,
            namespace,
        }
    }

    /// Publish a `process:event` (start, online, exit, stop, …).
    pub(crate) fn emit(&self, pm_id: u32, event: &str, manually: bool) {
        if self.bus.receiver_count() == 0 {
            return;
        }
        let _ = self.bus.send(Event::ProcessEvent {
            process: self.event_process(pm_id),
            at: now_ms(),
            event: event.to_owned(),
            manually,
        });
    }

    /// Run `msg` after `ms` milliseconds.
    pub(crate) fn after(&self, ms: u64, msg: Msg) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            let _ = tx.send(msg);
        });
    }

    /// Tell the primary which workers an app has (its sticky slots).
    pub(crate) fn sync_cluster_app(&mut self, app: &str) {
        if let Some(a) = self.table.apps.get(app) {
            let policy = crate::cluster::Policy::of(&a.spec);
            let ids = self.table.workers_of(app);
            self.primary.set_app(app, policy, ids);
        }
    }
}
