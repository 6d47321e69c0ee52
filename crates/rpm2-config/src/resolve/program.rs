//! What runs and how many: `cwd`, `script`, `name`, `exec_interpreter`,
//! `instances` and `exec_mode`.

use std::path::{Path, PathBuf};

use rpm2_proto::ExecMode;
use serde_json::Value;

use super::{App, Ctx};
use crate::error::{show, ConfigError};
use crate::paths::{find_program, path_var, resolve_in, which};

/// The program an app runs, before the spec exists.
pub(super) struct Program {
    pub script: PathBuf,
    /// `name`, else the script's stem (or the whole command line).
    pub name: String,
    /// Arguments that come before `args` (`-c <cmd>` for a shell command).
    pub args: Vec<String>,
    pub interpreter: Option<PathBuf>,
    /// Runs under node (or bun): gets the IPC channel, may be clustered.
    pub node: bool,
}

/// `cwd`, resolved against the config file's folder (or the CLI's cwd).
pub(super) fn cwd(app: &App<'_>, ctx: &Ctx<'_>) -> PathBuf {
    match app.str("cwd") {
        Some(dir) => resolve_in(ctx.base_dir, dir, &ctx.opts.shell_env),
        None => ctx.base_dir.to_path_buf(),
    }
}

/// `script` (a file in `cwd`, a program in `PATH`, or a command line run by
/// bash), then `name` and the interpreter.
pub(super) fn program(app: &App<'_>, ctx: &Ctx<'_>, cwd: &Path) -> Result<Program, ConfigError> {
    let shell_env = &ctx.opts.shell_env;
    let script_raw = app
        .str("script")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| app.err("script", "required: the path of the script to run"))?;
    let mut args = Vec::new();
    let candidate = resolve_in(cwd, script_raw, shell_env);
    let search = path_var(shell_env);
    if candidate.is_dir() {
        return Err(ConfigError::ScriptIsDirectory {
            origin: ctx.origin.to_owned(),
            app: app.name.to_owned(),
            script: candidate.display().to_string(),
        });
    }
    let (script, default_name, shell_command) = if candidate.is_file() {
        (candidate, stem(script_raw), false)
    } else if let Some(found) = which(script_raw, search.as_ref()) {
        (found, stem(script_raw), false)
    } else if script_raw.contains(char::is_whitespace) {
        // pm2: `pm2 start "python x.py"` runs `bash -c "<cmd>"`, named after the command.
        let shell = which("bash", search.as_ref()).or_else(|| which("sh", search.as_ref()));
        let shell = shell.ok_or_else(|| ConfigError::InterpreterNotFound {
            origin: ctx.origin.to_owned(),
            app: app.name.to_owned(),
            interpreter: "bash".to_owned(),
        })?;
        args.extend(["-c".to_owned(), script_raw.to_owned()]);
        (shell, script_raw.to_owned(), true)
    } else {
        return Err(ConfigError::ScriptNotFound {
            origin: ctx.origin.to_owned(),
            app: app.name.to_owned(),
            script: candidate.display().to_string(),
        });
    };

    let mut name = app.str("name").map_or(default_name, str::to_owned);
    if let (Some(true), Some(env_name)) = (app.bool("append_env_to_name"), &ctx.opts.env_name) {
        name = format!("{name}-{env_name}");
    }
    let interpreter = interpreter(app, ctx, cwd, &script, shell_command)?;
    Ok(Program {
        node: is_node(interpreter.as_deref()),
        script,
        name,
        args,
        interpreter,
    })
}

/// `exec_interpreter` (`none`: run the script itself), else pm2's choice by
/// extension; a shell command needs none.
fn interpreter(
    app: &App<'_>,
    ctx: &Ctx<'_>,
    cwd: &Path,
    script: &Path,
    shell_command: bool,
) -> Result<Option<PathBuf>, ConfigError> {
    let shell_env = &ctx.opts.shell_env;
    let not_found = |interpreter: &str| ConfigError::InterpreterNotFound {
        origin: ctx.origin.to_owned(),
        app: app.name.to_owned(),
        interpreter: interpreter.to_owned(),
    };
    Ok(match app.str("exec_interpreter").map(str::trim) {
        Some("none") => None,
        Some(wanted) => {
            Some(find_program(wanted, cwd, shell_env).ok_or_else(|| not_found(wanted))?)
        }
        None if shell_command => None,
        None => match interpreter_for(script) {
            Some(names) => Some(
                names
                    .iter()
                    .find_map(|n| find_program(n, cwd, shell_env))
                    .ok_or_else(|| not_found(names[0]))?,
            ),
            None => None,
        },
    })
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

fn stem(script: &str) -> String {
    Path::new(script)
        .file_stem()
        .map_or_else(|| script.to_owned(), |s| s.to_string_lossy().into_owned())
}

/// How many workers and in which mode.
pub(super) struct Scale {
    pub instances: u32,
    pub exec_mode: ExecMode,
    /// `instances` was given at all (then logs are per worker by default).
    pub instances_given: bool,
}

/// `instances` and `exec_mode`; cluster mode only for a Node.js program.
pub(super) fn scale(app: &App<'_>, program: &Program) -> Result<Scale, ConfigError> {
    let (instances, selects_cluster, instances_given) = instances(app)?;
    let exec_mode = match app.map.get("exec_mode") {
        _ if app.bool("execute_command") == Some(true) => ExecMode::Fork,
        None => {
            if selects_cluster && program.node {
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
    if exec_mode == ExecMode::Cluster && !program.node {
        let runner = program.interpreter.as_ref().map_or_else(
            || "no interpreter (executed directly)".to_owned(),
            |i| i.display().to_string(),
        );
        return Err(app.err(
            "exec_mode",
            format!("cluster mode needs a Node.js script, but this app runs with {runner}"),
        ));
    }
    Ok(Scale {
        instances,
        exec_mode,
        instances_given,
    })
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

/// The CPUs pm2 counts with `os.cpus().length`, but only those this
/// process may use (affinity, cgroup quota): see `crate::cpus`.
pub(crate) fn cpu_count() -> u32 {
    crate::cpus::usable_cpus()
}
