//! The actor's answers to `Call`s: each either answers at once or parks
//! its reply on the worker/run until the awaited thing happens.

use std::collections::BTreeMap;

use nix::sys::signal::Signal;
use rpm2_proto::{AppSpec, ErrorCode, RpcError, ScaleCount, SignalName, WorkerStatus};

use super::actor::Actor;
use super::state::{App, Waiters, Worker};
use super::worker::{Life, WorkerEvent};
use super::{not_found, now_ms, Call, Registered, ScalePlan};
use crate::worker::policy::RestartCounters;

impl Actor {
    pub(crate) fn on_call(&mut self, call: Call) {
        match call {
            Call::Register {
                apps,
                only_new,
                force,
                stopped,
                reply,
            } => {
                let _ = reply.send(Ok(self.register(apps, only_new, force, &stopped)));
            }
            Call::Resolve { targets, reply } => {
                let _ = reply.send(self.table.resolve(&targets).map_err(|t| {
                    let message = if t == rpm2_proto::Target::All {
                        "No process found".to_owned()
                    } else {
                        format!("process or namespace {t} not found")
                    };
                    RpcError::new(ErrorCode::ProcessNotFound, message)
                }));
            }
            Call::Update { ids, update, reply } => {
                self.update_specs(&ids, &update);
                let _ = reply.send(Ok(()));
            }
            Call::Start {
                pm_id,
                until_ready,
                reply,
            } => {
                if self.shutting_down {
                    let _ = reply.send(Err(super::shutting_down()));
                } else {
                    self.worker_event(pm_id, WorkerEvent::Start { until_ready }, Some(reply));
                }
            }
            Call::Restart {
                pm_id,
                update_env,
                reply,
            } => {
                self.merge_env(pm_id, update_env);
                self.worker_event(pm_id, WorkerEvent::Restart, Some(reply));
            }
            Call::Reload {
                pm_id,
                update_env,
                reply,
            } => {
                self.merge_env(pm_id, update_env);
                self.worker_event(pm_id, WorkerEvent::Reload, Some(reply));
            }
            Call::Stop { pm_id, reply } => self.worker_event(pm_id, WorkerEvent::Stop, Some(reply)),
            Call::Remove { pm_id, reply } => {
                self.remove(pm_id);
                let _ = reply.send(Ok(()));
            }
            Call::Watch { ids, change, reply } => {
                self.change_watch(&ids, change);
                let _ = reply.send(Ok(()));
            }
            Call::Scale { name, count, reply } => {
                let _ = reply.send(self.scale(&name, count));
            }
            Call::Info { ids, reply } => {
                let _ = reply.send(Ok(self.infos(ids.as_deref())));
            }
            Call::HandedOff { reply } => {
                let _ = reply.send(Ok(self.primary.handed_off()));
            }
            Call::Signal {
                pm_id,
                signal,
                reply,
            } => {
                let _ = reply.send(self.signal(pm_id, signal));
            }
            Call::SendData {
                pm_id,
                packet,
                reply,
            } => {
                let res = self
                    .serving_run(pm_id)
                    .and_then(|r| r.link.as_ref())
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
                let res = match self.table.workers.get_mut(&pm_id) {
                    Some(w) => {
                        w.life.counters = RestartCounters::default();
                        w.created_at = now_ms();
                        Ok(())
                    }
                    None => Err(not_found(pm_id)),
                };
                let _ = reply.send(res);
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
                let specs =
                    self.table
                        .apps
                        .iter()
                        .map(|(name, a)| {
                            let running = self.table.workers.values().any(|w| {
                                &w.app == name && w.life.status() != WorkerStatus::Stopped
                            });
                            (a.spec.clone(), running)
                        })
                        .collect();
                let _ = reply.send(Ok(specs));
            }
            Call::Trigger {
                target,
                action,
                params,
                reply,
            } => self.trigger(&target, action, params, reply),
            Call::ShutDown { reply } => {
                self.shutting_down = true;
                let _ = reply.send(Ok(()));
            }
            Call::Handover { step } => self.on_handover(step),
        }
    }

    fn register(
        &mut self,
        apps: Vec<AppSpec>,
        only_new: bool,
        force: bool,
        stopped: &[String],
    ) -> Registered {
        let mut out = Registered {
            new_ids: Vec::new(),
            existing_ids: Vec::new(),
            extra_ids: Vec::new(),
            stay_stopped: Vec::new(),
        };
        // How many entries of each name this call has seen so far.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        // The keys of the apps of each name (a renamed app keeps its key).
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, app) in &self.table.apps {
            by_name
                .entry(app.spec.name.clone())
                .or_default()
                .push(key.clone());
        }
        for spec in apps {
            let earlier = seen.get(&spec.name).copied().unwrap_or(0);
            *seen.entry(spec.name.clone()).or_default() += 1;
            let keys = by_name.get(&spec.name).cloned().unwrap_or_default();
            let running = keys.len();
            // A second app of a known name: `-f`, or an entry of a dump
            // that held more apps of this name than are running.
            let beside = running > 0 && (force || earlier >= running);
            if running > 0 && !beside {
                // The n-th entry of a name stands for its n-th app; only
                // the first takes a new spec.
                if only_new || earlier > 0 {
                    continue;
                }
                let name = keys[0].clone();
                let ids = self.table.workers_of(&name);
                // Scale to the new instance count, then restart the rest.
                let want = spec.instances as usize;
                let triggers = super::triggers::arm(&name, &spec, &self.tx);
                if let Some(app) = self.table.apps.get_mut(&name) {
                    app.spec = spec;
                    app.triggers = triggers;
                }
                for _ in ids.len()..want {
                    out.new_ids.push(self.add_worker(&name));
                }
                self.sync_cluster_app(&name);
                let keep = want.max(1);
                out.extra_ids.extend(ids.iter().skip(keep));
                out.existing_ids.extend(ids.into_iter().take(keep));
                continue;
            }
            let name = if self.table.apps.contains_key(&spec.name) {
                self.table.second_key(&spec.name)
            } else {
                spec.name.clone()
            };
            by_name
                .entry(spec.name.clone())
                .or_default()
                .push(name.clone());
            let autostart = spec.autostart && !stopped.contains(&spec.name);
            let n = spec.instances.max(1);
            let triggers = super::triggers::arm(&name, &spec, &self.tx);
            self.table.apps.insert(name.clone(), App { spec, triggers });
            for _ in 0..n {
                let id = self.add_worker(&name);
                out.new_ids.push(id);
                if !autostart {
                    out.stay_stopped.push(id);
                }
            }
            self.sync_cluster_app(&name);
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
                life: Life::new(now),
                created_at: now,
                unique_id: uuid::Uuid::new_v4().to_string(),
                waiters: Waiters::default(),
                env: BTreeMap::new(),
                out_log: None,
                err_log: None,
                combined_log: None,
                pid_path: std::path::PathBuf::new(),
                log_error: None,
                axm: rpm2_proto::info::Axm::default(),
            },
        );
        self.assign_log_paths(pm_id);
        pm_id
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
        if w.life.serving().is_some() {
            tracing::warn!("worker {pm_id} removed while its process runs");
        }
        if self.table.workers_of(&w.app).is_empty() {
            self.table.apps.remove(&w.app);
            self.primary.remove_app(&w.app);
        } else {
            self.sync_cluster_app(&w.app);
            if !self.table.app_alive(&w.app) {
                self.primary.close_app(&w.app);
            }
        }
    }

    fn scale(&mut self, name: &str, count: ScaleCount) -> Result<ScalePlan, RpcError> {
        let key = self.table.key_of(name).unwrap_or_default();
        let ids = self.table.workers_of(&key);
        if ids.is_empty() {
            return Err(RpcError::new(
                ErrorCode::ProcessNotFound,
                format!("app {name} not found"),
            ));
        }
        let current = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let target = count.target(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        if target < 1 {
            return Err(RpcError::new(
                ErrorCode::BadRequest,
                format!("cannot scale {name} to {target} workers (at least 1)"),
            ));
        }
        if target > i64::from(super::MAX_WORKERS_PER_APP) {
            return Err(super::ops::too_many_workers(name, target));
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
                plan.add.push(self.add_worker(&key));
            }
        } else {
            // As pm2: the oldest workers (lowest ids) go first, so a later
            // scale-up reuses their NODE_APP_INSTANCE numbers.
            let n = usize::try_from(current - target).unwrap_or(0);
            plan.remove = ids.into_iter().take(n).collect();
        }
        if let Some(a) = self.table.apps.get_mut(&key) {
            a.spec.instances = u32::try_from(target).unwrap_or(u32::MAX);
        }
        self.sync_cluster_app(&key);
        Ok(plan)
    }

    fn signal(&mut self, pm_id: u32, signal: SignalName) -> Result<(), RpcError> {
        let sig = Signal::try_from(signal.number()).map_err(|_| {
            RpcError::new(
                ErrorCode::BadRequest,
                format!("signal {} does not exist on this system", signal.as_str()),
            )
        })?;
        let pid = self.serving_run(pm_id).ok_or_else(|| not_found(pm_id))?.pid;
        let target = super::os::Target { pid, tree: None };
        self.os.signal(target, sig).map_err(|e| {
            RpcError::new(
                ErrorCode::SignalFailed,
                format!("kill({pid}, {sig}) failed: {e}"),
            )
        })
    }

    pub(crate) fn serving_run(&self, pm_id: u32) -> Option<&super::state::Run> {
        let gen = self.table.workers.get(&pm_id)?.life.serving()?;
        self.table.runs.get(&gen)
    }

    /// `restart --name x --node-args y`: pm2 merges such options into the
    /// app. A renamed app keeps its key in the table and its files.
    fn update_specs(&mut self, ids: &[u32], update: &rpm2_proto::SpecUpdate) {
        let keys: std::collections::BTreeSet<String> = ids
            .iter()
            .filter_map(|id| self.table.workers.get(id).map(|w| w.app.clone()))
            .collect();
        for key in keys {
            let Some(app) = self.table.apps.get_mut(&key) else {
                continue;
            };
            if let Some(name) = &update.name {
                app.spec.name.clone_from(name);
            }
            if let Some(args) = &update.interpreter_args {
                app.spec.interpreter_args.clone_from(args);
                // pm2 deletes node_args given as null: jlist leaves it out.
                if args.is_empty() {
                    app.spec
                        .raw_options
                        .insert("node_args".to_owned(), serde_json::Value::Null);
                } else {
                    app.spec.raw_options.remove("node_args");
                }
            }
        }
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
