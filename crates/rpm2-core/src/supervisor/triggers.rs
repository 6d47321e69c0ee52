//! What restarts an app besides a crash or a user: file changes (`watch`),
//! a schedule (`cron_restart`) and memory (`max_memory_restart`). Each one
//! only sends a message; the actor decides, like for any other restart.

use std::str::FromStr;
use std::time::Duration;

use notify::Watcher;
use rpm2_proto::{AppSpec, WorkerStatus};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::actor::Actor;
use super::worker::WorkerState;
use super::Msg;
use crate::metrics::rss_bytes;
use crate::watch_ignore::WatchIgnore;

/// How often worker memory is compared with `max_memory_restart` (pm2
/// checks every 30 s; reading /proc is cheap enough to do it more often).
pub const MEMORY_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The triggers armed for one app; dropping them disarms them.
#[derive(Default)]
pub struct Triggers {
    watcher: Option<notify::RecommendedWatcher>,
    cron: Option<JoinHandle<()>>,
    /// A watch restart is already scheduled (changes are coalesced).
    pub watch_pending: bool,
}

impl Drop for Triggers {
    fn drop(&mut self) {
        if let Some(task) = &self.cron {
            task.abort();
        }
    }
}

/// Why a trigger fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Files changed (debounced by `watch_delay`).
    Watch,
    /// `cron_restart` is due.
    Cron,
}

/// Arm the triggers `spec` asks for.
/// `key` is the app's key in the table (its name, unless it is a second
/// app of that name).
pub fn arm(key: &str, spec: &AppSpec, tx: &UnboundedSender<Msg>) -> Triggers {
    let mut t = Triggers::default();
    if spec.watch.enabled {
        match watch(key, spec, tx.clone()) {
            Ok(w) => t.watcher = Some(w),
            Err(e) => tracing::warn!("App [{}] cannot watch files: {e}", spec.name),
        }
    }
    if let Some(pattern) = spec.cron_restart.as_deref() {
        match croner::Cron::from_str(pattern) {
            Ok(cron) => t.cron = Some(schedule(cron, key.to_owned(), tx.clone())),
            Err(e) => tracing::warn!("App [{}] invalid cron_restart {pattern:?}: {e}", spec.name),
        }
    }
    t
}

fn watch(
    key: &str,
    spec: &AppSpec,
    tx: UnboundedSender<Msg>,
) -> notify::Result<notify::RecommendedWatcher> {
    let app = key.to_owned();
    let paths = if spec.watch.paths.is_empty() {
        vec![spec.cwd.clone()]
    } else {
        spec.watch.paths.clone()
    };
    // Compiled once here, not per event.
    let (ignore, invalid) = WatchIgnore::new(&spec.cwd, &paths, &spec.watch.ignore);
    for e in invalid {
        tracing::warn!("App [{app}] {e} (left out)");
    }
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| !ignore.is_ignored(p)) {
            let _ = tx.send(Msg::Triggered {
                app: app.clone(),
                trigger: Trigger::Watch,
            });
        }
    })?;
    for p in &paths {
        watcher.watch(p, notify::RecursiveMode::Recursive)?;
    }
    Ok(watcher)
}

fn schedule(cron: croner::Cron, app: String, tx: UnboundedSender<Msg>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = chrono::Local::now();
            let Ok(next) = cron.find_next_occurrence(&now, false) else {
                return;
            };
            let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
            if tx
                .send(Msg::Triggered {
                    app: app.clone(),
                    trigger: Trigger::Cron,
                })
                .is_err()
            {
                return;
            }
        }
    })
}

/// Check memory every `MEMORY_CHECK_INTERVAL` for as long as the actor lives.
pub fn spawn_memory_ticks(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MEMORY_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.send(Msg::MemoryTick).is_err() {
                return;
            }
        }
    });
}

impl Actor {
    pub(crate) fn on_triggered(&mut self, app: &str, trigger: Trigger) {
        let Some(a) = self.table.apps.get_mut(app) else {
            return;
        };
        match trigger {
            Trigger::Watch => {
                // Coalesce a burst of changes into one restart after watch_delay.
                if a.triggers.watch_pending {
                    return;
                }
                a.triggers.watch_pending = true;
                let delay = a.spec.watch.delay_ms.max(100);
                let app = app.to_owned();
                self.after(delay, Msg::WatchDue { app });
            }
            Trigger::Cron => {
                tracing::info!("App [{app}] cron_restart: restarting");
                // pm2 restarts even a stopped app on its schedule.
                self.restart_app(app, true);
            }
        }
    }

    pub(crate) fn on_watch_due(&mut self, app: &str) {
        let Some(a) = self.table.apps.get_mut(app) else {
            return;
        };
        a.triggers.watch_pending = false;
        tracing::info!("Change detected on path for app {app} - restarting");
        self.restart_app(app, false);
    }

    /// Watching of the apps of `ids` off, or toggled. rpm2 watches per app
    /// (pm2 per worker, each watcher restarting the whole app): one change
    /// for each app named.
    pub(crate) fn change_watch(&mut self, ids: &[u32], change: super::WatchChange) {
        let mut apps: Vec<String> = ids
            .iter()
            .filter_map(|id| self.table.workers.get(id).map(|w| w.app.clone()))
            .collect();
        apps.sort_unstable();
        apps.dedup();
        for app in apps {
            let Some(a) = self.table.apps.get_mut(&app) else {
                continue;
            };
            let on = match change {
                super::WatchChange::Off => false,
                super::WatchChange::Toggle => !a.spec.watch.enabled,
            };
            if on == a.spec.watch.enabled {
                continue;
            }
            a.spec.watch.enabled = on;
            a.triggers.watch_pending = false;
            a.triggers.watcher = None;
            if on {
                match watch(&app, &a.spec, self.tx.clone()) {
                    Ok(w) => a.triggers.watcher = Some(w),
                    Err(e) => tracing::warn!("App [{}] cannot watch files: {e}", a.spec.name),
                }
            }
            tracing::info!(
                "[Watch] {} watching {}",
                if on { "Start" } else { "Stop" },
                a.spec.name
            );
        }
    }

    /// Restart every worker of `app` (running ones; all of them with `include_stopped`).
    fn restart_app(&mut self, app: &str, include_stopped: bool) {
        for pm_id in self.table.workers_of(app) {
            let running = self.table.workers.get(&pm_id).is_some_and(|w| {
                !matches!(
                    w.life.status(),
                    WorkerStatus::Stopped | WorkerStatus::Errored | WorkerStatus::Stopping
                )
            });
            if running || include_stopped {
                // Nobody waits for the answer.
                let (reply, _) = tokio::sync::oneshot::channel();
                self.on_call(super::Call::Restart {
                    pm_id,
                    update_env: None,
                    reply,
                });
            }
        }
    }

    /// Restart (cluster: reload) workers above `max_memory_restart`.
    pub(crate) fn on_memory_tick(&mut self) {
        let mut over = Vec::new();
        for w in self.table.workers.values() {
            let Some(spec) = self.table.apps.get(&w.app).map(|a| &a.spec) else {
                continue;
            };
            let Some(limit) = spec.max_memory_restart else {
                continue;
            };
            let WorkerState::Online { run } = w.life.state else {
                continue;
            };
            let Some(pid) = self.table.runs.get(&run).map(|r| r.pid) else {
                continue;
            };
            let rss = rss_bytes(pid);
            if rss > limit {
                tracing::warn!(
                    "[WORKER] Process {} restarted because it exceeds --max-memory-restart value (current_memory={rss} max_memory_limit={limit} [octets])",
                    w.pm_id
                );
                over.push(w.pm_id);
            }
        }
        // Reload falls back to a restart for fork mode, as in pm2.
        for pm_id in over {
            let (reply, _) = tokio::sync::oneshot::channel();
            self.on_call(super::Call::Reload {
                pm_id,
                update_env: None,
                reply,
            });
        }
    }
}
