//! The actor loop: receives every `Msg` and dispatches it. The handlers live
//! in `lifecycle.rs` (processes), `calls.rs` (requests) and
//! `cluster/route.rs` (the primary's part).

use rpm2_logs::LogRegistry;
use rpm2_proto::{Event, EventProcess};
use tokio::sync::{broadcast, mpsc};

use super::state::Table;
use super::{now_ms, Msg, SupervisorHandle};
use crate::metrics::CpuSampler;
use crate::paths::Home;

/// Events buffered for subscribers that fall behind.
const BUS_CAPACITY: usize = 512;

pub(crate) struct Actor {
    pub(crate) table: Table,
    pub(crate) home: Home,
    pub(crate) tx: mpsc::UnboundedSender<Msg>,
    pub(crate) bus: broadcast::Sender<Event>,
    pub(crate) logs: LogRegistry,
    pub(crate) cpu: CpuSampler,
    pub(crate) shutting_down: bool,
}

/// Start the actor on the current runtime and return its handle.
#[must_use]
pub fn spawn_supervisor(home: Home) -> SupervisorHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Lagging subscribers lose events; they never slow the daemon down.
    // The ring is allocated up front (~200 bytes a slot), so it stays small:
    // log events are whole read chunks, and followers drain it continuously.
    let (bus, _) = broadcast::channel(BUS_CAPACITY);
    let logs = LogRegistry::new();
    let mut actor = Actor {
        table: Table::default(),
        home,
        tx: tx.clone(),
        bus: bus.clone(),
        logs: logs.clone(),
        cpu: CpuSampler::default(),
        shutting_down: false,
    };
    super::triggers::spawn_memory_ticks(tx.clone());
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            actor.handle(msg);
        }
    });
    SupervisorHandle { tx, bus, logs }
}

impl Actor {
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Exited { gen, code, signal } => self.on_exit(gen, code, signal),
            Msg::Ipc { gen, incoming } => self.on_ipc(gen, incoming),
            Msg::Timer { gen, timer } => self.on_timer(gen, timer),
            Msg::RestartDue { pm_id, token } => self.on_restart_due(pm_id, token),
            Msg::Conn(conn) => self.route(conn),
            Msg::Call(call) => self.on_call(call),
            Msg::Triggered { app, trigger } => self.on_triggered(&app, trigger),
            Msg::WatchDue { app } => self.on_watch_due(&app),
            Msg::MemoryTick => self.on_memory_tick(),
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
        let name = w.map(|w| w.app.clone()).unwrap_or_default();
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
}
