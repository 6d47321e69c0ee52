//! A worker's life, as a state machine: one `pm_id` of an app, which
//! outlives its processes (runs). Transitions take an event and return the
//! effects the actor must perform, in order; pm2's status strings are
//! derived from the state.
//!
//! ```text
//!            start                 run online/ready
//! Stopped ──────────► Launching ─────────────────► Online ──reload──► Reloading{successor}
//! Errored ──start──►     │  ▲                        │  ▲                 │ successor ready: promote
//! WaitingRestart{timer}  │  └──── crash, delay 0 ────┤  └─────────────────┘ successor fails: back
//!    ▲   └─due──► Launching                          │
//!    └──── crash with restart delay ─────────────────┤
//! Launching/Online/Reloading ──stop/restart──► Stopping{then: Stay|Start}
//! Stopping ──run exited──► Stopped, or Launching (then: Start)
//! crash loop past max_restarts ──► Errored
//! ```

use rpm2_proto::{AppSpec, ErrorCode, ExecMode, RpcError, WorkerStatus};

use crate::worker::policy::{decide, ExitDecision, RestartCounters};
use crate::Gen;

/// Where a worker is in its life. Every variant that has a process names
/// its run; a reload also names the successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    Stopped,
    /// Gave up after too many unstable restarts, or could not spawn.
    Errored,
    Launching {
        run: Gen,
    },
    Online {
        run: Gen,
    },
    /// A restart is due when `timer` fires (a stale timer finds another state).
    WaitingRestart {
        timer: u64,
    },
    /// `run` was asked to end; `then` says what follows its exit.
    Stopping {
        run: Gen,
        then: AfterStop,
    },
    /// `run` serves while `successor` starts; the successor takes over once
    /// it is ready.
    Reloading {
        run: Gen,
        successor: Gen,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    Stay,
    /// A restart: start again once the run is gone.
    Start,
}

/// Which role a new run plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRole {
    /// The worker's process (start, restart, crash restart).
    Main,
    /// A reload's successor: serves only once ready, then replaces the old run.
    Successor,
}

/// What happens to a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    /// Start it if it is not running; the caller waits for it to be online,
    /// or ready to serve with `until_ready` (scale-up).
    Start {
        until_ready: bool,
    },
    Restart,
    /// Zero-downtime replacement (cluster); other workers are restarted.
    Reload,
    Stop,
    RunOnline(Gen),
    RunReady(Gen),
    SpawnFailed {
        run: Gen,
        reason: String,
    },
    RunExited(Exit),
    RestartDue {
        timer: u64,
    },
    /// The serving run is sick: its event loop stopped answering (`hung`),
    /// or its liveness probe failed. The worker gets a new process.
    Replace {
        run: Gen,
        reason: String,
        hung: bool,
    },
    /// The run's readiness probe did not pass within `listen_timeout`.
    RunNotReady {
        run: Gen,
        reason: String,
    },
}

/// A run's process was reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub run: Gen,
    pub code: Option<i32>,
    pub signal: Option<&'static str>,
    pub uptime_ms: u64,
    /// Its run was asked to end (or announced it): not a crash.
    pub expected: bool,
}

/// Callers waiting for something to happen to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// For it to count as started.
    Online,
    /// For it to be ready to serve.
    Ready,
    /// For the old process of a reload to be gone.
    Reload,
}

/// When the caller that sent the event gets its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Now(Result<(), RpcError>),
    With(Waiting),
    /// When this run has exited.
    OnExit(Gen),
}

/// What a worker transition asks the actor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// File the caller's reply (first, so a failing spawn answers it too).
    Caller(Answer),
    /// Start a process as run `run`; failure comes back as `SpawnFailed`.
    Spawn {
        run: Gen,
        role: RunRole,
    },
    /// Ask a run to end (its own machine drains, signals and kills it).
    StopRun(Gen),
    /// End a hung run now: no routing, SIGKILL, and connections handed to
    /// it but unanswered go to other workers once it is gone.
    AbandonRun(Gen),
    /// Answer everyone waiting for `Waiting`.
    Answer(Waiting, Result<(), RpcError>),
    /// Those waiting for `Waiting` are answered when `run` has exited.
    AnswerOnExit(Waiting, Gen),
    /// `RestartDue { timer }` after this many ms.
    ArmRestart {
        timer: u64,
        delay_ms: u64,
    },
    /// This run is the worker's serving process and online: the cluster
    /// primary may route connections to it (until its run stops routing).
    Route(Gen),
    /// A `process:event` on the bus.
    Emit {
        event: &'static str,
        manually: bool,
    },
    /// The pid file names this run's process.
    WritePid(Gen),
    RemovePid,
}

/// What a transition may consult besides the worker.
pub struct Context<'a> {
    pub spec: &'a AppSpec,
    /// Run numbers and restart timers are never reused.
    pub next_id: &'a mut u64,
    /// The daemon is going down: crashes are not restarted.
    pub shutting_down: bool,
    pub now_ms: u64,
}

impl Context<'_> {
    pub(super) fn fresh_id(&mut self) -> u64 {
        *self.next_id += 1;
        *self.next_id
    }
}

/// The state part of a worker (the rest of `state::Worker` is data).
#[derive(Debug, Clone)]
pub struct Life {
    pub state: WorkerState,
    pub counters: RestartCounters,
    /// pm2's `pm_uptime`: when the serving process started.
    pub pm_uptime: u64,
    pub exit_code: Option<i32>,
    /// Why it was last replaced on rpm2's own decision (watchdog, probe).
    pub restart_reason: Option<String>,
}

impl Life {
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        Self {
            state: WorkerState::Stopped,
            counters: RestartCounters::default(),
            pm_uptime: now_ms,
            exit_code: None,
            restart_reason: None,
        }
    }

    /// pm2's status string, derived from the state.
    #[must_use]
    pub fn status(&self) -> WorkerStatus {
        match self.state {
            WorkerState::Stopped => WorkerStatus::Stopped,
            WorkerState::Errored => WorkerStatus::Errored,
            WorkerState::Launching { .. } => WorkerStatus::Launching,
            WorkerState::Online { .. } | WorkerState::Reloading { .. } => WorkerStatus::Online,
            WorkerState::WaitingRestart { .. } => WorkerStatus::WaitingRestart,
            WorkerState::Stopping { .. } => WorkerStatus::Stopping,
        }
    }

    /// The run that serves (or is starting, or being stopped).
    #[must_use]
    pub fn serving(&self) -> Option<Gen> {
        match self.state {
            WorkerState::Launching { run }
            | WorkerState::Online { run }
            | WorkerState::Stopping { run, .. }
            | WorkerState::Reloading { run, .. } => Some(run),
            _ => None,
        }
    }

    /// It has a process, or will have one soon (its ports must stay open).
    #[must_use]
    pub fn is_alive(&self) -> bool {
        self.serving().is_some() || matches!(self.state, WorkerState::WaitingRestart { .. })
    }

    /// Apply `event`; returns what must happen, in order.
    pub fn on(&mut self, event: WorkerEvent, cx: &mut Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        match event {
            WorkerEvent::Start { until_ready } => self.start(until_ready, cx),
            WorkerEvent::Restart => self.restart(cx),
            WorkerEvent::Reload => match self.state {
                S::Online { run } if cx.spec.exec_mode == ExecMode::Cluster && cx.spec.node => {
                    let successor = cx.fresh_id();
                    self.state = S::Reloading { run, successor };
                    vec![
                        Effect::Caller(Answer::With(Waiting::Reload)),
                        Effect::Emit {
                            event: "reload",
                            manually: true,
                        },
                        Effect::Spawn {
                            run: successor,
                            role: RunRole::Successor,
                        },
                    ]
                }
                // pm2: fork mode and workers not online are restarted.
                _ => self.restart(cx),
            },
            WorkerEvent::Stop => self.stop(),
            WorkerEvent::RunOnline(gen) => match self.state {
                S::Launching { run } if run == gen => self.became_online(run),
                // A successor's start is not the worker's, and a stopping
                // run's readiness is news to nobody.
                _ => Vec::new(),
            },
            WorkerEvent::RunReady(gen) => self.run_ready(gen, cx),
            WorkerEvent::SpawnFailed { run, reason } => self.spawn_failed(run, reason),
            WorkerEvent::RunExited(exit) => self.run_exited(exit, cx),
            WorkerEvent::RestartDue { timer } => match self.state {
                S::WaitingRestart { timer: t } if t == timer && !cx.shutting_down => {
                    // Counted now, not at the crash (pm2 does so too).
                    self.counters.restart_time += 1;
                    self.launch(cx)
                }
                _ => {
                    tracing::trace!("restart timer {timer} is stale in {:?}", self.state);
                    Vec::new()
                }
            },
            WorkerEvent::Replace { run, reason, hung } => match self.state {
                S::Online { run: serving } if serving == run => {
                    self.restart_reason = Some(reason);
                    self.replace(run, hung, cx)
                }
                _ => Vec::new(),
            },
            WorkerEvent::RunNotReady { run, reason } => self.run_not_ready(run, &reason, cx),
        }
    }

    fn launch(&mut self, cx: &mut Context<'_>) -> Vec<Effect> {
        let run = cx.fresh_id();
        self.state = WorkerState::Launching { run };
        self.pm_uptime = cx.now_ms;
        vec![
            Effect::Spawn {
                run,
                role: RunRole::Main,
            },
            Effect::WritePid(run),
        ]
    }

    fn start(&mut self, until_ready: bool, cx: &mut Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        let wait = Effect::Caller(Answer::With(if until_ready {
            Waiting::Ready
        } else {
            Waiting::Online
        }));
        match self.state {
            S::Stopped | S::Errored | S::WaitingRestart { .. } => {
                let mut out = vec![wait];
                out.extend(self.launch(cx));
                out
            }
            S::Online { .. } | S::Reloading { .. } => vec![Effect::Caller(Answer::Now(Ok(())))],
            S::Launching { .. } => vec![wait],
            // Start while stopping: start again once it is gone.
            S::Stopping { run, .. } => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Start,
                };
                vec![wait]
            }
        }
    }

    fn restart(&mut self, cx: &mut Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        let wait = Effect::Caller(Answer::With(Waiting::Online));
        let emit = Effect::Emit {
            event: "restart",
            manually: true,
        };
        match self.state {
            S::Launching { run } | S::Online { run } => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Start,
                };
                vec![wait, emit, Effect::StopRun(run)]
            }
            S::Reloading { run, successor } => self.cut_reload(
                (run, successor),
                AfterStop::Start,
                [wait, emit],
                "restarted during reload",
            ),
            S::Stopping { run, .. } => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Start,
                };
                vec![wait]
            }
            // pm2: a stopped app is just started, restart_time unchanged.
            S::Stopped | S::Errored | S::WaitingRestart { .. } => self.start(false, cx),
        }
    }

    /// A stop or restart during a reload: both runs end, the reload
    /// answers `why`; the caller's effect comes first, the bus event after.
    fn cut_reload(
        &mut self,
        (run, successor): (Gen, Gen),
        then: AfterStop,
        [caller, emit]: [Effect; 2],
        why: &str,
    ) -> Vec<Effect> {
        self.state = WorkerState::Stopping { run, then };
        vec![
            caller,
            Effect::Answer(
                Waiting::Reload,
                Err(RpcError::new(ErrorCode::ReloadFailed, why)),
            ),
            Effect::StopRun(successor),
            emit,
            Effect::StopRun(run),
        ]
    }

    fn stop(&mut self) -> Vec<Effect> {
        use WorkerState as S;
        let emit = Effect::Emit {
            event: "stop",
            manually: true,
        };
        match self.state {
            S::Stopped | S::Errored => vec![Effect::Caller(Answer::Now(Ok(())))],
            // The pending restart is cancelled: its timer finds Stopped.
            S::WaitingRestart { .. } => {
                self.state = S::Stopped;
                vec![Effect::Caller(Answer::Now(Ok(())))]
            }
            S::Launching { run } | S::Online { run } => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Stay,
                };
                vec![
                    Effect::Caller(Answer::OnExit(run)),
                    emit,
                    Effect::StopRun(run),
                ]
            }
            S::Reloading { run, successor } => self.cut_reload(
                (run, successor),
                AfterStop::Stay,
                [Effect::Caller(Answer::OnExit(run)), emit],
                "stopped during reload",
            ),
            // A restart in progress becomes a stop.
            S::Stopping { run, .. } => {
                self.state = S::Stopping {
                    run,
                    then: AfterStop::Stay,
                };
                vec![Effect::Caller(Answer::OnExit(run))]
            }
        }
    }

    fn became_online(&mut self, run: Gen) -> Vec<Effect> {
        self.state = WorkerState::Online { run };
        vec![
            Effect::Route(run),
            Effect::Answer(Waiting::Online, Ok(())),
            Effect::Emit {
                event: "online",
                manually: false,
            },
        ]
    }

    fn run_ready(&mut self, gen: Gen, cx: &Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        match self.state {
            S::Launching { run } if run == gen => {
                let mut out = self.became_online(run);
                out.push(Effect::Answer(Waiting::Ready, Ok(())));
                out
            }
            S::Online { run } if run == gen => vec![Effect::Answer(Waiting::Ready, Ok(()))],
            // The successor takes over; the reload answers once the old run is gone.
            S::Reloading { run, successor } if successor == gen => {
                self.state = S::Online { run: successor };
                self.counters.restart_time += 1;
                self.pm_uptime = cx.now_ms;
                vec![
                    Effect::WritePid(successor),
                    Effect::Route(successor),
                    Effect::Emit {
                        event: "online",
                        manually: false,
                    },
                    Effect::AnswerOnExit(Waiting::Reload, run),
                    Effect::StopRun(run),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn spawn_failed(&mut self, gen: Gen, reason: String) -> Vec<Effect> {
        use WorkerState as S;
        match self.state {
            S::Launching { run } if run == gen => {
                self.state = S::Errored;
                let err = RpcError::new(ErrorCode::SpawnFailed, reason);
                vec![
                    Effect::RemovePid,
                    Effect::Answer(Waiting::Online, Err(err.clone())),
                    Effect::Answer(Waiting::Ready, Err(err)),
                ]
            }
            S::Reloading { run, successor } if successor == gen => {
                self.state = S::Online { run };
                vec![Effect::Answer(
                    Waiting::Reload,
                    Err(RpcError::new(
                        ErrorCode::ReloadFailed,
                        format!("{reason}; the old process keeps serving"),
                    )),
                )]
            }
            _ => {
                tracing::warn!("spawn failure of run {gen} in {:?}: {reason}", self.state);
                Vec::new()
            }
        }
    }

    fn run_exited(&mut self, exit: Exit, cx: &mut Context<'_>) -> Vec<Effect> {
        use WorkerState as S;
        let code_text = exit
            .code
            .map_or_else(|| "null".to_owned(), |c| c.to_string());
        match self.state {
            S::Reloading { run, successor } if successor == exit.run => {
                // The successor died before it was ready: the old run keeps serving.
                self.state = S::Online { run };
                let reason = format!(
                    "reload of [{}] failed: the new process exited (code {code_text}, signal {}) before it was ready; the old process keeps serving",
                    cx.spec.name,
                    exit.signal.unwrap_or("null")
                );
                tracing::error!("{reason}");
                return vec![Effect::Answer(
                    Waiting::Reload,
                    Err(RpcError::new(ErrorCode::ReloadFailed, reason)),
                )];
            }
            S::Reloading { run, successor } if run == exit.run => {
                // The old run died first: the successor is the worker's now.
                self.state = S::Launching { run: successor };
                self.counters.restart_time += 1;
                self.exit_code = exit.code;
                return vec![
                    Effect::Emit {
                        event: "exit",
                        manually: false,
                    },
                    Effect::WritePid(successor),
                    Effect::Answer(Waiting::Reload, Ok(())),
                ];
            }
            _ => {}
        }
        if self.serving() != Some(exit.run) {
            // A run drained by a reload: its exit is only news.
            return vec![Effect::Emit {
                event: "exit",
                manually: true,
            }];
        }
        self.exit_code = exit.code;
        let mut out = vec![
            Effect::RemovePid,
            Effect::Emit {
                event: "exit",
                manually: false,
            },
        ];
        match self.state {
            S::Stopping {
                then: AfterStop::Start,
                ..
            } => {
                self.counters.restart_time += 1;
                self.counters.unstable_restarts = 0;
                out.extend(self.launch(cx));
            }
            S::Stopping {
                then: AfterStop::Stay,
                ..
            } => self.state = S::Stopped,
            _ if exit.expected || cx.shutting_down => self.state = S::Stopped,
            _ => out.extend(self.crashed(exit, cx)),
        }
        if self.serving().is_none() {
            // Callers waiting for it to start learn that it ended instead.
            out.push(Effect::Answer(Waiting::Online, Ok(())));
            out.push(Effect::Answer(Waiting::Ready, Ok(())));
        }
        out
    }

    /// An exit nobody asked for: the restart policy decides.
    fn crashed(&mut self, exit: Exit, cx: &mut Context<'_>) -> Vec<Effect> {
        match decide(cx.spec, &mut self.counters, exit.code, exit.uptime_ms) {
            ExitDecision::Stop => {
                self.state = WorkerState::Stopped;
                Vec::new()
            }
            ExitDecision::Errored => {
                self.state = WorkerState::Errored;
                tracing::error!(
                    "Script {} had too many unstable restarts ({}). Stopped. \"errored\"",
                    cx.spec.script.display(),
                    self.counters.unstable_restarts
                );
                vec![Effect::Emit {
                    event: "restart overlimit",
                    manually: false,
                }]
            }
            ExitDecision::Restart { delay_ms: 0 } => {
                self.counters.restart_time += 1;
                self.launch(cx)
            }
            ExitDecision::Restart { delay_ms } => {
                let timer = cx.fresh_id();
                self.state = WorkerState::WaitingRestart { timer };
                tracing::info!("App [{}] will restart in {delay_ms}ms", cx.spec.name);
                vec![Effect::ArmRestart { timer, delay_ms }]
            }
        }
    }
}
