//! `rpm2 start`: ecosystem files, scripts, or known apps. Everything is
//! loaded and validated before the daemon is asked to start anything, so a
//! bad config changes nothing.

use std::path::Path;
use std::process::ExitCode;

use rpm2_config::LoadOptions;
use rpm2_proto::{AppSpec, ProcessInfo, Request, Response};
use serde_json::{json, Map, Value};

use super::{boot_failure, fail, list_all, CmdResult, Ctx};
use crate::args::StartArgs;

const DEFAULT_CONFIG: &str = "ecosystem.config.js";

pub fn start(ctx: &Ctx, a: StartArgs) -> CmdResult {
    let overrides = overrides(&a);
    let opts = load_options(a.only.as_deref(), a.env.clone(), overrides)?;
    let targets = if a.targets.is_empty() {
        vec![DEFAULT_CONFIG.to_owned()]
    } else {
        a.targets.clone()
    };

    let mut apps: Vec<AppSpec> = Vec::new();
    let mut restart_targets = Vec::new();
    for target in &targets {
        if rpm2_config::is_config_file(target) {
            let loaded =
                rpm2_config::load_file(Path::new(target), &opts).map_err(|e| e.to_string())?;
            for w in &loaded.warnings {
                ctx.style.warn(w);
            }
            apps.extend(loaded.apps);
        } else if rpm2_config::looks_like_script(target, &opts.cwd) {
            let loaded = rpm2_config::from_script(target, &opts).map_err(|e| e.to_string())?;
            for w in &loaded.warnings {
                ctx.style.warn(w);
            }
            apps.extend(loaded.apps);
        } else {
            // pm2: a name, id or namespace of a known app restarts it.
            restart_targets.push(target.clone());
        }
    }

    if !restart_targets.is_empty() {
        let known = list_all(ctx)?;
        for t in &restart_targets {
            let matches = known.iter().any(|p| {
                &p.name == t || &p.pm2_env.namespace == t || p.pm_id.to_string() == *t || t == "all"
            });
            if !matches {
                return Err(format!("Script not found: {}", opts.cwd.join(t).display()));
            }
        }
    }

    // Processes that never came up while `start` waited for them.
    let mut failed: Vec<ProcessInfo> = Vec::new();
    let marks = boot_failure::LogMarks::before(&ctx.home.logs_dir(), &apps);
    if !apps.is_empty() {
        for app in &apps {
            ctx.style.info(&format!(
                "Starting {} in {} ({} instance{})",
                app.script.display(),
                app.exec_mode.pm2_name(),
                app.instances,
                if app.instances == 1 { "" } else { "s" }
            ));
        }
        match ctx
            .call(&Request::Start {
                apps,
                only_new: false,
            })
            .map_err(|e| fail(&e))?
        {
            Response::Processes { processes } => {
                for p in &processes {
                    if !boot_failure::came_up(p) {
                        failed.push(p.clone());
                    } else {
                        ctx.style.info(&format!("[{}]({}) ✓", p.name, p.pm_id));
                    }
                }
            }
            other => return Err(format!("unexpected answer: {other:?}")),
        }
    }
    if !restart_targets.is_empty() {
        let update_env = a.update_env.then(super::actions::shell_env);
        ctx.call(&Request::Restart {
            targets: restart_targets,
            update_env,
        })
        .map_err(|e| fail(&e))?;
    }
    ctx.style.table(&list_all(ctx)?);
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    boot_failure::report(&failed, &marks);
    Ok(ExitCode::from(crate::print::exit::ERROR))
}

pub fn load_options(
    only: Option<&str>,
    env_name: Option<String>,
    overrides: Map<String, Value>,
) -> Result<LoadOptions, String> {
    Ok(LoadOptions {
        only: only
            .map(|o| {
                o.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        env_name,
        shell_env: std::env::vars().collect(),
        cwd: std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?,
        overrides,
    })
}

/// CLI flags as pm2 option names, applied over each app.
fn overrides(a: &StartArgs) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    if let Some(v) = &a.name {
        put("name", json!(v));
    }
    if let Some(v) = &a.instances {
        put(
            "instances",
            v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
        );
    }
    if let Some(paths) = &a.watch {
        put(
            "watch",
            if paths.is_empty() {
                json!(true)
            } else {
                json!(paths)
            },
        );
    }
    if let Some(v) = &a.interpreter {
        put("interpreter", json!(v));
    }
    if let Some(v) = a.interpreter_args.as_ref().or(a.node_args.as_ref()) {
        put("node_args", json!(v));
    }
    if let Some(v) = &a.output {
        put("out_file", json!(v));
    }
    if let Some(v) = &a.error {
        put("error_file", json!(v));
    }
    if let Some(v) = &a.log {
        put("log_file", json!(v));
    }
    if let Some(v) = &a.log_date_format {
        put("log_date_format", json!(v));
    }
    if a.time {
        put("time", json!(true));
    }
    if a.merge_logs {
        put("merge_logs", json!(true));
    }
    if let Some(v) = &a.namespace {
        put("namespace", json!(v));
    }
    if let Some(v) = &a.cwd {
        put("cwd", json!(v));
    }
    if let Some(v) = a.kill_timeout {
        put("kill_timeout", json!(v));
    }
    if let Some(v) = a.listen_timeout {
        put("listen_timeout", json!(v));
    }
    if a.wait_ready {
        put("wait_ready", json!(true));
    }
    if let Some(v) = &a.max_memory_restart {
        put("max_memory_restart", json!(v));
    }
    if let Some(v) = a.restart_delay {
        put("restart_delay", json!(v));
    }
    if let Some(v) = a.exp_backoff_restart_delay {
        put("exp_backoff_restart_delay", json!(v));
    }
    if let Some(v) = a.max_restarts {
        put("max_restarts", json!(v));
    }
    if a.no_autorestart {
        put("autorestart", json!(false));
    }
    if a.no_autostart {
        put("autostart", json!(false));
    }
    if let Some(v) = &a.stop_exit_codes {
        put("stop_exit_codes", json!(v));
    }
    if a.shutdown_with_message {
        put("shutdown_with_message", json!(true));
    }
    match a.sticky.as_deref() {
        None => {}
        Some("true") => put("sticky", json!(true)),
        Some("false") => put("sticky", json!(false)),
        Some(mode) => put("sticky", json!(mode)),
    }
    if let Some(v) = &a.cron {
        put("cron_restart", json!(v));
    }
    if !a.args.is_empty() {
        put("args", json!(a.args));
    }
    m
}
