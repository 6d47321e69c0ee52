//! What a worker's process gets: its environment (the app's, plus the
//! variables pm2 injects) and its log and pid file paths (pm2's names).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rpm2_proto::{ExecMode, LogTarget};

use super::actor::Actor;
use super::now_ms;
use crate::paths::file_safe_name;

impl Actor {
    /// pm2's file names: `<name>-out.log`, `-<id>` when several workers
    /// write apart (merge_logs off).
    pub(crate) fn assign_log_paths(&mut self, pm_id: u32) {
        let Some(w) = self.table.workers.get(&pm_id) else {
            return;
        };
        let Some(app) = self.table.apps.get(&w.app) else {
            return;
        };
        let spec = &app.spec;
        let suffix = (!spec.merge_logs).then_some(pm_id);
        let base = file_safe_name(&spec.name);
        let logs = self.home.logs_dir();
        let resolve = |t: &LogTarget, default: String| -> Option<PathBuf> {
            match t {
                LogTarget::Null => None,
                LogTarget::Default => Some(logs.join(with_id(&default, suffix))),
                LogTarget::Path(p) => Some(path_with_id(p, suffix)),
            }
        };
        let out = resolve(&spec.out_file, format!("{base}-out.log"));
        let err = resolve(&spec.error_file, format!("{base}-error.log"));
        let combined = spec
            .log_file
            .as_ref()
            .and_then(|t| resolve(t, format!("{base}.log")));
        let pid_path = spec.pid_file.as_ref().map_or_else(
            || self.home.pids_dir().join(format!("{base}-{pm_id}.pid")),
            |p| path_with_id(p, Some(pm_id)),
        );
        if let Some(w) = self.table.workers.get_mut(&pm_id) {
            w.out_log = out;
            w.err_log = err;
            w.combined_log = combined;
            w.pid_path = pid_path;
        }
    }

    /// The environment a worker process sees: the app's env, then the
    /// variables pm2 injects (pm2-behaviour §3.1).
    pub(crate) fn worker_env(&self, pm_id: u32, instance: u32) -> BTreeMap<String, String> {
        let w = &self.table.workers[&pm_id];
        let spec = &self.table.apps[&w.app].spec;
        if let (true, Some(node)) = (spec.node, &spec.interpreter) {
            // Asked now, in the background, so `list` has it soon.
            super::info::node_version(node);
        }
        let mut env = BTreeMap::new();
        // Scalar options first, so the app's own env and pm2's names win.
        for (k, v) in &spec.raw_options {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            if !k.starts_with("env") {
                env.insert(k.clone(), text);
            }
        }
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "/dev/null".to_owned(), |p| p.display().to_string())
        };
        let home = self.home.root().display().to_string();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("pm_id", pm_id.to_string());
        set("name", spec.name.clone());
        set("namespace", spec.namespace.clone());
        set(&spec.instance_var, instance.to_string());
        set("instances", spec.instances.to_string());
        set("exec_mode", spec.exec_mode.pm2_name().to_owned());
        set("exec_interpreter", super::info::pm2_interpreter(spec));
        set("unique_id", w.unique_id.clone());
        set("pm_exec_path", spec.script.display().to_string());
        set("pm_cwd", spec.cwd.display().to_string());
        set("pm_out_log_path", path(&w.out_log));
        set("pm_err_log_path", path(&w.err_log));
        set("pm_pid_path", w.pid_path.display().to_string());
        set("status", "launching".to_owned());
        set("restart_time", w.life.counters.restart_time.to_string());
        set(
            "unstable_restarts",
            w.life.counters.unstable_restarts.to_string(),
        );
        set("created_at", w.created_at.to_string());
        set("pm_uptime", now_ms().to_string());
        set("autorestart", spec.autorestart.to_string());
        set("merge_logs", spec.merge_logs.to_string());
        set("instance_var", spec.instance_var.clone());
        set("PM2_HOME", home.clone());
        set("RPM2_HOME", home);
        if let Some(path) = &w.combined_log {
            set("pm_log_path", path.display().to_string());
        }
        if let Some(var) = &spec.increment_var {
            set(
                var,
                super::info::increment_of(spec, var, instance).to_string(),
            );
        }
        if spec.exec_mode == ExecMode::Cluster && !spec.interpreter_args.is_empty() {
            set("node_args", spec.interpreter_args.join(" "));
        }
        env
    }
}

/// `name-out.log` → `name-out-3.log` when `id` is given.
fn with_id(file: &str, id: Option<u32>) -> String {
    match id {
        None => file.to_owned(),
        Some(id) => match file.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}-{id}.{ext}"),
            None => format!("{file}-{id}"),
        },
    }
}

fn path_with_id(path: &std::path::Path, id: Option<u32>) -> PathBuf {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return path.to_path_buf();
    };
    path.with_file_name(with_id(&name, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_get_the_id_before_the_extension() {
        assert_eq!(with_id("app-out.log", Some(2)), "app-out-2.log");
        assert_eq!(with_id("app-out.log", None), "app-out.log");
        assert_eq!(
            path_with_id(std::path::Path::new("/x/y.pid"), Some(0)),
            PathBuf::from("/x/y-0.pid")
        );
    }
}
