//! Processes: starting a run, its readiness, its IPC messages, the single
//! terminate routine, and what an exit means.

use std::path::PathBuf;

use nix::sys::signal::Signal;
use rpm2_logs::{LogFormat, PumpConfig, StreamKind};
use rpm2_node_ipc::Incoming;
use rpm2_proto::{ErrorCode, Event, ExecMode, RpcError, WorkerStatus};

use super::actor::Actor;
use super::state::{Gen, Run};
use super::{not_found, now_ms, Msg, RunTimer};
use crate::worker::policy::{decide, ExitDecision};
use crate::worker::spawn::spawn;

/// Which role a new run plays for its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRole {
    /// The worker's process (start, restart, crash restart).
    Main,
    /// A reload's successor: serves only once ready, then replaces the old run.
    Successor,
}

impl Actor {
    /// Start a process for worker `pm_id`. On failure the worker is
    /// `errored` and the reason is returned.
    pub(crate) fn start_run(&mut self, pm_id: u32, role: RunRole) -> Result<Gen, RpcError> {
        let (spec, instance) = {
            let w = self
                .table
                .workers
                .get(&pm_id)
                .ok_or_else(|| not_found(pm_id))?;
            let app = self
                .table
                .apps
                .get(&w.app)
                .ok_or_else(|| not_found(pm_id))?;
            (app.spec.clone(), w.instance)
        };
        let cluster_id = (spec.exec_mode == ExecMode::Cluster && spec.node)
            .then(|| self.table.alloc_cluster_id());
        self.assign_log_paths(pm_id);
        let env = self.worker_env(pm_id, instance);
        let spawned = match spawn(&spec, &env, cluster_id) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "failed to start {} [{}:{pm_id}]: {e}",
                    spec.script.display(),
                    spec.name
                );
                tracing::error!("{msg}");
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    if role == RunRole::Main {
                        w.status = WorkerStatus::Errored;
                        w.run = None;
                    }
                }
                return Err(RpcError::new(ErrorCode::SpawnFailed, msg));
            }
        };
        let gen = self.table.alloc_gen();
        let pid = spawned.pid;
        tracing::info!(
            "App [{}:{pm_id}] starting in -{} mode- (pid {pid})",
            spec.name,
            if cluster_id.is_some() {
                "cluster"
            } else {
                "fork"
            }
        );

        // Logs: each stream to its file(s) and to the bus.
        if let Some((stdout, stderr)) = spawned.output {
            self.start_pumps(pm_id, &spec, stdout, stderr);
        }

        // IPC messages straight into the actor's queue, tagged with the run.
        let channel = spawned.channel.and_then(|fd| {
            rpm2_node_ipc::open_into(fd, self.tx.clone(), move |incoming| Msg::Ipc {
                gen,
                incoming,
            })
            .map_err(|e| tracing::warn!("App [{}:{pm_id}]: no IPC channel: {e}", spec.name))
            .ok()
        });

        // Reap it.
        let tx = self.tx.clone();
        let mut child = spawned.child;
        tokio::spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let (code, signal) = match child.wait().await {
                Ok(st) => (st.code(), st.signal()),
                Err(_) => (None, None),
            };
            let _ = tx.send(Msg::Exited { gen, code, signal });
        });

        let mut run = Run::new(pm_id, pid, channel);
        let now = now_ms();
        let w = self
            .table
            .workers
            .get_mut(&pm_id)
            .ok_or_else(|| not_found(pm_id))?;
        w.env = env;
        match role {
            RunRole::Main => {
                // A successor's pid is written when it takes over (promote).
                let _ = std::fs::write(&w.pid_path, pid.to_string());
                w.run = Some(gen);
                w.status = WorkerStatus::Launching;
                w.pm_uptime = now;
            }
            RunRole::Successor => w.successor = Some(gen),
        }
        // Fork workers are online once spawned, unless they promised `ready`.
        let immediately_online = cluster_id.is_none() && !spec.wait_ready;
        run.ready = immediately_online;
        self.table.runs.insert(gen, run);
        self.emit(pm_id, "start", false);
        if immediately_online {
            self.run_online(gen);
        } else {
            self.after(
                spec.listen_timeout_ms,
                Msg::Timer {
                    gen,
                    timer: RunTimer::ListenTimeout,
                },
            );
        }
        Ok(gen)
    }

    fn start_pumps(
        &self,
        pm_id: u32,
        spec: &rpm2_proto::AppSpec,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    ) {
        let Some(w) = self.table.workers.get(&pm_id) else {
            return;
        };
        let process = self.event_process(pm_id);
        let open = |p: &Option<PathBuf>| -> Vec<rpm2_logs::FileWriter> {
            p.iter().filter_map(|p| self.log_writer(p)).collect()
        };
        let mut out_files = open(&w.out_log);
        let mut err_files = open(&w.err_log);
        let combined = open(&w.combined_log);
        out_files.extend(combined.iter().cloned());
        err_files.extend(combined);
        for (pipe, kind, files) in [
            (stdout.into_owned_fd(), StreamKind::Out, out_files),
            (stderr.into_owned_fd(), StreamKind::Err, err_files),
        ] {
            let Ok(fd) = pipe else {
                continue;
            };
            rpm2_logs::spawn_fd_pump(
                fd,
                PumpConfig {
                    kind,
                    files,
                    format: LogFormat {
                        date_format: spec.log_date_format.clone(),
                        json: spec.log_json,
                    },
                    process: process.clone(),
                    bus: self.bus.clone(),
                },
            );
        }
    }

    /// A run counts as started.
    pub(crate) fn run_online(&mut self, gen: Gen) {
        // Once: listen_timeout or a second `ready` must not log it again.
        let Some(run) = self.table.runs.get_mut(&gen).filter(|r| !r.online) else {
            return;
        };
        run.online = true;
        let pm_id = run.pm_id;
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            return;
        };
        if w.run == Some(gen) {
            if w.status == WorkerStatus::Launching {
                w.status = WorkerStatus::Online;
            }
            for waiter in std::mem::take(&mut w.online_waiters) {
                let _ = waiter.send(Ok(()));
            }
            let app = w.app.clone();
            self.answer_ready_waiters(gen);
            tracing::info!("App [{app}:{pm_id}] online");
            self.emit(pm_id, "online", false);
            self.drain_waiting(&app);
        }
    }

    /// Callers waiting for a worker to be ready to serve, once its serving
    /// run is both online and ready.
    fn answer_ready_waiters(&mut self, gen: Gen) {
        let Some(run) = self.table.runs.get(&gen) else {
            return;
        };
        if !(run.online && run.ready) {
            return;
        }
        if let Some(w) = self.table.workers.get_mut(&run.pm_id) {
            if w.run == Some(gen) {
                w.answer_start_waiters(&Ok(()), false);
            }
        }
    }

    /// A run is ready to take traffic in a reload or scale-up.
    pub(crate) fn run_ready(&mut self, gen: Gen) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        if run.ready {
            return;
        }
        run.ready = true;
        let pm_id = run.pm_id;
        self.answer_ready_waiters(gen);
        if self
            .table
            .workers
            .get(&pm_id)
            .is_some_and(|w| w.successor == Some(gen))
        {
            self.promote(pm_id, gen);
        }
    }

    /// The successor takes over; the old run is drained and stopped, and
    /// the reload answers once it is gone.
    fn promote(&mut self, pm_id: u32, gen: Gen) {
        let now = now_ms();
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            return;
        };
        w.successor = None;
        let old = w.run.replace(gen);
        w.counters.restart_time += 1;
        w.pm_uptime = now;
        w.status = WorkerStatus::Online;
        let waiters = std::mem::take(&mut w.reload_waiters);
        let app = w.app.clone();
        let _ = std::fs::write(
            &w.pid_path,
            self.table.runs.get(&gen).map_or(0, |r| r.pid).to_string(),
        );
        if let Some(run) = self.table.runs.get_mut(&gen) {
            run.online = true;
        }
        tracing::info!("App [{app}:{pm_id}] reloaded: new process ready");
        self.emit(pm_id, "online", false);
        self.drain_waiting(&app);
        match old.and_then(|g| self.table.runs.get_mut(&g).map(|_| g)) {
            Some(old_gen) => {
                if let Some(r) = self.table.runs.get_mut(&old_gen) {
                    r.exit_waiters.extend(waiters);
                }
                self.terminate(old_gen);
            }
            None => waiters.into_iter().for_each(|w| {
                let _ = w.send(Ok(()));
            }),
        }
    }

    pub(crate) fn on_ipc(&mut self, gen: Gen, incoming: Incoming) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        let pm_id = run.pm_id;
        match incoming {
            Incoming::Closed => {
                run.channel = None;
                // A disconnected cluster worker closed its servers: its
                // in-flight requests are done, so go on to SIGINT now.
                if run.stop_requested {
                    self.interrupt(gen);
                }
            }
            Incoming::Accepted { ack, accepted } => self.newconn_answered(gen, ack, accepted),
            // Workers never send us handles in the cluster protocol.
            Incoming::Message { msg, handle: _ } => {
                if let Some(cm) = rpm2_node_ipc::cluster::WorkerMessage::parse(&msg) {
                    self.on_cluster_message(gen, cm);
                } else if !rpm2_node_ipc::is_internal(&msg) {
                    self.on_user_message(gen, pm_id, msg);
                }
            }
        }
    }

    fn on_user_message(&mut self, gen: Gen, pm_id: u32, msg: serde_json::Value) {
        if msg.as_str() == Some("ready") {
            let wait_ready = self.spec_of(pm_id).is_some_and(|s| s.wait_ready);
            if wait_ready {
                self.run_online(gen);
                self.run_ready(gen);
            }
        }
        if self.bus.receiver_count() > 0 {
            let (msg_type, data, raw) = match &msg {
                serde_json::Value::Object(o)
                    if o.get("type").is_some_and(serde_json::Value::is_string)
                        && o.contains_key("data") =>
                {
                    (
                        o.get("type").and_then(|t| t.as_str()).map(str::to_owned),
                        o.get("data").cloned(),
                        None,
                    )
                }
                _ => (None, None, Some(msg)),
            };
            let _ = self.bus.send(Event::ProcessMsg {
                process: self.event_process(pm_id),
                at: now_ms(),
                msg_type,
                data,
                raw,
            });
        }
    }

    /// A run's process is gone: decide what it means.
    pub(crate) fn on_exit(&mut self, gen: Gen, code: Option<i32>, signal: Option<i32>) {
        let Some(mut run) = self.table.runs.remove(&gen) else {
            return;
        };
        let pm_id = run.pm_id;
        let uptime_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.forget_run_connections(&mut run);
        for waiter in run.exit_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            return;
        };
        let app = w.app.clone();
        let sig_name = signal
            .and_then(|s| Signal::try_from(s).ok())
            .map_or_else(|| "null".to_owned(), |s| s.as_str().to_owned());
        tracing::info!(
            "App [{app}:{pm_id}] exited with code [{}] via signal [{sig_name}]",
            code.map_or_else(|| "null".to_owned(), |c| c.to_string())
        );

        if w.successor == Some(gen) {
            // The reload's successor died before it was ready: the old
            // worker keeps serving.
            w.successor = None;
            let reason = format!(
                "reload of [{app}:{pm_id}] failed: the new process exited (code {}, signal {sig_name}) before it was ready; the old process keeps serving",
                code.map_or_else(|| "null".to_owned(), |c| c.to_string())
            );
            tracing::error!("{reason}");
            for waiter in std::mem::take(&mut w.reload_waiters) {
                let _ = waiter.send(Err(RpcError::new(ErrorCode::ReloadFailed, reason.clone())));
            }
            return;
        }
        if w.run != Some(gen) {
            // An old run drained by a reload: its exit is only news.
            self.emit(pm_id, "exit", true);
            return;
        }
        w.run = None;
        w.exit_code = code;
        let _ = std::fs::remove_file(&w.pid_path);
        self.emit(pm_id, "exit", false);
        let w = self.table.workers.get_mut(&pm_id).expect("checked above");

        if run.stop_requested {
            if let Some(waiters) = w.restart_pending.take() {
                w.counters.restart_time += 1;
                w.counters.unstable_restarts = 0;
                w.online_waiters.extend(waiters);
                self.respawn(pm_id);
            } else if w.status != WorkerStatus::Errored {
                w.status = WorkerStatus::Stopped;
            }
        } else {
            let spec = self.table.apps[&app].spec.clone();
            let decision = if self.shutting_down {
                ExitDecision::Stop
            } else {
                decide(&spec, &mut w.counters, code, uptime_ms)
            };
            match decision {
                ExitDecision::Stop => w.status = WorkerStatus::Stopped,
                ExitDecision::Errored => {
                    w.status = WorkerStatus::Errored;
                    tracing::error!(
                        "Script {} had too many unstable restarts ({}). Stopped. \"errored\"",
                        spec.script.display(),
                        w.counters.unstable_restarts
                    );
                    self.emit(pm_id, "restart overlimit", false);
                }
                ExitDecision::Restart { delay_ms: 0 } => self.respawn(pm_id),
                ExitDecision::Restart { delay_ms } => {
                    w.status = WorkerStatus::WaitingRestart;
                    w.restart_token += 1;
                    let token = w.restart_token;
                    tracing::info!("App [{app}:{pm_id}] will restart in {delay_ms}ms");
                    self.after(delay_ms, Msg::RestartDue { pm_id, token });
                }
            }
        }
        // Callers waiting for `online` learn that it ended instead.
        if let Some(w) = self.table.workers.get_mut(&pm_id) {
            if w.run.is_none() {
                w.answer_start_waiters(&Ok(()), true);
            }
        }
        if !self.table.app_alive(&app) {
            if let Some(a) = self.table.apps.get_mut(&app) {
                a.cluster.close_all();
            }
        }
    }

    /// Start the worker's process again; callers waiting for it hear of a
    /// failure at once.
    pub(crate) fn respawn(&mut self, pm_id: u32) {
        if let Err(e) = self.start_run(pm_id, RunRole::Main) {
            tracing::error!("{e}");
            if let Some(w) = self.table.workers.get_mut(&pm_id) {
                w.answer_start_waiters(&Err(e), true);
            }
        }
    }

    pub(crate) fn on_restart_due(&mut self, pm_id: u32, token: u64) {
        let due = self.table.workers.get(&pm_id).is_some_and(|w| {
            w.restart_token == token && w.status == WorkerStatus::WaitingRestart && w.run.is_none()
        });
        if due && !self.shutting_down {
            self.respawn(pm_id);
        }
    }
}
