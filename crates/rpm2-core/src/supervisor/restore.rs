//! The new image's side of `rpm2 update`: rebuild the table, the cluster
//! primary and every run's tasks from the snapshot, then carry on.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::time::{Duration, Instant};

use super::actor::Actor;
use super::drain::Preload;
use super::os::AdoptRequest;
use super::run::{RunPhase, RunTimer};
use super::state::{App, Run, Waiters, Worker};
use super::worker::{Life, WorkerState};
use super::Msg;
use crate::handover::snapshot::{
    ListenerSnap, PreloadSnap, RunSnap, TableSnap, WorkerSnap, WorkerStateSnap,
};
use crate::worker::policy::RestartCounters;

/// An fd number the previous image kept open for us.
fn take_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: the snapshot names fds the previous image left open across
    // the exec for this image to own; each is taken once.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Actor {
    pub(crate) fn restore(&mut self, t: TableSnap, listeners: Vec<ListenerSnap>) {
        self.instance = t.instance;
        self.table.next_id = t.next_id;
        self.table.next_cluster_id = t.next_cluster_id;
        for a in t.apps {
            let triggers = super::triggers::arm(&a.key, &a.spec, &self.tx);
            self.table.apps.insert(
                a.key,
                App {
                    spec: a.spec,
                    triggers,
                },
            );
        }
        for l in listeners {
            let Some(fd) = take_fd(l.fd) else {
                continue;
            };
            let what = format!("{} of [{}]", l.key, l.app);
            if let Err(e) = self.primary.import_listener(l, fd) {
                tracing::error!("update: listener {what} lost: {e}");
            }
        }
        for w in t.workers {
            self.restore_worker(w);
        }
        let keys: Vec<String> = self.table.apps.keys().cloned().collect();
        for key in &keys {
            self.sync_cluster_app(key);
        }
        let known: std::collections::HashSet<u32> = t.runs.iter().map(|r| r.pid).collect();
        for r in t.runs {
            self.restore_run(r);
        }
        self.os.adopt_strays(&known);
    }

    fn restore_worker(&mut self, w: WorkerSnap) {
        let state = match w.state {
            WorkerStateSnap::Stopped => WorkerState::Stopped,
            WorkerStateSnap::Errored => WorkerState::Errored,
            WorkerStateSnap::Online { run } => WorkerState::Online { run },
            WorkerStateSnap::WaitingRestart { due_in_ms } => {
                let timer = self.table.next_id;
                self.table.next_id += 1;
                let pm_id = w.pm_id;
                self.restart_deadlines.insert(
                    (pm_id, timer),
                    Instant::now() + Duration::from_millis(due_in_ms),
                );
                self.after(due_in_ms, Msg::RestartDue { pm_id, timer });
                WorkerState::WaitingRestart { timer }
            }
        };
        self.table.workers.insert(
            w.pm_id,
            Worker {
                pm_id: w.pm_id,
                app: w.app,
                instance: w.instance,
                life: Life {
                    state,
                    counters: RestartCounters {
                        restart_time: w.restart_time,
                        unstable_restarts: w.unstable_restarts,
                        prev_restart_delay: w.prev_restart_delay,
                    },
                    pm_uptime: w.pm_uptime,
                    exit_code: w.exit_code,
                    restart_reason: w.restart_reason,
                },
                created_at: w.created_at,
                unique_id: w.unique_id,
                waiters: Waiters::default(),
                env: w.env,
                out_log: w.out_log,
                err_log: w.err_log,
                combined_log: w.combined_log,
                pid_path: w.pid_path,
                log_error: w.log_error,
                axm: w.axm,
            },
        );
    }

    fn restore_run(&mut self, r: RunSnap) {
        let Some((spec, app_key, logs)) = self.table.workers.get(&r.pm_id).and_then(|w| {
            let spec = self.table.apps.get(&w.app)?.spec.clone();
            Some((
                spec,
                w.app.clone(),
                (w.out_log.clone(), w.err_log.clone(), w.combined_log.clone()),
            ))
        }) else {
            tracing::error!("update: run {} of unknown worker {}", r.gen, r.pm_id);
            return;
        };
        let process = self.event_process(r.pm_id);
        let started = self.os.adopt(AdoptRequest {
            run: r.gen,
            pid: r.pid,
            spec: &spec,
            out_log: logs.0.as_deref(),
            err_log: logs.1.as_deref(),
            combined_log: logs.2.as_deref(),
            process,
            ipc: r.ipc.and_then(|c| Some((take_fd(c.fd)?, c.leftover))),
            stdout: r.stdout.and_then(|p| Some((take_fd(p.fd)?, p.carry))),
            stderr: r.stderr.and_then(|p| Some((take_fd(p.fd)?, p.carry))),
            exited: r.exited.is_some(),
        });
        let cluster = match (r.cluster, &started.link) {
            (Some(snap), Some(link)) => {
                self.primary
                    .import_run(r.gen, &app_key, r.pm_id, link.clone(), snap);
                true
            }
            _ => false,
        };
        let started_at = Instant::now()
            .checked_sub(Duration::from_millis(r.uptime_ms))
            .unwrap_or_else(Instant::now);
        self.table.runs.insert(
            r.gen,
            Run {
                pm_id: r.pm_id,
                pid: r.pid,
                started: started_at,
                phase: if r.ready {
                    RunPhase::Ready
                } else {
                    RunPhase::Online
                },
                link: started.link,
                cluster,
                exit_waiters: Vec::new(),
                preload: match r.preload {
                    PreloadSnap::Absent => Preload::Absent,
                    PreloadSnap::Expected => Preload::Expected,
                    PreloadSnap::Loaded => Preload::Loaded,
                    PreloadSnap::Failed(e) => Preload::Failed(e),
                },
                inflight: r.inflight,
                health: super::health::RunHealth::default(),
            },
        );
        self.axm_run_adopted(r.pm_id, r.gen);
        self.rearm_probes(r.gen, &spec, r.ready);
        if !r.ready {
            self.after(
                spec.listen_timeout_ms,
                Msg::Timer {
                    gen: r.gen,
                    timer: RunTimer::ListenTimeout,
                },
            );
        }
        if let Some((code, signal)) = r.exited {
            let _ = self.tx.send(Msg::Exited {
                gen: r.gen,
                code,
                signal,
            });
        }
    }
}
