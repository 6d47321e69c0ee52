//! The worker transitions of health (`health.rs`): a sick serving run is
//! replaced, and a run whose readiness probe never passed is given up.

use rpm2_proto::{ErrorCode, ExecMode, RpcError};

use super::worker::{AfterStop, Context, Effect, Life, RunRole, Waiting, WorkerState};
use crate::Gen;

impl Life {
    /// A new process for a sick serving run. Cluster: a hung run is killed
    /// at once and its successor is the worker's run from now on (spawned
    /// first, while the others serve); one whose loop still runs is
    /// reloaded (it keeps serving until the successor is ready). Fork:
    /// the port is the run's own, so it goes first (killed when hung,
    /// drained otherwise), then the worker starts again. With
    /// `autorestart: false` it is only ended.
    pub(super) fn replace(&mut self, run: Gen, hung: bool, cx: &mut Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        let cluster = cx.spec.exec_mode == ExecMode::Cluster && cx.spec.node;
        let emit = Effect::Emit {
            event: "restart",
            manually: false,
        };
        if !cx.spec.autorestart {
            // Restarts are not wanted: it only goes.
            self.state = S::Stopping {
                run,
                then: AfterStop::Stay,
            };
            let end = if hung {
                Effect::AbandonRun(run)
            } else {
                Effect::StopRun(run)
            };
            return vec![end];
        }
        match (cluster, hung) {
            (true, true) => {
                let successor = cx.fresh_id();
                self.state = S::Launching { run: successor };
                self.counters.restart_time += 1;
                self.pm_uptime = cx.now_ms;
                vec![
                    emit,
                    Effect::Spawn {
                        run: successor,
                        role: RunRole::Main,
                    },
                    Effect::WritePid(successor),
                    Effect::AbandonRun(run),
                ]
            }
            (true, false) => {
                let successor = cx.fresh_id();
                self.state = S::Reloading { run, successor };
                vec![
                    emit,
                    Effect::Spawn {
                        run: successor,
                        role: RunRole::Successor,
                    },
                ]
            }
            (false, hung) => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Start,
                };
                let end = if hung {
                    Effect::AbandonRun(run)
                } else {
                    Effect::StopRun(run)
                };
                vec![emit, end]
            }
        }
    }

    /// A run's readiness probe never passed in time: a reload's successor
    /// is given up (the old run keeps serving); callers waiting for a
    /// started worker to be ready learn why.
    pub(super) fn run_not_ready(
        &mut self,
        gen: Gen,
        reason: &str,
        cx: &Context<'_>,
    ) -> Vec<Effect> {
        use WorkerState as S;
        match self.state {
            S::Reloading { run, successor } if successor == gen => {
                self.state = S::Online { run };
                let why = format!(
                    "reload of [{}] failed: {reason}; the old process keeps serving",
                    cx.spec.name
                );
                tracing::error!("{why}");
                vec![
                    Effect::StopRun(successor),
                    Effect::Answer(
                        Waiting::Reload,
                        Err(RpcError::new(ErrorCode::ReloadFailed, why)),
                    ),
                ]
            }
            S::Launching { run } | S::Online { run } if run == gen => vec![Effect::Answer(
                Waiting::Ready,
                Err(RpcError::new(ErrorCode::ReloadFailed, reason.to_owned())),
            )],
            _ => Vec::new(),
        }
    }
}
