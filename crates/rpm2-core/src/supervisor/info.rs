//! Building pm2-shaped `ProcessInfo`s from the table (with fresh /proc
//! numbers) for `list`, `jlist`, `describe` and action results.
//!
//! pm2's `pm2_env` is the app's config as given, its environment as given
//! (`env`) and that environment once more, flattened (`pm2_env.PORT`), plus
//! pm2's bookkeeping; see pm2-behaviour and `js-tests/jlist-shape.test.js`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rpm2_proto::info::is_extra_key;
use rpm2_proto::{AppSpec, Monit, Pm2Env, ProcessInfo};
use serde_json::{Map, Value};

use super::actor::Actor;
use super::state::Worker;

/// Options pm2 consumes when it prepares an app: they do not appear in its
/// `pm2_env` (`script` becomes `pm_exec_path`, `*_file` become `pm_*_path`).
const CONSUMED_OPTIONS: &[&str] = &["script", "out_file", "error_file", "log_file", "pid_file"];

/// pm2's flags that every `pm2_env` has unless the config sets them; rpm2
/// has no git versioning (`vizion`), keymetrics link or `@pm2/io` injection
/// (`pmx`, `automation`), so these only keep the shape.
fn pm2_constants(spec: &AppSpec) -> [(&'static str, Value); 8] {
    [
        ("vizion", Value::Bool(true)),
        ("pmx", Value::Bool(true)),
        ("automation", Value::Bool(true)),
        ("treekill", Value::Bool(spec.treekill)),
        ("windowsHide", Value::Bool(true)),
        ("kill_retry_time", Value::from(100)),
        ("km_link", Value::Bool(false)),
        ("vizion_running", Value::Bool(false)),
    ]
}

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
        let env = given_env(spec, w, &self.home.root().display().to_string());
        let extra = extra_keys(spec, w);
        let default_instance_var = spec.instance_var == rpm2_proto::spec::defaults::INSTANCE_VAR;
        let lag = self.lag_of(pm_id);
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
                node_app_instance: default_instance_var.then_some(w.instance),
                restart_time: w.life.counters.restart_time,
                unstable_restarts: w.life.counters.unstable_restarts,
                created_at: w.created_at,
                pm_uptime: w.life.pm_uptime,
                exit_code: w.life.exit_code,
                pm_exec_path: spec.script.display().to_string(),
                pm_cwd: spec.cwd.display().to_string(),
                exec_interpreter: pm2_interpreter(spec),
                node_args: (!matches!(spec.raw_options.get("node_args"), Some(Value::Null)))
                    .then(|| spec.interpreter_args.clone()),
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
                event_loop_lag_ms: lag.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                restart_reason: w.life.restart_reason.clone(),
                kill_timeout: spec.kill_timeout_ms,
                listen_timeout: spec.listen_timeout_ms,
                min_uptime: spec.min_uptime_ms,
                max_restarts: spec.max_restarts,
                restart_delay: spec.restart_delay_ms,
                prev_restart_delay: w.life.counters.prev_restart_delay,
                max_memory_restart: spec.max_memory_restart,
                version: Some(spec.version.clone().unwrap_or_else(|| "N/A".to_owned())),
                node_version: node_version_of(spec),
                unique_id: w.unique_id.clone(),
                username: spec.uid.clone().unwrap_or_else(username),
                instance_var: spec.instance_var.clone(),
                axm: with_loop_latency(w.axm.clone(), lag),
                env,
                extra,
            },
        })
    }
}

/// The watchdog's lag in `axm_monitor`, where pm2's injected `@pm2/io`
/// puts its event-loop latency (`Event Loop Latency`, text with two
/// decimals) and where pm2-prometheus-exporter reads pmx's `Loop delay`
/// (text starting with the number); an app's own metric of that name wins.
fn with_loop_latency(
    mut axm: rpm2_proto::info::Axm,
    lag: Option<std::time::Duration>,
) -> rpm2_proto::info::Axm {
    let Some(lag) = lag else {
        return axm;
    };
    let ms = format!("{:.2}", lag.as_secs_f64() * 1000.0);
    let text = ms.clone();
    let monitor = &mut axm.axm_monitor;
    monitor
        .entry("Event Loop Latency")
        .or_insert_with(|| serde_json::json!({"value": text, "type": "internal/libuv/latency/p50", "unit": "ms", "historic": true}));
    monitor
        .entry("Loop delay")
        .or_insert_with(|| serde_json::json!({"value": format!("{ms}ms")}));
    axm
}

/// The interpreter as pm2 shows it (`exec_interpreter`): as the config
/// wrote it, else the program's name (`node`, `bash`), else `none`.
pub(crate) fn pm2_interpreter(spec: &AppSpec) -> String {
    if let Some(Value::String(given)) = spec.raw_options.get("exec_interpreter") {
        return given.clone();
    }
    match &spec.interpreter {
        None => "none".to_owned(),
        Some(_) if spec.node => "node".to_owned(),
        Some(p) => p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    }
}

/// `pm2_env.env`: the environment the app was given (shell + config),
/// `PM2_HOME`, the worker's `increment_var` and `unique_id`. Values keep
/// the type the config gave them (`PORT: 3000`), as pm2 keeps them.
fn given_env(spec: &AppSpec, w: &Worker, home: &str) -> Map<String, Value> {
    let mut env = Map::with_capacity(spec.env.len() + 3);
    for (k, v) in &spec.env {
        let value = if *k == spec.name {
            module_conf_value(v)
        } else {
            typed_env_value(spec, k, v)
        };
        env.insert(k.clone(), value);
    }
    env.insert("PM2_HOME".to_owned(), Value::String(home.to_owned()));
    if let Some(var) = &spec.increment_var {
        env.insert(
            var.clone(),
            Value::from(increment_of(spec, var, w.instance)),
        );
    }
    env.insert("unique_id".to_owned(), Value::String(w.unique_id.clone()));
    env
}

/// The entry named like the app is its module configuration (`rpm2 set
/// app:key value`; `{}` when none), an object as pm2 shows it for an app
/// started from the command line; so it is not flattened either.
fn module_conf_value(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(Value::Object(conf)) => Value::Object(conf),
        _ => Value::String(text.to_owned()),
    }
}

/// The worker's value of `increment_var`: the app's base plus its instance.
pub(crate) fn increment_of(spec: &AppSpec, var: &str, instance: u32) -> i64 {
    let base: i64 = spec.env.get(var).and_then(|v| v.parse().ok()).unwrap_or(0);
    base + i64::from(instance)
}

/// `value` as the config typed it: a number or boolean written in an
/// `env`/`env_<name>` block (or `port`) that the CLI turned into text.
fn typed_env_value(spec: &AppSpec, key: &str, value: &str) -> Value {
    let blocks = spec
        .raw_options
        .iter()
        .filter(|(k, _)| *k == "env" || k.starts_with("env_"))
        .filter_map(|(_, v)| v.as_object()?.get(key));
    let port = (key == "PORT")
        .then(|| spec.raw_options.get("port"))
        .flatten();
    for given in blocks.chain(port) {
        let text = match given {
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if text == value {
            return given.clone();
        }
    }
    Value::String(value.to_owned())
}

/// `Pm2Env::extra` in pm2's order: the options as written, pm2's constant
/// flags and a custom `instance_var`. The flattened `env` is added by the
/// reader (`Pm2Env::flatten_env`), so answers carry it once.
fn extra_keys(spec: &AppSpec, w: &Worker) -> Map<String, Value> {
    let free = is_extra_key;
    let mut extra: Map<String, Value> = spec
        .raw_options
        .iter()
        .filter(|(k, _)| free(k) && !CONSUMED_OPTIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in pm2_constants(spec) {
        extra.entry(k).or_insert(v);
    }
    if spec.instance_var != rpm2_proto::spec::defaults::INSTANCE_VAR && free(&spec.instance_var) {
        extra.insert(spec.instance_var.clone(), Value::from(w.instance));
    }
    extra
}

/// `node_version` of a Node app: its interpreter's `--version`, asked once
/// per interpreter in the background (`list` never waits for a process);
/// absent until the answer is in, as in pm2 until the worker reports it.
fn node_version_of(spec: &AppSpec) -> Option<String> {
    if !spec.node {
        return None;
    }
    node_version(spec.interpreter.as_deref()?)
}

/// Interpreter → its version; `None` while asking or when it did not say.
type VersionCache = Mutex<HashMap<PathBuf, Option<String>>>;

pub(crate) fn node_version(interpreter: &Path) -> Option<String> {
    static CACHE: OnceLock<VersionCache> = OnceLock::new();
    let cache = CACHE.get_or_init(VersionCache::default);
    let mut known = cache.lock().ok()?;
    if let Some(v) = known.get(interpreter) {
        return v.clone();
    }
    known.insert(interpreter.to_path_buf(), None);
    drop(known);
    let path = interpreter.to_path_buf();
    let asked = std::thread::Builder::new()
        .name("node-version".to_owned())
        .spawn(move || {
            let version = ask_version(&path);
            if let Ok(mut known) = cache.lock() {
                known.insert(path, version);
            }
        });
    if let Err(e) = asked {
        tracing::warn!("cannot ask {} for its version: {e}", interpreter.display());
    }
    None
}

/// `v20.11.1` → `20.11.1`, from `node --version`.
fn ask_version(node: &Path) -> Option<String> {
    let registering = crate::runtime::reaper::registering();
    let child = std::process::Command::new(node)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id();
    registering.own(pid);
    let out = child.wait_with_output();
    crate::runtime::reaper::release(pid);
    let out = out.ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<String> {
    let v = text.trim().trim_start_matches('v');
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    ok.then(|| v.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(raw: Value) -> AppSpec {
        let mut s = AppSpec::with_defaults("a".into(), "/srv/a.js".into(), "/srv".into());
        if let Value::Object(m) = raw {
            s.raw_options = m;
        }
        s
    }

    #[test]
    fn env_values_keep_the_type_the_config_gave() {
        let s = spec(serde_json::json!({
            "env": { "PORT": 3000, "DEBUG": true, "NAME": "3" },
            "env_production": { "RATE": 1.5 },
        }));
        assert_eq!(typed_env_value(&s, "PORT", "3000"), serde_json::json!(3000));
        assert_eq!(
            typed_env_value(&s, "DEBUG", "true"),
            serde_json::json!(true)
        );
        assert_eq!(typed_env_value(&s, "RATE", "1.5"), serde_json::json!(1.5));
        // A string stays a string; a value overridden since is text.
        assert_eq!(typed_env_value(&s, "NAME", "3"), serde_json::json!("3"));
        assert_eq!(
            typed_env_value(&s, "PORT", "4000"),
            serde_json::json!("4000")
        );
    }

    #[test]
    fn interpreter_is_named_as_pm2_names_it() {
        let mut s = spec(serde_json::json!({}));
        assert_eq!(pm2_interpreter(&s), "none");
        s.interpreter = Some("/usr/bin/node".into());
        s.node = true;
        assert_eq!(pm2_interpreter(&s), "node");
        s.node = false;
        s.interpreter = Some("/bin/bash".into());
        assert_eq!(pm2_interpreter(&s), "bash");
        let s = spec(serde_json::json!({ "exec_interpreter": "/opt/node18/bin/node" }));
        assert_eq!(pm2_interpreter(&s), "/opt/node18/bin/node");
    }

    #[test]
    fn node_version_text() {
        assert_eq!(parse_version("v20.11.1\n").as_deref(), Some("20.11.1"));
        assert_eq!(parse_version("").as_deref(), None);
        assert_eq!(parse_version("v1 2").as_deref(), None);
    }
}
