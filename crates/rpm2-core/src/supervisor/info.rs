//! Building pm2-shaped `ProcessInfo`s from the table (with fresh /proc
//! numbers) for `list`, `jlist`, `describe` and action results.

use rpm2_proto::{Monit, Pm2Env, ProcessInfo};

use super::actor::Actor;

/// `pm2_env` keys we fill ourselves; an option of the same name is not
/// copied again (it would make a duplicate JSON key).
const OWN_KEYS: &[&str] = &[
    "name",
    "namespace",
    "pm_id",
    "status",
    "exec_mode",
    "instances",
    "NODE_APP_INSTANCE",
    "restart_time",
    "unstable_restarts",
    "created_at",
    "pm_uptime",
    "exit_code",
    "pm_exec_path",
    "pm_cwd",
    "exec_interpreter",
    "node_args",
    "args",
    "pm_out_log_path",
    "pm_err_log_path",
    "pm_log_path",
    "pm_pid_path",
    "merge_logs",
    "watch",
    "autorestart",
    "autostart",
    "wait_ready",
    "sticky",
    "drain",
    "inflight_requests",
    "kill_timeout",
    "listen_timeout",
    "min_uptime",
    "max_restarts",
    "restart_delay",
    "prev_restart_delay",
    "max_memory_restart",
    "version",
    "unique_id",
    "username",
    "instance_var",
    "env",
];

impl Actor {
    pub(crate) fn infos(&mut self, ids: Option<&[u32]>) -> Vec<ProcessInfo> {
        let ids: Vec<u32> = match ids {
            Some(ids) => ids.to_vec(),
            None => self.table.workers.keys().copied().collect(),
        };
        let live: Vec<u32> = self.table.runs.values().map(|r| r.pid).collect();
        self.cpu.retain(&live);
        ids.into_iter().filter_map(|id| self.info(id)).collect()
    }

    /// Requests in flight in a worker's runs (serving and draining), from
    /// the reports of their preloads; `None` when none has reported.
    fn inflight_of(&self, pm_id: u32) -> Option<u32> {
        self.table
            .runs
            .values()
            .filter(|r| r.pm_id == pm_id)
            .filter_map(|r| r.inflight)
            .reduce(u32::saturating_add)
    }

    fn info(&mut self, pm_id: u32) -> Option<ProcessInfo> {
        let w = self.table.workers.get(&pm_id)?;
        let spec = &self.table.apps.get(&w.app)?.spec;
        let pid = w
            .life
            .serving()
            .and_then(|g| self.table.runs.get(&g))
            .map_or(0, |r| r.pid);
        let (memory, cpu) = if pid == 0 {
            (0, 0.0)
        } else {
            self.cpu.sample(pid)
        };
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or_else(|| "/dev/null".to_owned(), |p| p.display().to_string())
        };
        let options = spec
            .raw_options
            .iter()
            .filter(|(k, _)| !OWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(ProcessInfo {
            pid,
            name: spec.name.clone(),
            pm_id,
            monit: Monit { memory, cpu },
            pm2_env: Pm2Env {
                name: spec.name.clone(),
                namespace: spec.namespace.clone(),
                pm_id,
                status: w.life.status(),
                exec_mode: spec.exec_mode.pm2_name().to_owned(),
                instances: spec.instances,
                node_app_instance: w.instance,
                restart_time: w.life.counters.restart_time,
                unstable_restarts: w.life.counters.unstable_restarts,
                created_at: w.created_at,
                pm_uptime: w.life.pm_uptime,
                exit_code: w.life.exit_code,
                pm_exec_path: spec.script.display().to_string(),
                pm_cwd: spec.cwd.display().to_string(),
                exec_interpreter: spec
                    .interpreter
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
                node_args: spec.interpreter_args.clone(),
                args: spec.args.clone(),
                pm_out_log_path: path(&w.out_log),
                pm_err_log_path: path(&w.err_log),
                pm_log_path: w.combined_log.as_ref().map(|p| p.display().to_string()),
                pm_pid_path: w.pid_path.display().to_string(),
                merge_logs: spec.merge_logs,
                watch: spec.watch.enabled,
                autorestart: spec.autorestart,
                autostart: spec.autostart,
                wait_ready: spec.wait_ready,
                sticky: spec.sticky,
                drain: spec.drain && spec.node && spec.interpreter.is_some(),
                log_error: w.log_error.clone(),
                inflight_requests: self.inflight_of(pm_id),
                kill_timeout: spec.kill_timeout_ms,
                listen_timeout: spec.listen_timeout_ms,
                min_uptime: spec.min_uptime_ms,
                max_restarts: spec.max_restarts,
                restart_delay: spec.restart_delay_ms,
                prev_restart_delay: w.life.counters.prev_restart_delay,
                max_memory_restart: spec.max_memory_restart,
                version: spec.version.clone(),
                unique_id: w.unique_id.clone(),
                username: spec.uid.clone().unwrap_or_else(username),
                instance_var: spec.instance_var.clone(),
                axm: w.axm.clone(),
                env: w.env.clone(),
                options,
            },
        })
    }
}

/// The daemon's user name (workers run as the daemon's user), looked up
/// once: `list` shows it on every row.
fn username() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(lookup_username).clone()
}

fn lookup_username() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or_else(|| "unknown".to_owned(), |u| u.name)
        })
}
