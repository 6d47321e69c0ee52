//! `AppSpec`: one app of an ecosystem file after the CLI has resolved it.
//!
//! The CLI (or the addon) loads a config, applies pm2's defaults and aliases,
//! resolves paths, the interpreter, the instance count and the environment,
//! validates everything, and only then sends `AppSpec`s to the daemon. The
//! daemon never reads config files; it stores specs as they came (and writes
//! them to the dump file for `save`/`resurrect`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// pm2 7 defaults, in one place.
pub mod defaults {
    pub const KILL_TIMEOUT_MS: u64 = 1600;
    pub const LISTEN_TIMEOUT_MS: u64 = 3000;
    pub const MIN_UPTIME_MS: u64 = 1000;
    pub const MAX_RESTARTS: u32 = 16;
    pub const NAMESPACE: &str = "default";
    pub const INSTANCE_VAR: &str = "NODE_APP_INSTANCE";
    /// Exponential back-off: each delay is the previous × 1.5, capped here.
    pub const EXP_BACKOFF_CAP_MS: u64 = 15_000;
    /// Uptime after which the exponential back-off starts again from its base.
    pub const EXP_BACKOFF_RESET_MS: u64 = 30_000;
}

/// How an app's workers are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExecMode {
    /// One process per worker; the daemon is not involved in its sockets.
    #[default]
    Fork,
    /// Node workers whose `listen()` goes through the daemon, their cluster primary.
    Cluster,
}

impl ExecMode {
    /// pm2's spelling in `pm2_env.exec_mode`.
    #[must_use]
    pub fn pm2_name(self) -> &'static str {
        match self {
            Self::Fork => "fork_mode",
            Self::Cluster => "cluster_mode",
        }
    }
}

/// How a cluster app picks the worker of a connection (`sticky`).
///
/// Written as `false`, `true` (the same as `'ip'`), `'ip'` or
/// `'forwarded'`; read back the same way from dumps and `jlist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sticky {
    /// Round robin (or the shared socket).
    #[default]
    Off,
    /// A hash of the peer address.
    Ip,
    /// A hash of the client address a proxy put in the first request's
    /// `X-Forwarded-For` (first address) or `X-Real-IP`, else the peer's.
    Forwarded,
}

impl Sticky {
    /// `None` for anything but `false`, `true`, `'ip'` and `'forwarded'`.
    #[must_use]
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        match v {
            serde_json::Value::Bool(false) => Some(Self::Off),
            serde_json::Value::Bool(true) => Some(Self::Ip),
            serde_json::Value::String(s) => match s.as_str() {
                "ip" => Some(Self::Ip),
                "forwarded" => Some(Self::Forwarded),
                _ => None,
            },
            _ => None,
        }
    }

    #[must_use]
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Off => serde_json::Value::Bool(false),
            Self::Ip => "ip".into(),
            Self::Forwarded => "forwarded".into(),
        }
    }

    #[must_use]
    pub fn is_on(self) -> bool {
        self != Self::Off
    }
}

impl Serialize for Sticky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Sticky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Self::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "sticky: expected true, false, 'ip' or 'forwarded', got {v}"
            ))
        })
    }
}

/// Where one log stream of a worker goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum LogTarget {
    /// `RPM2_HOME/logs/<name>-out.log` (or `-error.log`), `-<id>` suffixed
    /// when the app has several workers and `merge_logs` is off.
    #[default]
    Default,
    /// A path given in the config (`out_file`, `error_file`, `log_file`);
    /// `-<id>` is added before the extension under the same rule.
    Path(PathBuf),
    /// `/dev/null` or `NULL`: nothing is written.
    Null,
}

/// File watching (`watch`, `ignore_watch`, `watch_delay`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WatchSpec {
    pub enabled: bool,
    /// Absolute paths to watch; empty with `enabled` means the app's cwd.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Patterns ignored (pm2 default: `node_modules` and dotfiles).
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub delay_ms: u64,
}

/// One app, fully resolved. Field names follow pm2's option names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "pm2's options are this many flags"
)]
pub struct AppSpec {
    pub name: String,
    pub namespace: String,
    /// Absolute path of the script (or of the executable when
    /// `interpreter` is `None`). pm2's `pm_exec_path`.
    pub script: PathBuf,
    pub args: Vec<String>,
    /// Absolute working directory (`pm_cwd`).
    pub cwd: PathBuf,
    /// Interpreter binary (absolute path), or `None` to exec `script` itself.
    pub interpreter: Option<PathBuf>,
    /// `interpreter_args` / `node_args`: placed before the script.
    pub interpreter_args: Vec<String>,
    /// True when the interpreter is Node: the worker gets an IPC channel.
    pub node: bool,
    pub exec_mode: ExecMode,
    /// Number of workers, already resolved from `0`, `'max'`, `-1`, ….
    pub instances: u32,
    /// The environment as resolved by the CLI: its own env at start (minus
    /// `filter_env`) + `env` + `env_<name>`. The daemon adds pm2's variables.
    pub env: BTreeMap<String, String>,
    pub instance_var: String,
    pub increment_var: Option<String>,
    pub autorestart: bool,
    pub autostart: bool,
    pub min_uptime_ms: u64,
    pub max_restarts: u32,
    pub restart_delay_ms: u64,
    pub exp_backoff_restart_delay_ms: Option<u64>,
    pub stop_exit_codes: Vec<i32>,
    pub kill_timeout_ms: u64,
    pub shutdown_with_message: bool,
    pub wait_ready: bool,
    pub listen_timeout_ms: u64,
    pub treekill: bool,
    /// pm2's `uid`/`user` and `gid`: run as that user (a name or a number)
    /// and its groups. Needs a daemon running as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Route each client to the same cluster worker (rpm2's addition).
    #[serde(default)]
    pub sticky: Sticky,
    /// Node workers get rpm2's drain preload (`--require`), so a stop or
    /// reload ends keep-alive connections cleanly; `drain: false` opts out.
    #[serde(default = "yes")]
    pub drain: bool,
    /// Node workers with the preload: replaced when their event loop has
    /// not answered the daemon's ping for this long (ms; 0: no watchdog).
    #[serde(default = "crate::health::default_unresponsive_timeout")]
    pub unresponsive_timeout_ms: u64,
    /// A worker gets connections, and counts as ready in a reload, only
    /// once this passes (instead of `listening` / `'ready'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<crate::health::Probe>,
    /// `failure_threshold` failures in a row replace the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<crate::health::Probe>,
    pub out_file: LogTarget,
    pub error_file: LogTarget,
    /// Combined out+err file, if any.
    pub log_file: Option<LogTarget>,
    pub merge_logs: bool,
    /// chrono `strftime` format prefixed to each line (from pm2's dayjs
    /// `log_date_format`, or `time: true`).
    pub log_date_format: Option<String>,
    /// `log_type: 'json'`: one JSON object per line in the files.
    pub log_json: bool,
    pub disable_logs: bool,
    pub pid_file: Option<PathBuf>,
    pub max_memory_restart: Option<u64>,
    pub cron_restart: Option<String>,
    pub watch: WatchSpec,
    /// `version` from the nearest package.json, shown by `list`.
    pub version: Option<String>,
    /// The options as written (pm2's names), kept for `describe`, `env`
    /// and the scalar copies pm2 puts in the worker's environment.
    #[serde(default)]
    pub raw_options: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

impl AppSpec {
    /// A spec with pm2's defaults for `script` run by `interpreter`; the
    /// config loader starts from this and overrides what the file says.
    #[must_use]
    pub fn with_defaults(name: String, script: PathBuf, cwd: PathBuf) -> Self {
        Self {
            name,
            namespace: defaults::NAMESPACE.to_owned(),
            script,
            args: Vec::new(),
            cwd,
            interpreter: None,
            interpreter_args: Vec::new(),
            node: false,
            exec_mode: ExecMode::Fork,
            instances: 1,
            env: BTreeMap::new(),
            instance_var: defaults::INSTANCE_VAR.to_owned(),
            increment_var: None,
            autorestart: true,
            autostart: true,
            min_uptime_ms: defaults::MIN_UPTIME_MS,
            max_restarts: defaults::MAX_RESTARTS,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: None,
            stop_exit_codes: Vec::new(),
            kill_timeout_ms: defaults::KILL_TIMEOUT_MS,
            shutdown_with_message: false,
            wait_ready: false,
            listen_timeout_ms: defaults::LISTEN_TIMEOUT_MS,
            treekill: true,
            uid: None,
            gid: None,
            sticky: Sticky::Off,
            drain: true,
            unresponsive_timeout_ms: crate::health::defaults::UNRESPONSIVE_TIMEOUT_MS,
            readiness_probe: None,
            liveness_probe: None,
            out_file: LogTarget::Default,
            error_file: LogTarget::Default,
            log_file: None,
            merge_logs: true,
            log_date_format: None,
            log_json: false,
            disable_logs: false,
            pid_file: None,
            max_memory_restart: None,
            cron_restart: None,
            watch: WatchSpec::default(),
            version: None,
            raw_options: serde_json::Map::new(),
        }
    }
}
