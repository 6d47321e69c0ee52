//! The actor's answers to `Call`s: each either answers at once or parks
//! its reply on the worker/run until the awaited thing happens.

use std::collections::BTreeMap;

use rpm2_proto::{AppSpec, ErrorCode, ExecMode, RpcError, WorkerStatus};

use super::actor::Actor;
use super::lifecycle::RunRole;
use super::state::{App, Worker};
use super::{not_found, now_ms, Call, Registered, Reply, ScalePlan};
use crate::worker::policy::RestartCounters;
use crate::worker::spawn::parse_signal;

impl Actor {
    pub(crate) fn on_call(&mut self, call: Call) {
        match call {
            Call::Register {
                apps,
                only_new,
                stopped,
                reply,
            } => {
                let _ = reply.send(Ok(self.register(apps, only_new, &stopped)));
            }
            Call::Resolve { targets, reply } => {
                let _ = reply.send(self.table.resolve(&targets).map_err(|t| {
                    RpcError::new(
                        ErrorCode::ProcessNotFound,
                        format!("process or namespace {t} not found"),
                    )
                }));
            }
            Call::Start {
                pm_id,
                until_ready,
                reply,
            } => self.call_start(pm_id, until_ready, reply),
            Call::Restart {
                pm_id,
                update_env,
                reply,
            } => self.call_restart(pm_id, update_env, reply),
            Call::Reload {
                pm_id,
                update_env,
                reply,
            } => self.call_reload(pm_id, update_env, reply),
            Call::Stop { pm_id, reply } => self.call_stop(pm_id, reply),
            Call::Remove { pm_id, reply } => {
                self.remove(pm_id);
                let _ = reply.send(Ok(()));
            }
            Call::Scale { name, count, reply } => {
                let _ = reply.send(self.scale(&name, &count));
            }
            Call::Info { ids, reply } => {
                let _ = reply.send(Ok(self.infos(ids.as_deref())));
            }
            Call::Signal {
                pm_id,
                signal,
                reply,
            } => {
                let _ = reply.send(self.signal(pm_id, &signal));
            }
            Call::SendData {
                pm_id,
                packet,
                reply,
            } => {
                let res = self
                    .serving_run(pm_id)
                    .and_then(|r| r.channel.as_ref())
                    .ok_or_else(|| {
                        RpcError::new(
                            ErrorCode::ProcessNotFound,
                            format!("process {pm_id} has no IPC channel (not running?)"),
                        )
                    })
                    .and_then(|ch| {
                        ch.send(packet).map_err(|_| {
                            RpcError::new(
                                ErrorCode::ProcessNotFound,
                                format!("process {pm_id} channel closed"),
                            )
                        })
                    });
                let _ = reply.send(res);
            }
            Call::Reset { pm_id, reply } => {
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    w.counters = RestartCounters::default();
                    w.created_at = now_ms();
                }
                let _ = reply.send(Ok(()));
            }
            Call::LogPaths { ids, reply } => {
                let paths = self
                    .table
                    .workers
                    .values()
                    .filter(|w| ids.as_ref().is_none_or(|ids| ids.contains(&w.pm_id)))
                    .flat_map(|w| [w.out_log.clone(), w.err_log.clone(), w.combined_log.clone()])
                    .flatten()
                    .collect();
                let _ = reply.send(Ok(paths));
            }
            Call::Specs { reply } => {
                let specs = self
                    .table
                    .apps
                    .iter()
                    .map(|(name, a)| {
                        let running = self
                            .table
                            .workers
                            .values()
                            .any(|w| &w.app == name && w.status != WorkerStatus::Stopped);
                        (a.spec.clone(), running)
                    })
                    .collect();
                let _ = reply.send(Ok(specs));
            }
            Call::ShutDown { reply } => {
                self.shutting_down = true;
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn register(&mut self, apps: Vec<AppSpec>, only_new: bool, stopped: &[String]) -> Registered {
        let mut out = Registered {
            new_ids: Vec::new(),
            existing_ids: Vec::new(),
            extra_ids: Vec::new(),
            stay_stopped: Vec::new(),
        };
        for spec in apps {
            if self.table.apps.contains_key(&spec.name) {
                if only_new {
                    continue;
                }
                let ids = self.table.workers_of(&spec.name);
                // Scale to the new instance count, then restart the rest.
                let want = spec.instances as usize;
                let name = spec.name.clone();
                let triggers = super::triggers::arm(&spec, &self.tx);
                if let Some(app) = self.table.apps.get_mut(&name) {
                    app.spec = spec;
                    app.triggers = triggers;
                }
                for _ in ids.len()..want {
                    out.new_ids.push(self.add_worker(&name));
                }
                let keep = want.max(1);
                out.extra_ids.extend(ids.iter().skip(keep));
                out.existing_ids.extend(ids.into_iter().take(keep));
                continue;
            }
            let name = spec.name.clone();
            let autostart = spec.autostart && !stopped.contains(&spec.name);
            let n = spec.instances.max(1);
            let triggers = super::triggers::arm(&spec, &self.tx);
            self.table.apps.insert(
                name.clone(),
                App {
                    spec,
                    cluster: crate::cluster::primary::ClusterApp::default(),
                    triggers,
                },
            );
            for _ in 0..n {
                let id = self.add_worker(&name);
                out.new_ids.push(id);
                if !autostart {
                    out.stay_stopped.push(id);
                }
            }
        }
        out
    }

    /// A new worker of `app`, stopped, with the next id and lowest free instance.
    fn add_worker(&mut self, app: &str) -> u32 {
        let pm_id = self.table.next_pm_id();
        let instance = self.table.free_instance(app);
        let now = now_ms();
        self.table.workers.insert(
            pm_id,
            Worker {
                pm_id,
                app: app.to_owned(),
                instance,
                status: WorkerStatus::Stopped,
                counters: RestartCounters::default(),
                created_at: now,
                pm_uptime: now,
                exit_code: None,
                unique_id: uuid::Uuid::new_v4().to_string(),
                run: None,
                successor: None,
                restart_token: 0,
                online_waiters: Vec::new(),
                ready_waiters: Vec::new(),
                reload_waiters: Vec::new(),
                restart_pending: None,
                env: BTreeMap::new(),
                out_log: None,
                err_log: None,
                combined_log: None,
                pid_path: std::path::PathBuf::new(),
            },
        );
        self.assign_log_paths(pm_id);
        pm_id
    }

    fn call_start(&mut self, pm_id: u32, until_ready: bool, reply: Reply<()>) {
        if self.shutting_down {
            let _ = reply.send(Err(super::shutting_down()));
            return;
        }
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            let _ = reply.send(Err(not_found(pm_id)));
            return;
        };
        if w.run.is_some() {
            // Already running: answer when online (now if it is).
            if w.status == WorkerStatus::Online {
                let _ = reply.send(Ok(()));
            } else {
                w.online_waiters.push(reply);
            }
            return;
        }
        w.restart_token += 1;
        if until_ready {
            w.ready_waiters.push(reply);
        } else {
            w.online_waiters.push(reply);
        }
        self.respawn(pm_id);
    }

    fn call_restart(
        &mut self,
        pm_id: u32,
        update_env: Option<BTreeMap<String, String>>,
        reply: Reply<()>,
    ) {
        self.merge_env(pm_id, update_env);
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            let _ = reply.send(Err(not_found(pm_id)));
            return;
        };
        match w.run {
            Some(gen) => {
                w.restart_pending.get_or_insert_with(Vec::new).push(reply);
                w.status = WorkerStatus::Stopping;
                self.emit(pm_id, "restart", true);
                self.terminate(gen);
            }
            None => {
                // pm2: a stopped app is just started, restart_time unchanged.
                self.call_start(pm_id, false, reply);
            }
        }
    }

    fn call_reload(
        &mut self,
        pm_id: u32,
        update_env: Option<BTreeMap<String, String>>,
        reply: Reply<()>,
    ) {
        let Some(w) = self.table.workers.get(&pm_id) else {
            let _ = reply.send(Err(not_found(pm_id)));
            return;
        };
        let cluster = self
            .table
            .apps
            .get(&w.app)
            .is_some_and(|a| a.spec.exec_mode == ExecMode::Cluster && a.spec.node);
        if !cluster || w.status != WorkerStatus::Online || w.successor.is_some() {
            // pm2: fork mode and workers not online are restarted.
            self.call_restart(pm_id, update_env, reply);
            return;
        }
        self.merge_env(pm_id, update_env);
        self.emit(pm_id, "reload", true);
        match self.start_run(pm_id, RunRole::Successor) {
            Ok(_) => {
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    w.reload_waiters.push(reply);
                }
            }
            Err(e) => {
                let _ = reply.send(Err(RpcError::new(
                    ErrorCode::ReloadFailed,
                    format!("{e}; the old process keeps serving"),
                )));
            }
        }
    }

    fn call_stop(&mut self, pm_id: u32, reply: Reply<()>) {
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            let _ = reply.send(Err(not_found(pm_id)));
            return;
        };
        // Cancel what was about to happen.
        w.restart_token += 1;
        if let Some(waiters) = w.restart_pending.take() {
            for waiter in waiters {
                let _ = waiter.send(Ok(()));
            }
        }
        let successor = w.successor.take();
        for waiter in std::mem::take(&mut w.reload_waiters) {
            let _ = waiter.send(Err(RpcError::new(
                ErrorCode::ReloadFailed,
                "stopped during reload",
            )));
        }
        let run = w.run;
        if let Some(gen) = successor {
            self.terminate(gen);
        }
        match run.and_then(|g| self.table.runs.get_mut(&g).map(|r| (g, r))) {
            Some((gen, r)) => {
                r.exit_waiters.push(reply);
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    if w.status != WorkerStatus::Errored {
                        w.status = WorkerStatus::Stopping;
                    }
                }
                self.emit(pm_id, "stop", true);
                self.terminate(gen);
            }
            None => {
                if let Some(w) = self.table.workers.get_mut(&pm_id) {
                    if w.status != WorkerStatus::Errored {
                        w.status = WorkerStatus::Stopped;
                    }
                }
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn remove(&mut self, pm_id: u32) {
        if !self.table.workers.contains_key(&pm_id) {
            return;
        }
        // While it is still in the table, so the event names its app.
        self.emit(pm_id, "delete", true);
        let Some(w) = self.table.workers.remove(&pm_id) else {
            return;
        };
        if self.table.workers_of(&w.app).is_empty() {
            self.table.apps.remove(&w.app);
        } else if !self.table.app_alive(&w.app) {
            if let Some(a) = self.table.apps.get_mut(&w.app) {
                a.cluster.close_all();
            }
        }
    }

    fn scale(&mut self, name: &str, count: &str) -> Result<ScalePlan, RpcError> {
        let ids = self.table.workers_of(name);
        if ids.is_empty() {
            return Err(RpcError::new(
                ErrorCode::ProcessNotFound,
                format!("app {name} not found"),
            ));
        }
        let current = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let bad = || {
            RpcError::new(
                ErrorCode::BadRequest,
                format!("invalid scale count {count:?}: expected N, +N or -N"),
            )
        };
        let target = if let Some(n) = count.strip_prefix('+') {
            current + n.parse::<i64>().map_err(|_| bad())?
        } else if let Some(n) = count.strip_prefix('-') {
            current - n.parse::<i64>().map_err(|_| bad())?
        } else {
            count.parse::<i64>().map_err(|_| bad())?
        };
        if target < 1 {
            return Err(RpcError::new(
                ErrorCode::BadRequest,
                format!("cannot scale {name} to {target} workers (at least 1)"),
            ));
        }
        if target == current {
            return Err(RpcError::new(
                ErrorCode::NothingToDo,
                format!("{name} already has {current} workers: nothing to do"),
            ));
        }
        let mut plan = ScalePlan {
            add: Vec::new(),
            remove: Vec::new(),
        };
        if target > current {
            for _ in current..target {
                plan.add.push(self.add_worker(name));
            }
        } else {
            let n = usize::try_from(current - target).unwrap_or(0);
            plan.remove = ids.into_iter().rev().take(n).collect();
        }
        if let Some(a) = self.table.apps.get_mut(name) {
            a.spec.instances = u32::try_from(target).unwrap_or(u32::MAX);
        }
        Ok(plan)
    }

    fn signal(&mut self, pm_id: u32, signal: &str) -> Result<(), RpcError> {
        let sig = parse_signal(signal).ok_or_else(|| {
            RpcError::new(ErrorCode::BadRequest, format!("unknown signal {signal}"))
        })?;
        let run = self.serving_run(pm_id).ok_or_else(|| not_found(pm_id))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(run.pid).unwrap_or(0)),
            sig,
        )
        .map_err(|e| {
            RpcError::new(
                ErrorCode::BadRequest,
                format!("kill({}, {sig}) failed: {e}", run.pid),
            )
        })
    }

    pub(crate) fn serving_run(&self, pm_id: u32) -> Option<&super::state::Run> {
        let gen = self.table.workers.get(&pm_id)?.run?;
        self.table.runs.get(&gen)
    }

    /// `--update-env`: merge the caller's environment over the app's.
    fn merge_env(&mut self, pm_id: u32, update_env: Option<BTreeMap<String, String>>) {
        let Some(env) = update_env else { return };
        let Some(app) = self.table.workers.get(&pm_id).map(|w| w.app.clone()) else {
            return;
        };
        if let Some(a) = self.table.apps.get_mut(&app) {
            a.spec.env.extend(env);
        }
    }
}
