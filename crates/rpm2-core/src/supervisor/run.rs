//! A run's life, as a state machine: one OS process of a worker, from spawn
//! to exit. Transitions are pure: they take an event and return what must
//! happen; the actor performs it (`actor.rs`).
//!
//! ```text
//! Starting ──online──► Online ──listening/ready──► Ready
//!    └──────────── listening/ready/listen_timeout ───┘
//! any of those ──stop──► Draining{Preload} (preload said hello) ──drained──┐
//!                   │        │ fork: drained ─────────────────────────┐    │ cluster
//!                   ├──────► Draining{Grace} (cluster) ──grace──► Draining{Disconnected}
//!                   │                                   │ channel closed / drain timeout
//!                   └─(fork, or no channel)─► Interrupted{kill_at} ◄┘
//! any live phase ──exitedAfterDisconnect──► Leaving ──stop──► Interrupted
//! Interrupted ──kill_timeout──► SIGKILL;   every phase ──reaped──► (removed)
//! any phase ──abandon (hung)──► Interrupted, SIGKILL at once

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
    /// Asked to end, and given the time to finish what it serves.
    Draining { step: DrainStep },
    /// SIGINT (or `'shutdown'`) was sent; SIGKILL is due at `kill_at`.
    Interrupted { kill_at: Instant },
}

/// Where a draining run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStep {
    /// Its drain preload was told to drain (`NODE_RPM2_DRAIN`): responses
    /// carry `Connection: close`, servers closed; it answers `drained`
    /// once no request is in flight and no HTTP connection is open.
    Preload,
    /// No preload (cluster): a grace period for connections just handed over.
    Grace,
    /// The cluster `disconnect` was sent: its servers close.
    Disconnected,
}

/// How a run is drained when it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainBy {
    /// Its drain preload said hello; a cluster worker then gets the
    /// cluster `disconnect` (`then_disconnect`), which closes any other
    /// server it has, as before.
    Preload { then_disconnect: bool },
    /// A cluster worker with a channel but no preload: grace, `disconnect`.
    Disconnect,
    /// Fork mode without preload, or no channel: SIGINT at once.
    Signal,
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
    /// Its drain preload has no request in flight and no connection open.
    Drained,
    /// `kill_timeout` passed since the drain began (preload) or since the
    /// `disconnect`.
    DrainTimeout,
    /// `kill_timeout` passed since SIGINT.
    KillTimeout,
    /// The worker announced `exitedAfterDisconnect`.
    Leaving,
    /// Its event loop stopped answering: no drain (it could not do it),
    /// SIGKILL now.
    Abandon,
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
    /// Tell its drain preload to drain; if that fails, the channel is closed.
    SendDrain,
    /// Send the cluster `disconnect`; if that fails, the channel is closed.
    SendDisconnect,
    /// SIGINT to the process (group), or the `'shutdown'` message.
    Interrupt,
    /// SIGKILL to the process (group).
    Kill,
    /// Out of routing for good; SIGKILL now; connections handed to it and
    /// not answered go to other runs once it is gone (it cannot have
    /// touched them: its loop was blocked and now it runs no more code).
    Abandon,
}

/// The app settings a run's transitions depend on.
#[derive(Debug, Clone, Copy)]
pub struct RunRules {
    /// How it is drained, from its channel and preload.
    pub drain: DrainBy,
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
                match rules.drain {
                    DrainBy::Preload { .. } => {
                        *self = Self::Draining {
                            step: DrainStep::Preload,
                        };
                        out.extend([
                            E::SendDrain,
                            E::Arm(RunTimer::DrainTimeout, rules.kill_timeout),
                        ]);
                    }
                    DrainBy::Disconnect => {
                        *self = Self::Draining {
                            step: DrainStep::Grace,
                        };
                        out.push(E::Arm(RunTimer::GraceOver, DRAIN_GRACE));
                    }
                    DrainBy::Signal => out.extend(interrupt(self)),
                }
                out
            }
            // Nothing left to serve. A cluster worker still gets the
            // `disconnect` (other servers close, its 'disconnect' event
            // fires); the drain timer armed at `Stop` still bounds it.
            (
                Self::Draining {
                    step: DrainStep::Preload,
                },
                Ev::Drained,
            ) => {
                if let DrainBy::Preload {
                    then_disconnect: true,
                } = rules.drain
                {
                    *self = Self::Draining {
                        step: DrainStep::Disconnected,
                    };
                    vec![E::SendDisconnect]
                } else {
                    interrupt(self)
                }
            }
            (Self::Starting | Self::Online | Self::Ready, Ev::Leaving) => {
                *self = Self::Leaving;
                vec![E::StopRouting]
            }
            // It already closed its servers: go straight to SIGINT.
            (Self::Leaving, Ev::Stop) => interrupt(self),
            (
                Self::Draining {
                    step: DrainStep::Grace,
                },
                Ev::GraceOver,
            ) => {
                *self = Self::Draining {
                    step: DrainStep::Disconnected,
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
                    step: DrainStep::Preload | DrainStep::Disconnected,
                },
                Ev::DrainTimeout,
            ) => interrupt(self),
            (Self::Interrupted { .. }, Ev::KillTimeout) => vec![E::Kill],
            (_, Ev::Abandon) => {
                *self = Self::Interrupted { kill_at: now };
                vec![E::Abandon]
            }
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
            // `drained` is only asked for in `Draining{Preload}`; a late or
            // unasked one changes nothing.
            (phase, Ev::Drained) => {
                tracing::trace!("drained is stale in phase {phase:?}");
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
        drain: DrainBy::Disconnect,
        kill_timeout: Duration::from_millis(1600),
    };
    const FORK: RunRules = RunRules {
        drain: DrainBy::Signal,
        kill_timeout: Duration::from_millis(1600),
    };
    const CLUSTER_PRELOAD: RunRules = RunRules {
        drain: DrainBy::Preload {
            then_disconnect: true,
        },
        kill_timeout: Duration::from_millis(1600),
    };
    const FORK_PRELOAD: RunRules = RunRules {
        drain: DrainBy::Preload {
            then_disconnect: false,
        },
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

    #[test]
    fn a_cluster_run_with_the_preload_drains_then_disconnects_then_interrupts() {
        let mut p = RunPhase::Ready;
        let fx = run(
            &mut p,
            &[RunEvent::Stop, RunEvent::Drained, RunEvent::ChannelClosed],
            CLUSTER_PRELOAD,
        );
        assert_eq!(
            fx,
            vec![
                RunEffect::StopRouting,
                RunEffect::SendDrain,
                RunEffect::Arm(RunTimer::DrainTimeout, CLUSTER.kill_timeout),
                RunEffect::SendDisconnect,
                RunEffect::Interrupt,
                RunEffect::Arm(RunTimer::KillTimeout, CLUSTER.kill_timeout),
            ]
        );
    }

    #[test]
    fn a_fork_run_with_the_preload_is_interrupted_once_drained() {
        let mut p = RunPhase::Ready;
        let fx = run(
            &mut p,
            &[RunEvent::Stop, RunEvent::Drained, RunEvent::Drained],
            FORK_PRELOAD,
        );
        assert_eq!(
            fx,
            vec![
                RunEffect::StopRouting,
                RunEffect::SendDrain,
                RunEffect::Arm(RunTimer::DrainTimeout, FORK.kill_timeout),
                RunEffect::Interrupt,
                RunEffect::Arm(RunTimer::KillTimeout, FORK.kill_timeout),
            ]
        );
    }

    #[test]
    fn a_drain_that_never_ends_is_interrupted_at_kill_timeout() {
        for rules in [CLUSTER_PRELOAD, FORK_PRELOAD] {
            let mut p = RunPhase::Ready;
            let fx = run(&mut p, &[RunEvent::Stop, RunEvent::DrainTimeout], rules);
            assert_eq!(
                fx[3..],
                [
                    RunEffect::Interrupt,
                    RunEffect::Arm(RunTimer::KillTimeout, rules.kill_timeout),
                ]
            );
        }
    }

    #[test]
    fn the_drain_timer_also_bounds_the_disconnect_after_drained() {
        let mut p = RunPhase::Ready;
        let fx = run(
            &mut p,
            &[RunEvent::Stop, RunEvent::Drained, RunEvent::DrainTimeout],
            CLUSTER_PRELOAD,
        );
        assert!(fx.ends_with(&[
            RunEffect::Interrupt,
            RunEffect::Arm(RunTimer::KillTimeout, CLUSTER.kill_timeout),
        ]));
    }

    #[test]
    fn a_hung_run_is_abandoned_from_any_phase_and_killed_at_once() {
        for phase in [
            RunPhase::Starting,
            RunPhase::Ready,
            RunPhase::Draining {
                step: DrainStep::Preload,
            },
        ] {
            let mut p = phase;
            assert_eq!(
                run(&mut p, &[RunEvent::Abandon], CLUSTER_PRELOAD),
                vec![RunEffect::Abandon]
            );
            assert!(p.exit_expected());
            // The kill timer armed before finds nothing left to do.
            assert!(run(&mut p, &[RunEvent::DrainTimeout], CLUSTER_PRELOAD).is_empty());
        }
    }

    #[test]
    fn an_unasked_drained_changes_nothing() {
        for phase in [
            RunPhase::Starting,
            RunPhase::Ready,
            RunPhase::Leaving,
            RunPhase::Draining {
                step: DrainStep::Grace,
            },
        ] {
            let mut p = phase;
            assert!(run(&mut p, &[RunEvent::Drained], CLUSTER_PRELOAD).is_empty());
            assert_eq!(p, phase);
        }
    }
}
