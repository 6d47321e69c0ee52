//! The actor's part of `rpm2 update` (the orchestration is in
//! `crate::handover`): freeze (nothing starts or stops any more, accepting
//! pauses), detach every run's channel and pipes from their tasks, and write
//! the table down. Exits and restart timers that come meanwhile are kept
//! for the next image, which carries on with them.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

use rpm2_logs::DetachedPump;
use rpm2_node_ipc::Detached;
use rpm2_proto::{ErrorCode, RpcError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::actor::Actor;
use super::drain::Preload;
use super::run::RunPhase;
use super::worker::WorkerState;
use super::{Call, Reply};
use crate::handover::snapshot::{
    ChannelSnap, ListenerSnap, PipeSnap, PreloadSnap, RunSnap, TableSnap, WorkerSnap,
    WorkerStateSnap,
};
use crate::Gen;

/// One step of a hand-over, each a `Call`.
pub enum HandoverStep {
    /// Refuse new work and pause accepting; fails while a worker is
    /// starting, stopping or reloading.
    Freeze { reply: Reply<()> },
    /// True once no connection is on its way to a worker.
    Quiet { reply: Reply<bool> },
    /// Give up before anything was detached: carry on as before.
    Thaw { reply: Reply<()> },
    /// Ask every run's channel and pipes for their fds.
    Detach { reply: Reply<Vec<RunDetach>> },
    /// Write the table down, with the fds the runs' tasks gave back.
    Snapshot {
        detached: Vec<RunDetached>,
        reply: Reply<Exported>,
    },
}

/// Where a run's fds will come from.
pub struct RunDetach {
    pub gen: Gen,
    pub ipc: Option<oneshot::Receiver<Detached>>,
    pub out: Option<oneshot::Receiver<DetachedPump>>,
    pub err: Option<oneshot::Receiver<DetachedPump>>,
}

/// A run's fds, given back by its tasks.
#[derive(Default)]
pub struct RunDetached {
    pub gen: Gen,
    pub ipc: Option<Detached>,
    pub out: Option<DetachedPump>,
    pub err: Option<DetachedPump>,
}

/// The table as the next image needs it, and the fds it names (kept open
/// here until the exec).
pub struct Exported {
    pub table: TableSnap,
    pub listeners: Vec<ListenerSnap>,
    pub keep: Vec<OwnedFd>,
}

/// Set while a hand-over is under way.
#[derive(Default)]
pub struct Frozen {
    /// Runs reaped meanwhile: (code, signal).
    pub exits: HashMap<Gen, (Option<i32>, Option<i32>)>,
    /// Restart timers that fired meanwhile: (pm_id, timer).
    pub restarts_due: Vec<(u32, u64)>,
    /// Detach was asked: there is no going back in this image.
    pub detached: bool,
}

fn busy(what: &str) -> RpcError {
    RpcError::new(
        ErrorCode::UpdateFailed,
        format!("cannot update now: {what}; try again once it is done"),
    )
}

impl Actor {
    pub(crate) fn on_handover(&mut self, step: HandoverStep) {
        match step {
            HandoverStep::Freeze { reply } => {
                let _ = reply.send(self.freeze());
            }
            HandoverStep::Quiet { reply } => {
                let _ = reply.send(Ok(self.primary.is_quiet()));
            }
            HandoverStep::Thaw { reply } => {
                self.thaw();
                let _ = reply.send(Ok(()));
            }
            HandoverStep::Detach { reply } => {
                let _ = reply.send(Ok(self.detach_runs()));
            }
            HandoverStep::Snapshot { detached, reply } => {
                let _ = reply.send(Ok(self.export(detached)));
            }
        }
    }

    fn freeze(&mut self) -> Result<(), RpcError> {
        if self.frozen.is_some() {
            return Err(busy("another update is under way"));
        }
        if self.shutting_down {
            return Err(super::shutting_down());
        }
        for w in self.table.workers.values() {
            let settled = match w.life.state {
                WorkerState::Stopped
                | WorkerState::Errored
                | WorkerState::WaitingRestart { .. } => true,
                WorkerState::Online { run } => self
                    .table
                    .runs
                    .get(&run)
                    .is_some_and(|r| matches!(r.phase, RunPhase::Online | RunPhase::Ready)),
                WorkerState::Launching { .. }
                | WorkerState::Stopping { .. }
                | WorkerState::Reloading { .. } => false,
            };
            if !settled {
                return Err(busy(&format!(
                    "process {} is {}",
                    w.pm_id,
                    w.life.status().as_str()
                )));
            }
        }
        // Runs of no worker's state (a reload's old run on its way out).
        let current: std::collections::HashSet<Gen> = self
            .table
            .workers
            .values()
            .filter_map(|w| match w.life.state {
                WorkerState::Online { run } => Some(run),
                _ => None,
            })
            .collect();
        if let Some(gen) = self.table.runs.keys().find(|g| !current.contains(g)) {
            return Err(busy(&format!("process run {gen} is still stopping")));
        }
        self.primary.pause_accepting();
        self.frozen = Some(Frozen::default());
        tracing::info!("update: frozen, accepting paused");
        Ok(())
    }

    fn thaw(&mut self) {
        let Some(frozen) = self.frozen.take() else {
            return;
        };
        self.primary.resume_accepting();
        for (gen, (code, signal)) in frozen.exits {
            self.on_exit(gen, code, signal);
        }
        for (pm_id, timer) in frozen.restarts_due {
            self.worker_event(
                pm_id,
                super::worker::WorkerEvent::RestartDue { timer },
                None,
            );
        }
        tracing::info!("update: given up, carrying on");
    }

    /// While frozen, an exit is kept for the next image (or for `thaw`).
    pub(crate) fn frozen_exit(&mut self, gen: Gen, code: Option<i32>, signal: Option<i32>) -> bool {
        match &mut self.frozen {
            Some(f) => {
                f.exits.insert(gen, (code, signal));
                true
            }
            None => false,
        }
    }

    /// While frozen, a due restart waits (its deadline is in the snapshot).
    pub(crate) fn frozen_restart(&mut self, pm_id: u32, timer: u64) -> bool {
        match &mut self.frozen {
            Some(f) => {
                f.restarts_due.push((pm_id, timer));
                true
            }
            None => false,
        }
    }

    /// While frozen, calls that would start, stop or change something are
    /// refused; the others pass.
    pub(crate) fn refused_while_frozen(&mut self, call: Call) -> Option<Call> {
        if self.frozen.is_none() {
            return Some(call);
        }
        let e = || busy("the daemon is being updated");
        match call {
            Call::Register { reply, .. } => drop(reply.send(Err(e()))),
            Call::Update { reply, .. }
            | Call::Start { reply, .. }
            | Call::Restart { reply, .. }
            | Call::Reload { reply, .. }
            | Call::Stop { reply, .. }
            | Call::Remove { reply, .. }
            | Call::Signal { reply, .. }
            | Call::Reset { reply, .. }
            | Call::Watch { reply, .. }
            | Call::SendData { reply, .. } => drop(reply.send(Err(e()))),
            Call::Scale { reply, .. } => drop(reply.send(Err(e()))),
            Call::Trigger { reply, .. } => drop(reply.send(Err(e()))),
            other => return Some(other),
        }
        None
    }

    fn detach_runs(&mut self) -> Vec<RunDetach> {
        if let Some(f) = &mut self.frozen {
            f.detached = true;
        }
        let mut out = Vec::new();
        for (&gen, run) in &self.table.runs {
            let ipc = run.link.as_ref().and_then(|l| l.detach());
            let (out_pipe, err_pipe) = self.os.detach(gen);
            out.push(RunDetach {
                gen,
                ipc,
                out: out_pipe,
                err: err_pipe,
            });
        }
        out
    }

    fn export(&mut self, detached: Vec<RunDetached>) -> Exported {
        let mut keep = Vec::new();
        let mut by_gen: HashMap<Gen, RunDetached> =
            detached.into_iter().map(|d| (d.gen, d)).collect();
        let exits = self
            .frozen
            .as_ref()
            .map(|f| f.exits.clone())
            .unwrap_or_default();
        let now = Instant::now();
        let mut runs = Vec::new();
        for (&gen, run) in &self.table.runs {
            let d = by_gen.remove(&gen).unwrap_or_default();
            let mut pipe = |p: Option<DetachedPump>| {
                p.map(|p| {
                    let snap = PipeSnap {
                        fd: p.fd.as_raw_fd(),
                        carry: p.carry,
                    };
                    keep.push(p.fd);
                    snap
                })
            };
            let stdout = pipe(d.out);
            let stderr = pipe(d.err);
            let ipc = d.ipc.map(|c| {
                let snap = ChannelSnap {
                    fd: c.fd.as_raw_fd(),
                    leftover: c.leftover,
                };
                keep.push(c.fd);
                snap
            });
            runs.push(RunSnap {
                gen,
                pm_id: run.pm_id,
                pid: run.pid,
                uptime_ms: u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                ready: run.phase == RunPhase::Ready,
                preload: match &run.preload {
                    Preload::Absent => PreloadSnap::Absent,
                    Preload::Expected => PreloadSnap::Expected,
                    Preload::Loaded => PreloadSnap::Loaded,
                    Preload::Failed(e) => PreloadSnap::Failed(e.clone()),
                },
                inflight: run.inflight,
                ipc,
                stdout,
                stderr,
                cluster: if run.cluster {
                    self.primary.export_run(gen)
                } else {
                    None
                },
                exited: exits.get(&gen).copied(),
            });
        }
        let workers = self
            .table
            .workers
            .values()
            .map(|w| WorkerSnap {
                pm_id: w.pm_id,
                app: w.app.clone(),
                instance: w.instance,
                created_at: w.created_at,
                unique_id: w.unique_id.clone(),
                env: w.env.clone(),
                out_log: w.out_log.clone(),
                err_log: w.err_log.clone(),
                combined_log: w.combined_log.clone(),
                pid_path: w.pid_path.clone(),
                log_error: w.log_error.clone(),
                axm: w.axm.clone(),
                restart_time: w.life.counters.restart_time,
                unstable_restarts: w.life.counters.unstable_restarts,
                prev_restart_delay: w.life.counters.prev_restart_delay,
                pm_uptime: w.life.pm_uptime,
                exit_code: w.life.exit_code,
                restart_reason: w.life.restart_reason.clone(),
                state: match w.life.state {
                    WorkerState::Online { run } => WorkerStateSnap::Online { run },
                    WorkerState::Errored => WorkerStateSnap::Errored,
                    WorkerState::WaitingRestart { timer } => WorkerStateSnap::WaitingRestart {
                        due_in_ms: self
                            .restart_deadlines
                            .get(&(w.pm_id, timer))
                            .map_or(0, |at| {
                                u64::try_from(at.saturating_duration_since(now).as_millis())
                                    .unwrap_or(0)
                            }),
                    },
                    _ => WorkerStateSnap::Stopped,
                },
            })
            .collect();
        let table = TableSnap {
            instance: self.instance.clone(),
            next_id: self.table.next_id,
            next_cluster_id: self.table.next_cluster_id,
            apps: self
                .table
                .apps
                .iter()
                .map(|(key, a)| crate::handover::snapshot::AppSnap {
                    key: key.clone(),
                    spec: a.spec.clone(),
                })
                .collect(),
            workers,
            runs,
        };
        Exported {
            table,
            listeners: self.primary.export_listeners(),
            keep,
        }
    }
}
