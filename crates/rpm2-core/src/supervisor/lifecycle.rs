//! Processes: spawning a run, feeding its machine (`run.rs`) and performing
//! what it asks (routing, `disconnect`, signals, timers), its IPC messages,
//! and its exit, which the worker's machine decides about.

use nix::sys::signal::Signal;
use rpm2_node_ipc::cluster::WorkerMessage;
use rpm2_node_ipc::Incoming;
use rpm2_proto::ExecMode;
use tokio::time::Instant;

use super::actor::Actor;
use super::drain::{self, Preload, PreloadMessage};
use super::os::{SpawnRequest, Target};
use super::run::{DrainBy, RunEffect, RunEvent, RunPhase, RunRules, RunTimer};
use super::state::{Gen, Run};
use super::worker::{Exit, RunRole, WorkerEvent};
use super::Msg;

impl Actor {
    /// Start process `gen` for worker `pm_id`. A failure goes back to the
    /// worker's machine as `SpawnFailed`.
    pub(crate) fn spawn_run(&mut self, pm_id: u32, gen: Gen, role: RunRole) {
        let Some((spec, instance)) = self
            .table
            .workers
            .get(&pm_id)
            .and_then(|w| Some((self.table.apps.get(&w.app)?.spec.clone(), w.instance)))
        else {
            tracing::error!("spawn for worker {pm_id}, which is not in the table");
            return;
        };
        let cluster_id = (spec.exec_mode == ExecMode::Cluster && spec.node)
            .then(|| self.table.alloc_cluster_id());
        self.assign_log_paths(pm_id);
        let env = self.worker_env(pm_id, instance);
        let process = self.event_process(pm_id);
        let preload = self.preload_for(&spec);
        let Some(w) = self.table.workers.get(&pm_id) else {
            return;
        };
        let marker = self.run_marker(gen);
        let started = self.os.spawn(SpawnRequest {
            preload: preload.as_deref(),
            run: gen,
            spec: &spec,
            env: &env,
            cluster_id,
            out_log: w.out_log.as_deref(),
            err_log: w.err_log.as_deref(),
            combined_log: w.combined_log.as_deref(),
            process,
            marker: &marker,
        });
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                let reason = format!(
                    "failed to start {} [{}:{pm_id}]: {e}",
                    spec.script.display(),
                    spec.name
                );
                tracing::error!("{reason}");
                self.worker_event(pm_id, WorkerEvent::SpawnFailed { run: gen, reason }, None);
                return;
            }
        };
        tracing::info!(
            "App [{}:{pm_id}] starting in -{} mode- (pid {}){}",
            spec.name,
            if cluster_id.is_some() {
                "cluster"
            } else {
                "fork"
            },
            started.pid,
            if role == RunRole::Successor {
                ", reload successor"
            } else {
                ""
            }
        );
        let mut key = spec.name.clone();
        if let Some(w) = self.table.workers.get_mut(&pm_id) {
            w.env = env;
            w.log_error = started.log_error.clone();
            key.clone_from(&w.app);
        }
        let cluster = cluster_id.is_some() && started.link.is_some();
        if let (true, Some(link)) = (cluster, &started.link) {
            // By the app's key: a second app of one name has its own ports.
            self.primary.attach(gen, &key, pm_id, link.clone());
        }
        self.table.runs.insert(
            gen,
            Run {
                pm_id,
                pid: started.pid,
                started: Instant::now(),
                phase: RunPhase::Starting,
                link: started.link,
                cluster,
                exit_waiters: Vec::new(),
                preload: if preload.is_some() {
                    Preload::Expected
                } else {
                    Preload::Absent
                },
                inflight: None,
                health: super::health::RunHealth::default(),
            },
        );
        self.axm_run_started(pm_id, gen);
        self.emit(pm_id, "start", false);
        self.arm_probes(gen, &spec);
        if cluster_id.is_none() && spec.readiness_probe.is_some() {
            // Online once spawned; ready once its probe passes.
            self.run_event(gen, RunEvent::Online);
        }
        if cluster_id.is_none() && !spec.wait_ready && spec.readiness_probe.is_none() {
            // Fork workers are online once spawned, unless they promised `ready`.
            self.run_event(gen, RunEvent::Ready);
        } else {
            self.after(
                spec.listen_timeout_ms,
                Msg::Timer {
                    gen,
                    timer: RunTimer::ListenTimeout,
                },
            );
        }
    }

    /// The drain preload for a run of `spec`: Node workers run by an
    /// interpreter, unless the app says `drain: false`. A preload file that
    /// went missing is written again; if that fails the worker runs without.
    fn preload_for(&mut self, spec: &rpm2_proto::AppSpec) -> Option<std::path::PathBuf> {
        if !(spec.node && spec.drain && spec.interpreter.is_some()) {
            return None;
        }
        if spec.uid.is_some() || spec.gid.is_some() {
            // The preload lives in the private home, which another user
            // cannot read: such an app drains with the cluster `disconnect`.
            tracing::info!("App [{}] runs as another user: no drain preload", spec.name);
            return None;
        }
        let path = self.preload_file.as_ref()?;
        if path.exists() {
            return Some(path.clone());
        }
        match super::drain::install(self.home.root()) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::warn!(
                    "App [{}]: cannot write the drain preload ({e}); it drains without it",
                    spec.name
                );
                None
            }
        }
    }

    /// How run `gen` is drained when stopped, from its channel and preload.
    fn drain_by(run: &Run, name: &str) -> DrainBy {
        let open = run.link.as_ref().is_some_and(|l| !l.is_closed());
        match (&run.preload, open) {
            (_, false) => DrainBy::Signal,
            (Preload::Loaded, true) => DrainBy::Preload {
                then_disconnect: run.cluster,
            },
            (preload, true) => {
                if *preload == Preload::Expected && run.phase.is_online() {
                    tracing::info!(
                        "App [{name}:{}] its drain preload never said hello (not loaded?); it drains without it",
                        run.pm_id
                    );
                }
                if run.cluster {
                    DrainBy::Disconnect
                } else {
                    DrainBy::Signal
                }
            }
        }
    }

    /// Feed `event` to run `gen`'s machine and perform its effects.
    pub(crate) fn run_event(&mut self, gen: Gen, event: RunEvent) {
        if event == RunEvent::ListenTimeout && self.ready_by_probe(gen) {
            return self.not_ready_in_time(gen);
        }
        let Some(run) = self.table.runs.get_mut(&gen) else {
            tracing::trace!("{event:?} for run {gen}, which has exited");
            return;
        };
        let pm_id = run.pm_id;
        let Some(spec) = self
            .table
            .workers
            .get(&pm_id)
            .and_then(|w| self.table.apps.get(&w.app))
            .map(|a| &a.spec)
        else {
            return;
        };
        let drain = if event == RunEvent::Stop || event == RunEvent::Drained {
            Self::drain_by(run, &spec.name)
        } else {
            DrainBy::Signal
        };
        let rules = RunRules {
            drain,
            kill_timeout: std::time::Duration::from_millis(spec.kill_timeout_ms),
        };
        if event == RunEvent::ListenTimeout
            && matches!(run.phase, RunPhase::Starting | RunPhase::Online)
        {
            tracing::warn!(
                "App [{}:{pm_id}] listen_timeout reached: counted as ready without a ready signal",
                spec.name
            );
        }
        let effects = run.phase.on(event, rules, Instant::now());
        for effect in effects {
            self.perform_run(gen, pm_id, effect);
        }
    }

    fn perform_run(&mut self, gen: Gen, pm_id: u32, effect: RunEffect) {
        match effect {
            RunEffect::BecameOnline => {
                self.worker_event(pm_id, WorkerEvent::RunOnline(gen), None);
            }
            RunEffect::BecameReady => {
                self.worker_event(pm_id, WorkerEvent::RunReady(gen), None);
            }
            RunEffect::StopRouting => self.primary.set_eligible(gen, false),
            RunEffect::Arm(timer, after) => self.after(
                u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                Msg::Timer { gen, timer },
            ),
            RunEffect::SendDrain => {
                let linger = self
                    .spec_of(pm_id)
                    .map(|s| drain::linger(std::time::Duration::from_millis(s.kill_timeout_ms)))
                    .unwrap_or_default();
                let sent = self
                    .table
                    .runs
                    .get(&gen)
                    .and_then(|r| r.link.as_ref())
                    .is_some_and(|l| l.send(drain::drain_message(linger)).is_ok());
                if !sent {
                    self.run_event(gen, RunEvent::ChannelClosed);
                }
            }
            RunEffect::SendDisconnect => {
                let sent = self
                    .table
                    .runs
                    .get(&gen)
                    .and_then(|r| r.link.as_ref())
                    .is_some_and(|l| l.send(rpm2_node_ipc::cluster::disconnect(0)).is_ok());
                if !sent {
                    self.run_event(gen, RunEvent::ChannelClosed);
                }
            }
            RunEffect::Interrupt => {
                let Some(run) = self.table.runs.get(&gen) else {
                    return;
                };
                let Some(spec) = self.spec_of(pm_id) else {
                    return;
                };
                let by_message = spec.shutdown_with_message
                    && run.link.as_ref().is_some_and(|l| {
                        l.send(serde_json::Value::String("shutdown".into())).is_ok()
                    });
                if !by_message {
                    self.signal_run(gen, Signal::SIGINT);
                }
            }
            RunEffect::Abandon => {
                self.primary.abandon(gen);
                self.signal_run(gen, Signal::SIGKILL);
            }
            RunEffect::Kill => {
                if let Some(run) = self.table.runs.get(&gen) {
                    tracing::warn!(
                        "Process with pid {} still alive after kill_timeout, sending SIGKILL",
                        run.pid
                    );
                }
                self.signal_run(gen, Signal::SIGKILL);
            }
        }
    }

    /// Signal a run: its process group and every process it started
    /// (`treekill`, pm2's default), or its process alone.
    fn signal_run(&mut self, gen: Gen, signal: Signal) {
        let Some(run) = self.table.runs.get(&gen) else {
            return;
        };
        let pid = run.pid;
        let treekill = self.spec_of(run.pm_id).is_none_or(|s| s.treekill);
        let marker = self.run_marker(gen);
        let target = Target {
            pid,
            tree: treekill.then_some(marker.as_str()),
        };
        if let Err(e) = self.os.signal(target, signal) {
            tracing::warn!("cannot send {signal} to pid {pid}: {e}");
        }
    }

    pub(crate) fn on_ipc(&mut self, gen: Gen, incoming: Incoming) {
        let Some(pm_id) = self.table.runs.get(&gen).map(|r| r.pm_id) else {
            // The channel's last words can arrive after the exit.
            tracing::trace!("IPC from run {gen}, which has exited");
            return;
        };
        match incoming {
            Incoming::Closed => self.run_event(gen, RunEvent::ChannelClosed),
            Incoming::Accepted { ack, accepted } => self.primary.answered(gen, ack, accepted),
            // Workers never send us handles in the cluster protocol.
            Incoming::Message { msg, handle: _ } => {
                if let Some(cm) = WorkerMessage::parse(&msg) {
                    self.on_cluster_message(gen, cm);
                } else if let Some(pm) = PreloadMessage::parse(&msg) {
                    self.on_preload_message(gen, pm_id, pm);
                } else if !rpm2_node_ipc::is_internal(&msg) {
                    self.on_user_message(gen, pm_id, msg);
                }
            }
        }
    }

    fn on_cluster_message(&mut self, gen: Gen, msg: WorkerMessage) {
        let wait_ready = self.run_spec(gen).is_some_and(|s| s.wait_ready);
        let by_probe = self.ready_by_probe(gen);
        match msg {
            // With wait_ready only `ready` (or listen_timeout) counts; with
            // a readiness probe, only the probe (`probe.rs`).
            WorkerMessage::Online if !wait_ready || by_probe => {
                self.run_event(gen, RunEvent::Online);
            }
            WorkerMessage::Listening(_) if !wait_ready && !by_probe => {
                self.run_event(gen, RunEvent::Ready);
            }
            WorkerMessage::Online | WorkerMessage::Listening(_) => {}
            WorkerMessage::QueryServer(q) => self.primary.query_server(gen, &q),
            WorkerMessage::Close { key } => self.primary.closed_key(gen, &key),
            WorkerMessage::ExitedAfterDisconnect { seq } => {
                // It leaves on purpose: not a crash.
                if let Some(link) = self.table.runs.get(&gen).and_then(|r| r.link.as_ref()) {
                    let _ = link.send(rpm2_node_ipc::cluster::ack(seq, 0));
                }
                self.run_event(gen, RunEvent::Leaving);
            }
            WorkerMessage::Reply { ack, accepted } => {
                self.primary.answered(gen, ack, accepted.unwrap_or(false));
            }
            WorkerMessage::Unknown => tracing::debug!("unknown cluster message from run {gen}"),
        }
    }

    fn on_preload_message(&mut self, gen: Gen, pm_id: u32, msg: PreloadMessage) {
        let name = self
            .spec_of(pm_id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        match msg {
            PreloadMessage::Hello { error: None } => run.preload = Preload::Loaded,
            PreloadMessage::Hello { error: Some(e) } => {
                tracing::warn!(
                    "App [{name}:{pm_id}] its drain preload failed ({e}); it drains without it"
                );
                run.preload = Preload::Failed(e);
            }
            PreloadMessage::Stats { inflight } => run.inflight = Some(inflight),
            PreloadMessage::Pong { seq } => self.on_pong(gen, seq),
            PreloadMessage::Drained => {
                run.inflight = Some(0);
                self.run_event(gen, RunEvent::Drained);
            }
        }
    }

    fn run_spec(&self, gen: Gen) -> Option<&rpm2_proto::AppSpec> {
        self.spec_of(self.table.runs.get(&gen)?.pm_id)
    }

    fn on_user_message(&mut self, gen: Gen, pm_id: u32, msg: serde_json::Value) {
        let wait_ready = self.spec_of(pm_id).is_some_and(|s| s.wait_ready);
        if msg.as_str() == Some("ready") && wait_ready && !self.ready_by_probe(gen) {
            self.run_event(gen, RunEvent::Ready);
        }
        // `@pm2/io`'s messages, and the bus (`axm_book.rs`).
        self.on_app_message(gen, pm_id, msg);
    }

    /// A run's process is gone: the worker's machine decides what it means.
    pub(crate) fn on_exit(&mut self, gen: Gen, code: Option<i32>, signal: Option<i32>) {
        let Some(run) = self.table.runs.remove(&gen) else {
            tracing::warn!("exit of unknown run {gen}");
            return;
        };
        self.primary.detach(gen);
        for waiter in run.exit_waiters {
            let _ = waiter.send(Ok(()));
        }
        let pm_id = run.pm_id;
        self.axm_run_exited(pm_id, gen);
        let signal = signal
            .and_then(|s| Signal::try_from(s).ok())
            .map(Signal::as_str);
        let Some(app) = self.table.workers.get(&pm_id).map(|w| w.app.clone()) else {
            tracing::warn!("run {gen} exited after its worker {pm_id} was removed");
            return;
        };
        tracing::info!(
            "App [{app}:{pm_id}] exited with code [{}] via signal [{}]",
            code.map_or_else(|| "null".to_owned(), |c| c.to_string()),
            signal.unwrap_or("null")
        );
        let treekill = self.spec_of(pm_id).is_some_and(|s| s.treekill);
        if treekill && matches!(run.phase, RunPhase::Interrupted { .. }) {
            // Descendants that outlive a stopped worker get its SIGKILL too.
            let kill_timeout = self.spec_of(pm_id).map_or(0, |s| s.kill_timeout_ms);
            self.os.sweep(
                &self.run_marker(gen),
                std::time::Duration::from_millis(kill_timeout),
            );
        }
        let exit = Exit {
            run: gen,
            code,
            signal,
            uptime_ms: u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            expected: run.phase.exit_expected(),
        };
        self.exits.record(&app, pm_id, code, signal, exit.expected);
        self.worker_event(pm_id, WorkerEvent::RunExited(exit), None);
        if !self.table.app_alive(&app) {
            self.primary.close_app(&app);
        }
    }
}
