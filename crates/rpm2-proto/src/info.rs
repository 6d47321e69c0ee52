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
    pub pm2_env: Pm2Env,
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
    pub node_args: Vec<String>,
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
    /// `env` flattened (`pm2_env.PORT`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Pm2Env {
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
