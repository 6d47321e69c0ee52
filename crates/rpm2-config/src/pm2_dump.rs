//! pm2 7's saved list (`PM2_HOME/dump.pm2`) → app objects under pm2's
//! option names, which then load like any ecosystem file.
//!
//! The dump is a JSON array with one `pm2_env` per *worker* (pm2 deletes
//! `instances` and `pm_id` before writing): a cluster app of 4 workers is 4
//! entries with the same name. Options sit at the top level under the names
//! pm2 stores (`pm_exec_path`, `pm_cwd`, `pm_out_log_path`, …), next to
//! runtime state (`status`, `restart_time`, `axm_*`, …) and to the
//! environment, which pm2 keeps in `env` and also copies to the top level.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{show, ConfigError};
use crate::{LoadOptions, Loaded};

/// The apps of a pm2 dump, resolved.
#[derive(Debug, Clone, Default)]
pub struct Pm2Dump {
    pub loaded: Loaded,
    /// Apps every worker of which was stopped: pm2's resurrect registers
    /// them without starting them.
    pub stopped: Vec<String>,
}

/// Options copied as they are: pm2 stores them under the names its
/// ecosystem files use.
const COPIED: &[&str] = &[
    "name",
    "namespace",
    "args",
    "node_args",
    "exec_interpreter",
    "exec_mode",
    "instance_var",
    "increment_var",
    "merge_logs",
    "log_date_format",
    "time",
    "log_type",
    "disable_logs",
    "watch",
    "ignore_watch",
    "watch_delay",
    "watch_options",
    "min_uptime",
    "max_restarts",
    "restart_delay",
    "exp_backoff_restart_delay",
    "autorestart",
    "autostart",
    "stop_exit_codes",
    "max_memory_restart",
    "cron_restart",
    "kill_timeout",
    "shutdown_with_message",
    "treekill",
    "wait_ready",
    "listen_timeout",
    "sticky",
    "drain",
    "source_map_support",
    "disable_source_map_support",
    "uid",
    "gid",
    "vizion",
    "pmx",
    "automation",
    "trace",
    "disable_trace",
    "v8",
    "event_loop_inspector",
    "deep_monitoring",
    "io",
    "windowsHide",
    "kill_retry_time",
];

/// Keys of `pm2_env` that are pm2's own state or bookkeeping, never options
/// nor environment (besides `pm_*` and `axm_*`, all of which are).
const INTERNAL: &[&str] = &[
    "env",
    "status",
    "restart_time",
    "unstable_restarts",
    "created_at",
    "exit_code",
    "prev_restart_delay",
    "instances",
    "unique_id",
    "version",
    "node_version",
    "_pm2_version",
    "km_link",
    "vizion_running",
    "versioning",
    "username",
    "filter_env",
    "append_env_to_name",
    "port",
    "script",
    "cwd",
    "out_file",
    "error_file",
    "log_file",
    "pid_file",
];

/// Variables pm2 puts in every app's `env` for itself; rpm2's daemon sets
/// its own.
const PM2_VARS: &[&str] = &[
    "PM2_HOME",
    "PM2_USAGE",
    "PM2_INTERACTOR_PROCESSING",
    "PM2_JSON_PROCESSING",
    "PM2_PROGRAMMATIC",
    "unique_id",
    "vizion_running",
    "pm_id",
];

/// Converts a parsed `dump.pm2`. `source` names it in messages; `pm2_home`
/// is the directory it came from: logs and pid files at pm2's default place
/// there (or under the `PM2_HOME` an entry names) go to rpm2's default
/// place instead. Nothing is started when any entry is bad.
///
/// # Errors
/// Not an array, an entry that is not an object or has no script, and any
/// option error of the loader.
pub fn from_pm2_dump(
    dump: Value,
    source: &str,
    pm2_home: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Pm2Dump, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        file: source.to_owned(),
        message,
    };
    let Value::Array(entries) = dump else {
        return Err(parse_err(format!(
            "not a pm2 dump: expected an array of processes, got {}",
            show(&dump)
        )));
    };
    // name → (first entry's options, workers, workers stopped), in dump order.
    let mut apps: Vec<(String, Map<String, Value>, u32, u32)> = Vec::new();
    let mut warnings = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(parse_err(format!(
                "entry #{}: expected a process object, got {}",
                index + 1,
                show(&entry)
            )));
        };
        if entry.get("pmx_module").is_some_and(truthy) {
            warnings.push(format!(
                "entry #{}: pm2 module {} skipped (rpm2 runs no modules)",
                index + 1,
                entry.get("name").map_or_else(|| "?".to_owned(), show)
            ));
            continue;
        }
        let stopped = entry.get("status").and_then(Value::as_str) == Some("stopped");
        let app = convert(entry, index, pm2_home).map_err(parse_err)?;
        let name = app
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match apps.iter_mut().find(|(n, ..)| *n == name) {
            Some((_, first, workers, down)) => {
                // pm2 allows one name for different scripts; rpm2 does not.
                if first.get("script") != app.get("script") {
                    warnings.push(format!(
                        "entry #{}: app \"{name}\" runs {}, another of that name runs {}; \
                         both start as workers of the first",
                        index + 1,
                        app.get("script").map_or_else(String::new, show),
                        first.get("script").map_or_else(String::new, show),
                    ));
                }
                *workers += 1;
                *down += u32::from(stopped);
            }
            None => apps.push((name, app, 1, u32::from(stopped))),
        }
    }
    let mut stopped = Vec::new();
    let raw = apps
        .into_iter()
        .map(|(name, mut app, workers, down)| {
            let cluster = app.get("exec_mode").and_then(Value::as_str) == Some("cluster_mode");
            if workers > 1 || cluster {
                app.insert("instances".into(), Value::from(workers));
            }
            if down == workers {
                stopped.push(name);
            } else if down > 0 {
                warnings.push(format!(
                    "app \"{name}\": {down} of its {workers} workers were stopped; all start"
                ));
            }
            Value::Object(app)
        })
        .collect();
    // The dump carries the environment pm2 captured; this shell adds none.
    let opts = LoadOptions {
        shell_env: BTreeMap::new(),
        only: Vec::new(),
        env_name: None,
        overrides: Map::new(),
        ..opts.clone()
    };
    let mut loaded = crate::from_raw_apps(raw, &opts.cwd, source, &opts)?;
    warnings.append(&mut loaded.warnings);
    loaded.warnings = warnings;
    Ok(Pm2Dump { loaded, stopped })
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// One `pm2_env` → one app object.
fn convert(
    mut entry: Map<String, Value>,
    index: usize,
    pm2_home: Option<&Path>,
) -> Result<Map<String, Value>, String> {
    let label = match entry.get("name").and_then(Value::as_str) {
        Some(name) => format!("entry #{} (\"{name}\")", index + 1),
        None => format!("entry #{}", index + 1),
    };
    let script = ["pm_exec_path", "script"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("{label}: no script (pm_exec_path is missing)"))?
        .to_owned();
    let mut app = Map::new();
    app.insert("script".into(), Value::from(script));
    if let Some(cwd) = ["pm_cwd", "cwd"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_str))
    {
        app.insert("cwd".into(), Value::from(cwd));
    }
    for key in COPIED {
        if let Some(v) = entry.get(*key).filter(|v| !v.is_null()) {
            app.insert((*key).to_owned(), v.clone());
        }
    }

    let env_block = match entry.remove("env") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(format!(
                "{label}: env: expected an object, got {}",
                show(&other)
            ))
        }
    };
    let homes = pm2_homes(pm2_home, &env_block);
    let merge_logs = entry.get("merge_logs").and_then(Value::as_bool) == Some(true);
    for (from, to) in [
        ("pm_out_log_path", "out_file"),
        ("pm_err_log_path", "error_file"),
        ("pm_log_path", "log_file"),
    ] {
        if let Some(path) = entry.get(from).and_then(Value::as_str) {
            if let Some(path) = own_path(path, &homes, "logs", merge_logs, ".log") {
                app.insert(to.into(), Value::from(path));
            }
        }
    }
    if let Some(path) = entry.get("pm_pid_path").and_then(Value::as_str) {
        if let Some(path) = own_path(path, &homes, "pids", false, ".pid") {
            app.insert("pid_file".into(), Value::from(path));
        }
    }
    app.insert("env".into(), Value::Object(environment(&entry, env_block)));
    Ok(app)
}

/// The pm2 homes whose `logs/` and `pids/` hold pm2's default files.
fn pm2_homes(given: Option<&Path>, env: &Map<String, Value>) -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = given.map(Path::to_path_buf).into_iter().collect();
    if let Some(home) = env.get("PM2_HOME").and_then(Value::as_str) {
        homes.push(PathBuf::from(home));
    }
    homes
}

/// A path the user chose, as they wrote it (without the `-<pm_id>` pm2
/// added), or `None` for pm2's default place in its home.
fn own_path(path: &str, homes: &[PathBuf], dir: &str, merged: bool, ext: &str) -> Option<String> {
    let p = Path::new(path);
    if homes
        .iter()
        .any(|h| p.parent() == Some(h.join(dir).as_path()))
    {
        return None;
    }
    if merged || path == "/dev/null" {
        return Some(path.to_owned());
    }
    Some(strip_id(path, ext))
}

/// `app-out-3.log` → `app-out.log`: pm2 appends the worker id.
fn strip_id(path: &str, ext: &str) -> String {
    let Some(stem) = path.strip_suffix(ext) else {
        return path.to_owned();
    };
    match stem.rsplit_once('-') {
        Some((base, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{base}{ext}")
        }
        _ => path.to_owned(),
    }
}

/// `env` without pm2's own variables, over what pm2 copied to the top level
/// and is not an option or pm2's state.
fn environment(entry: &Map<String, Value>, env_block: Map<String, Value>) -> Map<String, Value> {
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let instance_var = entry
        .get("instance_var")
        .and_then(Value::as_str)
        .unwrap_or("NODE_APP_INSTANCE");
    let is_pm2_var = |key: &str| {
        PM2_VARS.contains(&key)
            || key == instance_var
            // pm2 adds the app's module configuration under its name.
            || key == name
    };
    let mut env = Map::new();
    for (key, value) in entry {
        let option_or_state = COPIED.contains(&key.as_str())
            || INTERNAL.contains(&key.as_str())
            || key.starts_with("pm_")
            || key.starts_with("axm_")
            || key.starts_with("env_")
            || crate::normalize::kind_of(key).is_some();
        if !option_or_state && !is_pm2_var(key) && value.is_string() {
            env.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in env_block {
        if !is_pm2_var(&key) && !value.is_null() {
            env.insert(key, value);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(cwd: &Path) -> LoadOptions {
        LoadOptions {
            cwd: cwd.to_path_buf(),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn workers_become_instances_and_pm2_state_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("web.js");
        std::fs::write(&script, "").unwrap();
        let home = dir.path().join("pm2");
        let entry = |id: u32| {
            json!({
                "name": "web", "exec_mode": "cluster_mode", "exec_interpreter": "node",
                "pm_exec_path": script, "pm_cwd": dir.path(), "merge_logs": false,
                "pm_out_log_path": home.join(format!("logs/web-out-{id}.log")),
                "pm_err_log_path": dir.path().join(format!("err-{id}.log")),
                "pm_pid_path": home.join(format!("pids/web-{id}.pid")),
                "NODE_APP_INSTANCE": id, "FLAT": "top", "status": "online",
                "axm_options": {}, "km_link": false, "restart_time": 3,
                "env": {"PORT": "3000", "PM2_HOME": home, "web": {}, "unique_id": "x",
                        "NODE_APP_INSTANCE": id},
            })
        };
        let dump = json!([entry(1), entry(2)]);
        let out = from_pm2_dump(dump, "dump.pm2", Some(&home), &opts(dir.path())).unwrap();
        let [app] = out.loaded.apps.as_slice() else {
            panic!("{:?}", out.loaded.apps)
        };
        assert_eq!(app.instances, 2);
        assert_eq!(app.exec_mode, rpm2_proto::ExecMode::Cluster);
        assert_eq!(app.out_file, rpm2_proto::LogTarget::Default);
        assert_eq!(
            app.error_file,
            rpm2_proto::LogTarget::Path(dir.path().join("err.log"))
        );
        assert_eq!(app.pid_file, None);
        let env: Vec<_> = app.env.iter().collect();
        assert_eq!(
            env,
            [
                (&"FLAT".to_owned(), &"top".to_owned()),
                (&"PORT".to_owned(), &"3000".to_owned())
            ]
        );
        assert!(out.stopped.is_empty());
    }

    #[test]
    fn bad_dumps_are_refused_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        let err = from_pm2_dump(json!({"a": 1}), "d.pm2", None, &o).unwrap_err();
        assert!(err.to_string().contains("expected an array"), "{err}");
        let err = from_pm2_dump(
            json!([{"name": "api", "status": "online"}]),
            "d.pm2",
            None,
            &o,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.pm2: entry #1 (\"api\"): no script (pm_exec_path is missing)"
        );
        let err = from_pm2_dump(json!([3]), "d.pm2", None, &o).unwrap_err();
        assert!(err.to_string().contains("entry #1"), "{err}");
    }

    #[test]
    fn stopped_apps_and_ids_in_paths() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("a.js");
        std::fs::write(&script, "").unwrap();
        let dump = json!([{"name": "a", "pm_exec_path": script, "status": "stopped",
                           "exec_mode": "fork_mode", "merge_logs": true, "env": {}}]);
        let out = from_pm2_dump(dump, "d", None, &opts(dir.path())).unwrap();
        assert_eq!(out.stopped, ["a"]);
        assert_eq!(out.loaded.apps[0].instances, 1);
        let other = dir.path().join("b.js");
        std::fs::write(&other, "").unwrap();
        let dump = json!([{"name": "a", "pm_exec_path": script, "env": {}},
                          {"name": "a", "pm_exec_path": other, "env": {}}]);
        let out = from_pm2_dump(dump, "d", None, &opts(dir.path())).unwrap();
        assert_eq!(out.loaded.apps[0].instances, 2);
        assert!(
            out.loaded.warnings[0].contains("entry #2"),
            "{:?}",
            out.loaded.warnings
        );
        assert_eq!(strip_id("/x/a-out-12.log", ".log"), "/x/a-out.log");
        assert_eq!(strip_id("/x/a-out.log", ".log"), "/x/a-out.log");
        assert_eq!(strip_id("/x/a-.pid", ".pid"), "/x/a-.pid");
    }
}
