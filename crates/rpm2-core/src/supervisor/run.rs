//! A run's life, as a state machine: one OS process of a worker, from spawn
//! to exit. Transitions are pure: they take an event and return what must
//! happen; the actor performs it (`actor.rs`).
//!
//! ```text
//! Starting ──online──► Online ──listening/ready──► Ready
//!    └──────────── listening/ready/listen_timeout ───┘
//! any of those ──stop──► Draining (cluster) ──grace──► Draining{disconnected}
//!                   │                                   │ channel closed / drain timeout
//!                   └─(fork, or no channel)─► Interrupted{kill_at} ◄┘
//! any live phase ──exitedAfterDisconnect──► Leaving ──stop──► Interrupted
//! Interrupted ──kill_timeout──► SIGKILL;   every phase ──reaped──► (removed)
//! ```

use tokio::time::{Duration, Instant};

/// How far a run has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Spawned; not counted as started yet.
    Starting,
    /// Counts as started (pm2's `online`): cluster `online`, or at spawn in
    /// fork mode. Not yet ready to take over in a reload.
    Online,
    /// Online and ready to serve: `listening` (or `'ready'` with
    /// `wait_ready`), or `listen_timeout` passed.
    Ready,
    /// The worker said it leaves on its own (`exitedAfterDisconnect`): its
    /// exit is not a crash, and it gets no new connections.
    Leaving,
    /// Asked to end. A cluster worker gets a grace period for connections
    /// just handed over, then the cluster `disconnect`.
    Draining { disconnect_sent: bool },
    /// SIGINT (or `'shutdown'`) was sent; SIGKILL is due at `kill_at`.
    Interrupted { kill_at: Instant },
}

/// What happens to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEvent {
    /// Cluster `online` (ignored with `wait_ready`: the caller decides).
    Online,
    /// `listening`, or `'ready'` with `wait_ready`.
    Ready,
    /// `listen_timeout` passed since the spawn.
    ListenTimeout,
    /// Someone wants it gone (stop, restart, reload, delete, scale down).
    Stop,
    /// The drain grace after `Stop` has passed (cluster).
    GraceOver,
    /// Its IPC channel ended (after `disconnect`: servers closed).
    ChannelClosed,
    /// `kill_timeout` passed since the `disconnect`.
    DrainTimeout,
    /// `kill_timeout` passed since SIGINT.
    KillTimeout,
    /// The worker announced `exitedAfterDisconnect`.
    Leaving,
}

/// A per-run deadline; when it fires it becomes the `RunEvent` of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTimer {
    ListenTimeout,
    GraceOver,
    DrainTimeout,
    KillTimeout,
}

impl RunTimer {
    #[must_use]
    pub fn event(self) -> RunEvent {
        match self {
            Self::ListenTimeout => RunEvent::ListenTimeout,
            Self::GraceOver => RunEvent::GraceOver,
            Self::DrainTimeout => RunEvent::DrainTimeout,
            Self::KillTimeout => RunEvent::KillTimeout,
        }
    }
}

/// What a transition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEffect {
    /// It now counts as started.
    BecameOnline,
    /// It is now ready to serve.
    BecameReady,
    /// No new connections from now on.
    StopRouting,
    /// Fire `RunTimer` after this long.
    Arm(RunTimer, Duration),
    /// Send the cluster `disconnect`; if that fails, the channel is closed.
    SendDisconnect,
    /// SIGINT to the process (group), or the `'shutdown'` message.
    Interrupt,
    /// SIGKILL to the process (group).
    Kill,
}

/// The app settings a run's transitions depend on.
#[derive(Debug, Clone, Copy)]
pub struct RunRules {
    /// A cluster worker with a channel: drained with `disconnect` first.
    pub drains_by_disconnect: bool,
    pub kill_timeout: Duration,
}

/// Between the last connection handed to a draining run and the cluster
/// `disconnect`: a connection handed over just now has not had its first
/// request read, and the worker's `server.close()` would drop it as idle.
pub const DRAIN_GRACE: Duration = Duration::from_millis(100);

impl RunPhase {
    /// True once it counts as started (and until it is asked to end).
    #[must_use]
    pub fn is_online(self) -> bool {
        matches!(self, Self::Online | Self::Ready)
    }

    /// Its exit was asked for (or announced): not a crash.
    #[must_use]
    pub fn exit_expected(self) -> bool {
        matches!(
            self,
            Self::Leaving | Self::Draining { .. } | Self::Interrupted { .. }
        )
    }

    /// Apply `event` at `now`; returns what must happen, in order.
    pub fn on(&mut self, event: RunEvent, rules: RunRules, now: Instant) -> Vec<RunEffect> {
        use RunEffect as E;
        use RunEvent as Ev;
        let interrupt = |phase: &mut Self| {
            *phase = Self::Interrupted {
                kill_at: now + rules.kill_timeout,
            };
            vec![
                E::Interrupt,
                E::Arm(RunTimer::KillTimeout, rules.kill_timeout),
            ]
        };
        match (*self, event) {
            (Self::Starting, Ev::Online) => {
                *self = Self::Online;
                vec![E::BecameOnline]
            }
            (Self::Starting, Ev::Ready | Ev::ListenTimeout) => {
                *self = Self::Ready;
                vec![E::BecameOnline, E::BecameReady]
            }
            (Self::Online, Ev::Ready | Ev::ListenTimeout) => {
                *self = Self::Ready;
                vec![E::BecameReady]
            }
            // A second `ready`, `online` after `ready`, or the timeout of a
            // run that made it in time: nothing new.
            (Self::Online, Ev::Online)
            | (Self::Ready, Ev::Online | Ev::Ready | Ev::ListenTimeout) => Vec::new(),
            (Self::Starting | Self::Online | Self::Ready, Ev::Stop) => {
                let mut out = vec![E::StopRouting];
                if rules.drains_by_disconnect {
                    *self = Self::Draining {
                        disconnect_sent: false,
                    };
                    out.push(E::Arm(RunTimer::GraceOver, DRAIN_GRACE));
                } else {
                    out.extend(interrupt(self));
                }
                out
            }
            (Self::Starting | Self::Online | Self::Ready, Ev::Leaving) => {
                *self = Self::Leaving;
                vec![E::StopRouting]
            }
            // It already closed its servers: go straight to SIGINT.
            (Self::Leaving, Ev::Stop) => interrupt(self),
            (
                Self::Draining {
                    disconnect_sent: false,
                },
                Ev::GraceOver,
            ) => {
                *self = Self::Draining {
                    disconnect_sent: true,
                };
                vec![
                    E::SendDisconnect,
                    E::Arm(RunTimer::DrainTimeout, rules.kill_timeout),
                ]
            }
            // Servers closed (in-flight requests done), or it took too long.
            (Self::Draining { .. }, Ev::ChannelClosed)
            | (
                Self::Draining {
                    disconnect_sent: true,
                },
                Ev::DrainTimeout,
            ) => interrupt(self),
            (Self::Interrupted { .. }, Ev::KillTimeout) => vec![E::Kill],
            // A live run whose channel ended takes no more connections.
            (Self::Starting | Self::Online | Self::Ready | Self::Leaving, Ev::ChannelClosed) => {
                vec![E::StopRouting]
            }
            // Already on its way out: a second stop, late readiness, or the
            // channel closing after SIGINT change nothing.
            (
                Self::Draining { .. } | Self::Interrupted { .. },
                Ev::Stop
                | Ev::Online
                | Ev::Ready
                | Ev::ListenTimeout
                | Ev::Leaving
                | Ev::ChannelClosed,
            )
            | (Self::Leaving, Ev::Online | Ev::Ready | Ev::ListenTimeout | Ev::Leaving) => {
                Vec::new()
            }
            // Timers armed for a phase the run has left.
            (phase, Ev::GraceOver | Ev::DrainTimeout | Ev::KillTimeout) => {
                tracing::trace!("run timer {event:?} is stale in phase {phase:?}");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: RunRules = RunRules {
        drains_by_disconnect: true,
        kill_timeout: Duration::from_millis(1600),
    };
    const FORK: RunRules = RunRules {
        drains_by_disconnect: false,
        kill_timeout: Duration::from_millis(1600),
    };

    fn run(phase: &mut RunPhase, events: &[RunEvent], rules: RunRules) -> Vec<RunEffect> {
        let now = Instant::now();
        events
            .iter()
            .flat_map(|e| phase.on(*e, rules, now))
            .collect()
    }

    #[test]
    fn online_then_ready_once() {
        let mut p = RunPhase::Starting;
        let fx = run(
            &mut p,
            &[
                RunEvent::Online,
                RunEvent::Ready,
                RunEvent::Ready,
                RunEvent::ListenTimeout,
            ],
            CLUSTER,
        );
        assert_eq!(fx, vec![RunEffect::BecameOnline, RunEffect::BecameReady]);
        assert_eq!(p, RunPhase::Ready);
    }

    #[test]
    fn listen_timeout_makes_a_silent_run_ready() {
        let mut p = RunPhase::Starting;
        let fx = run(&mut p, &[RunEvent::ListenTimeout], CLUSTER);
        assert_eq!(fx, vec![RunEffect::BecameOnline, RunEffect::BecameReady]);
    }

    #[test]
    fn cluster_stop_drains_then_disconnects_then_interrupts_then_kills() {
        let mut p = RunPhase::Ready;
        let fx = run(
            &mut p,
            &[
                RunEvent::Stop,
                RunEvent::GraceOver,
                RunEvent::DrainTimeout,
                RunEvent::KillTimeout,
            ],
            CLUSTER,
        );
        assert_eq!(
            fx,
            vec![
                RunEffect::StopRouting,
                RunEffect::Arm(RunTimer::GraceOver, DRAIN_GRACE),
                RunEffect::SendDisconnect,
                RunEffect::Arm(RunTimer::DrainTimeout, CLUSTER.kill_timeout),
                RunEffect::Interrupt,
                RunEffect::Arm(RunTimer::KillTimeout, CLUSTER.kill_timeout),
                RunEffect::Kill,
            ]
        );
    }

    #[test]
    fn a_closed_channel_after_disconnect_interrupts_at_once_and_the_drain_timer_goes_stale() {
        let mut p = RunPhase::Ready;
        let fx = run(
            &mut p,
            &[
                RunEvent::Stop,
                RunEvent::GraceOver,
                RunEvent::ChannelClosed,
                RunEvent::DrainTimeout,
            ],
            CLUSTER,
        );
        assert_eq!(fx.iter().filter(|e| **e == RunEffect::Interrupt).count(), 1);
        assert!(matches!(p, RunPhase::Interrupted { .. }));
    }

    #[test]
    fn fork_stop_interrupts_at_once_and_a_second_stop_does_nothing() {
        let mut p = RunPhase::Online;
        let fx = run(&mut p, &[RunEvent::Stop, RunEvent::Stop], FORK);
        assert_eq!(
            fx,
            vec![
                RunEffect::StopRouting,
                RunEffect::Interrupt,
                RunEffect::Arm(RunTimer::KillTimeout, FORK.kill_timeout),
            ]
        );
    }

    #[test]
    fn a_leaving_worker_is_still_interrupted_when_stopped() {
        let mut p = RunPhase::Ready;
        let fx = run(&mut p, &[RunEvent::Leaving, RunEvent::Stop], CLUSTER);
        assert_eq!(
            fx,
            vec![
                RunEffect::StopRouting,
                RunEffect::Interrupt,
                RunEffect::Arm(RunTimer::KillTimeout, CLUSTER.kill_timeout),
            ]
        );
        assert!(p.exit_expected());
    }

    #[test]
    fn stop_while_starting_skips_readiness() {
        let mut p = RunPhase::Starting;
        let fx = run(&mut p, &[RunEvent::Stop, RunEvent::Ready], FORK);
        assert!(!fx.contains(&RunEffect::BecameReady));
    }
}
