//! `ProcessInfo`: one worker as `jlist` shows it, in pm2's JSON shape.
//!
//! The daemon builds these; the CLI prints them (`list`, `jlist`,
//! `prettylist`, `describe`) and the addon hands them to JS unchanged, so
//! pm2 scripts that read `pm2_env.status` or `monit.memory` keep working.

use serde::{Deserialize, Serialize};

/// pm2's status strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkerStatus {
    #[serde(rename = "launching")]
    Launching,
    #[serde(rename = "online")]
    Online,
    #[serde(rename = "stopping")]
    Stopping,
    #[serde(rename = "stopped")]
    Stopped,
    #[serde(rename = "errored")]
    Errored,
    #[serde(rename = "waiting restart")]
    WaitingRestart,
}

impl WorkerStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Online => "online",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Errored => "errored",
            Self::WaitingRestart => "waiting restart",
        }
    }
}

impl std::fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CPU and memory of a running worker, read from /proc.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Monit {
    /// Resident set size in bytes.
    pub memory: u64,
    /// Percent of one core since the previous sample, one decimal.
    pub cpu: f64,
}

/// One `jlist` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// 0 when the worker has no process.
    pub pid: u32,
    pub name: String,
    pub pm_id: u32,
    pub monit: Monit,
    /// Sent without the flattened environment (it would double the size
    /// of every answer); put back on reading, so every reader sees pm2's shape.
    #[serde(deserialize_with = "pm2_env_flattened")]
    pub pm2_env: Pm2Env,
}

fn pm2_env_flattened<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Pm2Env, D::Error> {
    let mut env = Pm2Env::deserialize(d)?;
    env.flatten_env();
    Ok(env)
}

/// `pm2_env` keys that are typed fields of [`Pm2Env`]: an option or an env
/// variable of the same name is not put in `extra` (it would make a
/// duplicate JSON key).
pub const PM2_ENV_TYPED_KEYS: &[&str] = &[
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
    "event_loop_lag_ms",
    "restart_reason",
    "log_error",
    "kill_timeout",
    "listen_timeout",
    "min_uptime",
    "max_restarts",
    "restart_delay",
    "prev_restart_delay",
    "max_memory_restart",
    "version",
    "node_version",
    "unique_id",
    "username",
    "instance_var",
    "axm_monitor",
    "axm_actions",
    "axm_options",
    "axm_dynamic",
    "env",
];

/// Whether `key` may go in [`Pm2Env::extra`].
#[must_use]
pub fn is_extra_key(key: &str) -> bool {
    !PM2_ENV_TYPED_KEYS.contains(&key) && !key.starts_with("axm_")
}

/// pm2's `pm2_env`: the fields rpm2 itself reads are typed; the rest of
/// pm2's shape (options as written, the app's environment flattened, pm2's
/// constant flags) is in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(clippy::struct_excessive_bools, reason = "pm2's shape")]
pub struct Pm2Env {
    pub name: String,
    pub namespace: String,
    pub pm_id: u32,
    pub status: WorkerStatus,
    /// `fork_mode` or `cluster_mode`.
    pub exec_mode: String,
    pub instances: u32,
    /// The instance number, when `instance_var` is pm2's default; under
    /// another name it is in `extra` (pm2 keys it by `instance_var`).
    #[serde(
        rename = "NODE_APP_INSTANCE",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_app_instance: Option<u32>,
    pub restart_time: u32,
    pub unstable_restarts: u32,
    /// ms since the epoch: when this worker was created (or reset).
    pub created_at: u64,
    /// ms since the epoch: when its current process started.
    pub pm_uptime: u64,
    /// Set once a process of the worker has exited (absent before, as in pm2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub pm_exec_path: String,
    pub pm_cwd: String,
    /// The interpreter as pm2 names it (`node`, `bash`, a path given in
    /// the config), or `none`.
    pub exec_interpreter: String,
    /// Absent once `--node-args null` cleared them (pm2 deletes the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_args: Option<Vec<String>>,
    pub args: Vec<String>,
    pub pm_out_log_path: String,
    pub pm_err_log_path: String,
    /// Only with `log_file`, as in pm2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pm_log_path: Option<String>,
    pub pm_pid_path: String,
    pub merge_logs: bool,
    pub watch: bool,
    pub autorestart: bool,
    pub autostart: bool,
    pub wait_ready: bool,
    /// `false`, `'ip'` or `'forwarded'`.
    #[serde(default)]
    pub sticky: crate::spec::Sticky,
    /// The drain preload is injected (Node workers, unless `drain: false`).
    #[serde(default)]
    pub drain: bool,
    /// HTTP requests in flight in the worker's processes, as their drain
    /// preload last reported (at most every 500 ms); absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight_requests: Option<u32>,
    /// The event-loop lag of the worker's serving process: the time its
    /// preload took to answer the daemon's last ping (or, while a ping is
    /// unanswered, the time since it was sent); absent without the watchdog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_loop_lag_ms: Option<u64>,
    /// Why rpm2 last replaced the worker on its own (watchdog, liveness probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_reason: Option<String>,
    /// A log file of the worker's last start could not be opened: its
    /// output to that file is lost until it starts again (rpm2's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    pub kill_timeout: u64,
    pub listen_timeout: u64,
    pub min_uptime: u64,
    pub max_restarts: u32,
    pub restart_delay: u64,
    pub prev_restart_delay: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_restart: Option<u64>,
    /// `version` of the nearest package.json, `N/A` without one (pm2).
    pub version: Option<String>,
    /// `process.versions.node` of a Node worker's interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_version: Option<String>,
    pub unique_id: String,
    pub username: String,
    pub instance_var: String,
    /// What the app reported through `@pm2/io` (pm2's `axm:*` messages):
    /// custom metrics, actions and options; empty until it reports.
    #[serde(flatten)]
    pub axm: Axm,
    /// The app's environment as it was given (the shell's at start, the
    /// config's `env`, `PM2_HOME`, `unique_id`), with the config's JSON
    /// types; pm2's own variables are not in it (the worker gets those too).
    pub env: serde_json::Map<String, serde_json::Value>,
    /// Everything else pm2 shows, in its order: the options as written
    /// (pm2's names), pm2's constant flags (`vizion`, `treekill`, …) and
    /// `env` flattened (`pm2_env.PORT`, see [`Pm2Env::flatten_env`]).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Pm2Env {
    /// pm2's `pm2_env.PORT`: the app's environment copied into `extra`,
    /// where it wins over an option of the same name, as in pm2; objects,
    /// typed keys and the instance number's key are left alone.
    pub fn flatten_env(&mut self) {
        for (k, v) in &self.env {
            if is_extra_key(k) && *k != self.instance_var && !v.is_object() {
                self.extra.insert(k.clone(), v.clone());
            }
        }
    }

    /// An environment variable of the app as text (`NODE_ENV`, …).
    #[must_use]
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env.get(key).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// pm2's `axm_*` objects, filled from the app's `@pm2/io` messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Axm {
    /// Metric name to `{value, unit?, type?, historic?, …}`.
    #[serde(default)]
    pub axm_monitor: serde_json::Map<String, serde_json::Value>,
    /// Registered actions: `{action_name, action_type?, arity?, opts?}`.
    #[serde(default)]
    pub axm_actions: Vec<serde_json::Value>,
    /// Options the app sent with `axm:option:configuration`.
    #[serde(default)]
    pub axm_options: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub axm_dynamic: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Sticky;
    use serde_json::{json, Map, Value};

    fn every_field() -> Pm2Env {
        Pm2Env {
            name: "a".into(),
            namespace: "default".into(),
            pm_id: 0,
            status: WorkerStatus::Online,
            exec_mode: "fork_mode".into(),
            instances: 1,
            node_app_instance: Some(0),
            restart_time: 0,
            unstable_restarts: 0,
            created_at: 1,
            pm_uptime: 1,
            exit_code: Some(0),
            pm_exec_path: "/a.js".into(),
            pm_cwd: "/".into(),
            exec_interpreter: "node".into(),
            node_args: Some(vec![]),
            args: vec![],
            pm_out_log_path: "/o".into(),
            pm_err_log_path: "/e".into(),
            pm_log_path: Some("/l".into()),
            pm_pid_path: "/p".into(),
            merge_logs: true,
            watch: false,
            autorestart: true,
            autostart: true,
            wait_ready: false,
            sticky: Sticky::Off,
            drain: true,
            inflight_requests: Some(0),
            event_loop_lag_ms: Some(1),
            restart_reason: Some(String::new()),
            log_error: Some(String::new()),
            kill_timeout: 1,
            listen_timeout: 1,
            min_uptime: 1,
            max_restarts: 1,
            restart_delay: 0,
            prev_restart_delay: 0,
            max_memory_restart: Some(1),
            version: Some("N/A".into()),
            node_version: Some("20.0.0".into()),
            unique_id: "u".into(),
            username: "u".into(),
            instance_var: "NODE_APP_INSTANCE".into(),
            axm: Axm::default(),
            env: Map::new(),
            extra: Map::new(),
        }
    }

    /// The typed keys list must name every typed key, or an option of
    /// that name would be written twice.
    #[test]
    fn typed_keys_are_the_typed_fields() {
        let Ok(Value::Object(v)) = serde_json::to_value(every_field()) else {
            panic!("Pm2Env is an object");
        };
        let mut typed: Vec<&str> = v.keys().map(String::as_str).collect();
        let mut listed = PM2_ENV_TYPED_KEYS.to_vec();
        typed.sort_unstable();
        listed.sort_unstable();
        assert_eq!(typed, listed);
    }

    fn read(env: &Pm2Env) -> Value {
        let info = ProcessInfo {
            pid: 1,
            name: "a".into(),
            pm_id: 0,
            monit: Monit::default(),
            pm2_env: env.clone(),
        };
        let text = serde_json::to_string(&info).unwrap_or_default();
        let back: ProcessInfo = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(back.pm2_env).unwrap_or_default()
    }

    #[test]
    fn readers_get_the_environment_flattened_once() {
        let mut env = every_field();
        env.env = json!({"PORT": 3000, "status": "x", "NODE_APP_INSTANCE": "9",
                         "nested": {"a": 1}, "axm_monitor": "x", "cron_restart": "env"})
        .as_object()
        .cloned()
        .unwrap_or_default();
        env.extra.insert("cron_restart".into(), json!("0 * * * *"));
        let once = read(&env);
        assert_eq!(once["PORT"], 3000);
        assert_eq!(once["env"]["PORT"], 3000);
        // Typed keys keep their value; objects are not flattened.
        assert_eq!(once["status"], "online");
        assert_eq!(once["NODE_APP_INSTANCE"], 0);
        assert_eq!(once.get("nested"), None);
        assert_eq!(once["axm_monitor"], json!({}));
        // The env wins over an option, as pm2's extend does.
        assert_eq!(once["cron_restart"], "env");
        // Reading pm2-shaped JSON again changes nothing.
        let again: Pm2Env = serde_json::from_value(once.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&again), once);
    }
}
