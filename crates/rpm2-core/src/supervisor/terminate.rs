//! Ending a run: the one terminate routine (drain, cluster `disconnect`,
//! SIGINT or `'shutdown'`, SIGKILL after `kill_timeout`) and the per-run
//! timers that drive it.

use nix::sys::signal::Signal;
use rpm2_proto::ExecMode;

use super::actor::Actor;
use super::state::Gen;
use super::{Msg, RunTimer};
use crate::worker::spawn::ChildPid;

/// Between the last connection handed to a run being drained and the
/// cluster `disconnect` (see `terminate`).
const DRAIN_GRACE_MS: u64 = 100;

impl Actor {
    /// The one way a run is ended: cluster workers are first told to
    /// `disconnect` (their servers close, in-flight requests finish), then
    /// SIGINT (or the `shutdown` message), then SIGKILL after `kill_timeout`.
    pub(crate) fn terminate(&mut self, gen: Gen) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        if run.stop_requested {
            return;
        }
        run.stop_requested = true;
        let pm_id = run.pm_id;
        let has_channel = run.channel.is_some();
        for conn in std::mem::take(&mut run.queued_conns) {
            self.route(conn);
        }
        let Some(spec) = self.spec_of(pm_id) else {
            return;
        };
        let cluster = spec.exec_mode == ExecMode::Cluster && spec.node && has_channel;
        if cluster {
            // A connection handed over just now has not had its first request
            // read yet; the worker's server.close() would drop it as idle.
            // No new connections reach this run from now on: give the last
            // ones a moment to be read before telling the worker to close.
            self.after(
                DRAIN_GRACE_MS,
                Msg::Timer {
                    gen,
                    timer: RunTimer::Disconnect,
                },
            );
        } else {
            self.interrupt(gen);
        }
    }

    /// Cluster `disconnect`: the worker closes its servers (in-flight
    /// requests finish), then its channel; SIGINT follows either way.
    pub(crate) fn disconnect(&mut self, gen: Gen) {
        let Some(run) = self.table.runs.get(&gen) else {
            return;
        };
        let Some(kill_timeout) = self.spec_of(run.pm_id).map(|s| s.kill_timeout_ms) else {
            return;
        };
        let sent = run
            .channel
            .as_ref()
            .is_some_and(|ch| ch.send(rpm2_node_ipc::cluster::disconnect(0)).is_ok());
        if sent {
            self.after(
                kill_timeout,
                Msg::Timer {
                    gen,
                    timer: RunTimer::DrainTimeout,
                },
            );
        } else {
            self.interrupt(gen);
        }
    }

    /// SIGINT (or `'shutdown'`), with SIGKILL scheduled.
    pub(crate) fn interrupt(&mut self, gen: Gen) {
        // Reached from the channel closing, the drain timer and a failed
        // disconnect: signal once, with one SIGKILL timer.
        match self.table.runs.get_mut(&gen) {
            Some(run) if !run.interrupted => run.interrupted = true,
            _ => return,
        }
        let Some(run) = self.table.runs.get(&gen) else {
            return;
        };
        let Some(spec) = self.spec_of(run.pm_id) else {
            return;
        };
        let by_message = spec.shutdown_with_message
            && run.channel.as_ref().is_some_and(|ch| {
                ch.send(serde_json::Value::String("shutdown".into()))
                    .is_ok()
            });
        if !by_message {
            let _ = ChildPid::new(run.pid, spec.treekill).signal(Signal::SIGINT);
        }
        self.after(
            spec.kill_timeout_ms,
            Msg::Timer {
                gen,
                timer: RunTimer::KillTimeout,
            },
        );
    }

    pub(crate) fn on_timer(&mut self, gen: Gen, timer: RunTimer) {
        let Some(run) = self.table.runs.get(&gen) else {
            return;
        };
        match timer {
            RunTimer::ListenTimeout => {
                if !run.online || !run.ready {
                    let pm_id = run.pm_id;
                    let name = self
                        .table
                        .workers
                        .get(&pm_id)
                        .map(|w| w.app.clone())
                        .unwrap_or_default();
                    tracing::warn!(
                        "App [{name}:{pm_id}] listen_timeout reached: counted as ready without a ready signal"
                    );
                    self.run_online(gen);
                    self.run_ready(gen);
                }
            }
            RunTimer::Disconnect => self.disconnect(gen),
            RunTimer::DrainTimeout => self.interrupt(gen),
            RunTimer::KillTimeout => {
                let treekill = self.spec_of(run.pm_id).is_none_or(|s| s.treekill);
                tracing::warn!(
                    "Process with pid {} still alive after kill_timeout, sending SIGKILL",
                    run.pid
                );
                let _ = ChildPid::new(run.pid, treekill).signal(Signal::SIGKILL);
            }
        }
    }
}
