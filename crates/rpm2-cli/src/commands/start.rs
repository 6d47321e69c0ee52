//! `rpm2 start`: ecosystem files, scripts, or known apps. The planning
//! (`rpm2-client`'s `StartPlan`) is shared with the addon; this is the
//! CLI's half: flags as option overrides, messages, boot failures.

use std::process::ExitCode;

use rpm2_client::{StartPlan, StartTarget};
use serde_json::{json, Map, Value};

use rpm2_proto::ErrorCode;

use super::{boot_failure, CliError, CmdResult, Ctx};
use crate::args::StartArgs;
use crate::error::exit;

pub(crate) const DEFAULT_CONFIG: &str = "ecosystem.config.js";

pub fn start(ctx: &Ctx, a: StartArgs) -> CmdResult {
    if a.no_daemon {
        return Ok(super::runtime::no_daemon(a));
    }
    let opts = rpm2_config::load_options(a.only.clone(), a.env.clone(), overrides(&a), None)?;
    let targets = if a.targets.is_empty() {
        vec![DEFAULT_CONFIG.to_owned()]
    } else {
        a.targets.clone()
    };
    let mut plan = if targets.iter().any(|t| t == super::STDIN) {
        // `start -`: the config comes on stdin (pm2's `cat app.json | pm2 start -`).
        if targets.len() > 1 {
            return Err(CliError::new(
                ErrorCode::BadRequest,
                "`start -` reads one config from stdin and takes no other target",
            ));
        }
        StartPlan::from_loaded(super::stdin_config(&opts)?, &opts)
    } else {
        StartPlan::new(targets.into_iter().map(StartTarget::Text), &opts)?
    };
    plan.force = a.force;
    plan.update = crate::args::spec_update(
        a.name.as_deref(),
        a.interpreter_args.as_deref().or(a.node_args.as_deref()),
    );
    for w in &plan.warnings {
        ctx.style.warn(w);
    }
    let marks = boot_failure::LogMarks::before(&ctx.home.logs_dir(), &plan.apps);
    let mut client = ctx.client()?;
    let update_env = a.update_env.then(rpm2_config::shell_env);
    let done = plan.run(&mut client, update_env, |apps| {
        for app in apps {
            ctx.style.info(&format!(
                "Starting {} in {} ({} instance{})",
                app.script.display(),
                app.exec_mode.pm2_name(),
                app.instances,
                if app.instances == 1 { "" } else { "s" }
            ));
        }
    })?;
    // pm2: a known app restarted by `start --watch` has its watching toggled.
    if a.watch.is_some() && !done.restarted.is_empty() {
        let ids = done
            .restarted
            .iter()
            .map(|p| rpm2_proto::Target::Id(p.pm_id));
        client.toggle_watch(ids.collect())?;
    }
    // Processes that never came up while `start` waited for them.
    let (up, failed): (Vec<_>, Vec<_>) = done.started.into_iter().partition(boot_failure::came_up);
    for p in &up {
        ctx.style.info(&format!("[{}]({}) ✓", p.name, p.pm_id));
    }
    ctx.style.table(&client.list()?);
    // Running, but writing nowhere: said, and not a success.
    let no_logs = boot_failure::report_log_errors(&up);
    if failed.is_empty() && !no_logs {
        return Ok(ExitCode::SUCCESS);
    }
    boot_failure::report(&failed, &marks);
    Ok(ExitCode::from(exit::ERROR))
}

/// CLI flags as pm2 option names, applied over each app.
pub(crate) fn overrides(a: &StartArgs) -> Map<String, Value> {
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
    if let Some(v) = a.unresponsive_timeout {
        put("unresponsive_timeout", json!(v));
    }
    if a.wait_ready {
        put("wait_ready", json!(true));
    }
    if a.execute_command {
        put("execute_command", json!(true));
    }
    if let Some(v) = &a.pid {
        put("pid_file", json!(v));
    }
    if let Some(v) = &a.uid {
        put("uid", json!(v));
    }
    if let Some(v) = &a.gid {
        put("gid", json!(v));
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
