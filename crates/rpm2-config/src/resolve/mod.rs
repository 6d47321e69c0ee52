//! One normalised app object → one `AppSpec`: paths, interpreter, exec
//! mode, instance count, logs, watch and environment, with every value
//! checked so that a bad option stops the load before anything starts.

use std::path::Path;

use rpm2_proto::{AppSpec, ExecMode, LogTarget, WatchSpec};
use serde_json::{Map, Value};

use crate::dayjs::dayjs_to_strftime;
use crate::env;
use crate::error::{show, ConfigError};
use crate::normalize::{check_simple_types, display_name};
use crate::paths::{find_program, package_version, path_var, resolve_in, which};
use crate::units::{non_negative_ms, parse_duration_ms, parse_size_bytes, shell_split};
use crate::LoadOptions;

/// Where the apps come from, shared by all apps of one load.
pub(crate) struct Ctx<'a> {
    /// Config file as given, or the script, for messages.
    pub origin: &'a str,
    /// Relative `cwd` (and `script` when no `cwd`) resolve against this.
    pub base_dir: &'a Path,
    pub opts: &'a LoadOptions,
    /// The file's top-level `deploy` object: `deploy.<env>.env` feeds env.
    pub deploy: Option<&'a Map<String, Value>>,
}

/// Typed, already type-checked access to one app's options.
struct App<'a> {
    map: &'a Map<String, Value>,
    origin: &'a str,
    name: &'a str,
}

impl<'a> App<'a> {
    fn err(&self, option: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::InvalidOption {
            origin: self.origin.to_owned(),
            app: self.name.to_owned(),
            option: option.to_owned(),
            message: message.into(),
        }
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).and_then(Value::as_str)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.map.get(key).and_then(Value::as_bool)
    }

    /// A non-negative number of milliseconds (or of anything countable).
    fn ms(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => non_negative_ms(v.as_f64()).map(Some).ok_or_else(|| {
                self.err(
                    key,
                    format!("expected a non-negative number, got {}", show(v)),
                )
            }),
        }
    }

    /// `args` / `node_args`: a shell-like string or an array of words.
    fn words(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => shell_split(s).map_err(|e| self.err(key, e)),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
                    other => Err(self.err(
                        key,
                        format!(
                            "expected an array of strings, got an element {}",
                            show(other)
                        ),
                    )),
                })
                .collect(),
            Some(other) => Err(self.err(
                key,
                format!("expected a string or an array, got {}", show(other)),
            )),
        }
    }

    /// A string or an array of strings (`watch` paths, `ignore_watch`).
    fn string_list(&self, key: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
        match value {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or_else(|| {
                        self.err(
                            key,
                            format!("expected an array of strings, got an element {}", show(i)),
                        )
                    })
                })
                .collect(),
            other => Err(self.err(
                key,
                format!(
                    "expected a string or an array of strings, got {}",
                    show(other)
                ),
            )),
        }
    }
}

/// The interpreter pm2 picks by extension (v7: `.ts` runs with bun).
fn interpreter_for(script: &Path) -> Option<&'static [&'static str]> {
    let ext = script.extension()?.to_str()?;
    Some(match ext {
        "js" | "cjs" | "mjs" => &["node", "nodejs"],
        "ts" | "tsx" | "mts" | "cts" => &["bun"],
        "sh" => &["bash", "sh"],
        "py" => &["python3", "python"],
        "rb" => &["ruby"],
        "php" => &["php"],
        "pl" => &["perl"],
        "coffee" => &["coffee"],
        "ls" => &["lsc"],
        _ => return None,
    })
}

fn is_node(interpreter: Option<&Path>) -> bool {
    interpreter
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .is_some_and(|n| matches!(n, "node" | "nodejs" | "bun" | "node.exe"))
}

/// `instances` → (count, whether pm2 would switch to cluster, given at all).
fn instances(app: &App<'_>) -> Result<(u32, bool, bool), ConfigError> {
    let Some(value) = app.map.get("instances") else {
        return Ok((1, false, false));
    };
    let bad = || {
        app.err(
            "instances",
            format!("expected a number or \"max\", got {}", show(value)),
        )
    };
    let n: i64 = match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => n.as_f64().filter(|f| f.fract() == 0.0).ok_or_else(bad)? as i64,
        },
        Value::String(s) if s.trim() == "max" => 0,
        Value::String(s) => s.trim().parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    let cpus = i64::from(cpu_count());
    let count = match n {
        0 => cpus,
        n if n < 0 => (cpus + n).max(1),
        n => n,
    };
    let count = u32::try_from(count).map_err(|_| bad())?;
    // pm2 switches to cluster for `-i N`, `0`/`max` and `-1`, not other negatives.
    Ok((count, n >= -1, true))
}

/// CPUs available to this process, as pm2's `os.cpus().length`.
pub(crate) fn cpu_count() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

fn log_target(cwd: &Path, path: &str, ctx: &Ctx<'_>) -> LogTarget {
    if path == "/dev/null" || path == "NULL" {
        LogTarget::Null
    } else {
        LogTarget::Path(resolve_in(cwd, path, &ctx.opts.shell_env))
    }
}

/// `cron_restart`: `0`/`"0"`/`""` disable it; otherwise a 5–7 field cron
/// expression (croner allows seconds and years) or an `@` nickname.
fn cron(app: &App<'_>) -> Result<Option<String>, ConfigError> {
    let Some(value) = app.map.get("cron_restart") else {
        return Ok(None);
    };
    let text = match value {
        Value::Number(n) if n.as_f64() == Some(0.0) => return Ok(None),
        Value::String(s) => s.trim(),
        other => {
            return Err(app.err(
                "cron_restart",
                format!("expected a cron pattern string, got {}", show(other)),
            ))
        }
    };
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    let fields = text.split_whitespace().count();
    if !(text.starts_with('@') || (5..=7).contains(&fields)) {
        return Err(app.err(
            "cron_restart",
            format!("invalid cron pattern {text:?} (expected 5 or 6 fields)"),
        ));
    }
    Ok(Some(text.to_owned()))
}

fn stop_exit_codes(app: &App<'_>) -> Result<Vec<i32>, ConfigError> {
    let Some(value) = app.map.get("stop_exit_codes") else {
        return Ok(Vec::new());
    };
    let one = |v: &Value| -> Result<i32, ConfigError> {
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        n.and_then(|n| i32::try_from(n).ok()).ok_or_else(|| {
            app.err(
                "stop_exit_codes",
                format!(
                    "expected an exit code or an array of exit codes, got {}",
                    show(v)
                ),
            )
        })
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn watch(app: &App<'_>, cwd: &Path, ctx: &Ctx<'_>) -> Result<WatchSpec, ConfigError> {
    let paths = match app.map.get("watch") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(vec![cwd.to_path_buf()]),
        Some(v) => {
            let list = app.string_list("watch", v)?;
            (!list.is_empty()).then(|| {
                list.iter()
                    .map(|p| resolve_in(cwd, p, &ctx.opts.shell_env))
                    .collect()
            })
        }
    };
    let ignore = match app.map.get("ignore_watch") {
        // pm2's chokidar default: dotfiles and node_modules.
        None => vec!["node_modules".to_owned(), ".*".to_owned()],
        Some(v) => app.string_list("ignore_watch", v)?,
    };
    Ok(WatchSpec {
        enabled: paths.is_some(),
        paths: paths.unwrap_or_default(),
        ignore,
        delay_ms: app.ms("watch_delay")?.unwrap_or(0),
    })
}

fn environment(
    app: &App<'_>,
    ctx: &Ctx<'_>,
) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let mut out = env::filter_shell_env(&ctx.opts.shell_env, app.map.get("filter_env"))
        .map_err(|e| app.err("filter_env", e))?;
    let env_name = ctx.opts.env_name.as_deref();
    if let Some(deploy_env) = env_name
        .and_then(|n| ctx.deploy?.get(n)?.get("env"))
        .and_then(Value::as_object)
    {
        env::merge_into(&mut out, deploy_env);
    }
    // Every env block is checked, selected or not, so a typo fails early.
    let mut selected = None;
    for (key, value) in app.map {
        if key == "env" || key.starts_with("env_") {
            let block = env::env_object(value).map_err(|e| app.err(key, e))?;
            if key == "env" {
                env::merge_into(&mut out, &block);
            } else if Some(&key["env_".len()..]) == env_name {
                selected = Some(block);
            }
        }
    }
    if let Some(block) = selected {
        env::merge_into(&mut out, &block);
    }
    if let Some(port) = app.map.get("port") {
        out.insert("PORT".to_owned(), env::env_value(port));
    }
    Ok(out)
}

/// Resolves one app. `index` only names apps that have neither a name nor
/// a script in messages.
pub(crate) fn resolve_app(
    ctx: &Ctx<'_>,
    mut map: Map<String, Value>,
    index: usize,
) -> Result<AppSpec, ConfigError> {
    let display = display_name(&map, index);
    check_simple_types(&mut map, ctx.origin, &display)?;
    let app = App {
        map: &map,
        origin: ctx.origin,
        name: &display,
    };
    let shell_env = &ctx.opts.shell_env;

    let cwd = match app.str("cwd") {
        Some(dir) => resolve_in(ctx.base_dir, dir, shell_env),
        None => ctx.base_dir.to_path_buf(),
    };
    let script_raw = app
        .str("script")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| app.err("script", "required: the path of the script to run"))?;
    let mut args = Vec::new();
    let candidate = resolve_in(&cwd, script_raw, shell_env);
    let search = path_var(shell_env);
    let (script, default_name, shell_command) = if candidate.is_file() {
        (candidate, stem(script_raw), false)
    } else if let Some(found) = which(script_raw, search.as_ref()) {
        (found, stem(script_raw), false)
    } else if script_raw.contains(char::is_whitespace) {
        // pm2: `pm2 start "python x.py"` runs `bash -c "<cmd>"`, named after the command.
        let shell = which("bash", search.as_ref()).or_else(|| which("sh", search.as_ref()));
        let shell = shell.ok_or_else(|| ConfigError::InterpreterNotFound {
            origin: ctx.origin.to_owned(),
            app: display.clone(),
            interpreter: "bash".to_owned(),
        })?;
        args.extend(["-c".to_owned(), script_raw.to_owned()]);
        (shell, script_raw.to_owned(), true)
    } else {
        return Err(ConfigError::ScriptNotFound {
            origin: ctx.origin.to_owned(),
            app: display.clone(),
            script: candidate.display().to_string(),
        });
    };

    let mut name = app.str("name").map_or(default_name, str::to_owned);
    if let (Some(true), Some(env_name)) = (app.bool("append_env_to_name"), &ctx.opts.env_name) {
        name = format!("{name}-{env_name}");
    }

    let not_found = |interpreter: &str| ConfigError::InterpreterNotFound {
        origin: ctx.origin.to_owned(),
        app: display.clone(),
        interpreter: interpreter.to_owned(),
    };
    let interpreter = match app.str("exec_interpreter").map(str::trim) {
        Some("none") => None,
        Some(wanted) => {
            Some(find_program(wanted, &cwd, shell_env).ok_or_else(|| not_found(wanted))?)
        }
        None if shell_command => None,
        None => match interpreter_for(&script) {
            Some(names) => Some(
                names
                    .iter()
                    .find_map(|n| find_program(n, &cwd, shell_env))
                    .ok_or_else(|| not_found(names[0]))?,
            ),
            None => None,
        },
    };
    let node = is_node(interpreter.as_deref());

    let (instances, selects_cluster, instances_given) = instances(&app)?;
    let exec_mode = match app.map.get("exec_mode") {
        _ if app.bool("execute_command") == Some(true) => ExecMode::Fork,
        None => {
            if selects_cluster && node {
                ExecMode::Cluster
            } else {
                ExecMode::Fork
            }
        }
        Some(Value::String(s)) if matches!(s.as_str(), "cluster" | "cluster_mode") => {
            ExecMode::Cluster
        }
        Some(Value::String(s)) if matches!(s.as_str(), "fork" | "fork_mode") => ExecMode::Fork,
        Some(other) => {
            return Err(app.err(
                "exec_mode",
                format!(
                    "expected \"fork\" or \"cluster\" (\"_mode\" suffix optional), got {}",
                    show(other)
                ),
            ))
        }
    };
    if exec_mode == ExecMode::Cluster && !node {
        let runner = interpreter.as_ref().map_or_else(
            || "no interpreter (executed directly)".to_owned(),
            |i| i.display().to_string(),
        );
        return Err(app.err(
            "exec_mode",
            format!("cluster mode needs a Node.js script, but this app runs with {runner}"),
        ));
    }

    let mut spec = AppSpec::with_defaults(name, script, cwd.clone());
    if let Some(ns) = app.str("namespace") {
        spec.namespace = ns.to_owned();
    }
    args.extend(app.words("args")?);
    spec.args = args;
    spec.interpreter_args = app.words("node_args")?;
    spec.node = node;
    spec.exec_mode = exec_mode;
    spec.instances = instances;
    spec.env = environment(&app, ctx)?;
    let is_python = interpreter
        .as_deref()
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_string_lossy().starts_with("python"));
    if is_python {
        spec.env
            .entry("PYTHONUNBUFFERED".to_owned())
            .or_insert_with(|| "1".to_owned());
    }
    spec.interpreter = interpreter;
    if let Some(var) = app.str("instance_var") {
        spec.instance_var = var.to_owned();
    }
    spec.increment_var = app.str("increment_var").map(str::to_owned);
    spec.autorestart = app.bool("autorestart").unwrap_or(spec.autorestart);
    spec.autostart = app.bool("autostart").unwrap_or(spec.autostart);
    if let Some(v) = app.map.get("min_uptime") {
        spec.min_uptime_ms = parse_duration_ms(v).map_err(|e| app.err("min_uptime", e))?;
    }
    if let Some(n) = app.ms("max_restarts")? {
        spec.max_restarts = u32::try_from(n).map_err(|_| app.err("max_restarts", "too large"))?;
    }
    spec.restart_delay_ms = app.ms("restart_delay")?.unwrap_or(0);
    spec.exp_backoff_restart_delay_ms = app.ms("exp_backoff_restart_delay")?.filter(|&ms| ms > 0);
    spec.stop_exit_codes = stop_exit_codes(&app)?;
    spec.kill_timeout_ms = app.ms("kill_timeout")?.unwrap_or(spec.kill_timeout_ms);
    spec.shutdown_with_message = app.bool("shutdown_with_message").unwrap_or(false);
    spec.wait_ready = app.bool("wait_ready").unwrap_or(false);
    spec.listen_timeout_ms = app.ms("listen_timeout")?.unwrap_or(spec.listen_timeout_ms);
    spec.treekill = app.bool("treekill").unwrap_or(true);
    spec.sticky = app.bool("sticky").unwrap_or(false);

    if let Some(path) = app.str("out_file") {
        spec.out_file = log_target(&cwd, path, ctx);
    }
    if let Some(path) = app.str("error_file") {
        spec.error_file = log_target(&cwd, path, ctx);
    }
    spec.log_file = match app.map.get("log_file") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(LogTarget::Default),
        Some(Value::String(path)) => Some(log_target(&cwd, path, ctx)),
        Some(other) => {
            return Err(app.err(
                "log_file",
                format!("expected a boolean or a path, got {}", show(other)),
            ))
        }
    };
    spec.merge_logs = app
        .bool("merge_logs")
        .unwrap_or(exec_mode == ExecMode::Fork && !instances_given);
    spec.log_date_format = match app.str("log_date_format") {
        Some(format) => Some(dayjs_to_strftime(format)),
        None if app.bool("time") == Some(true) => Some("%Y-%m-%dT%H:%M:%S".to_owned()),
        None => None,
    };
    spec.log_json = app.str("log_type") == Some("json");
    spec.disable_logs = app.bool("disable_logs").unwrap_or(false);
    spec.pid_file = app.str("pid_file").map(|p| resolve_in(&cwd, p, shell_env));
    spec.max_memory_restart = match app.map.get("max_memory_restart") {
        None => None,
        // pm2 treats 0 as "off" (falsy).
        Some(v) => Some(parse_size_bytes(v).map_err(|e| app.err("max_memory_restart", e))?)
            .filter(|&b| b > 0),
    };
    spec.cron_restart = cron(&app)?;
    spec.watch = watch(&app, &cwd, ctx)?;
    spec.version = spec.script.parent().and_then(package_version);
    spec.raw_options = map;
    Ok(spec)
}

fn stem(script: &str) -> String {
    Path::new(script)
        .file_stem()
        .map_or_else(|| script.to_owned(), |s| s.to_string_lossy().into_owned())
}
