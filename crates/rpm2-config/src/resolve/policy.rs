//! When a worker restarts and how it stops: the restart policy (`min_uptime`,
//! `max_restarts`, delays, `stop_exit_codes`, `kill_timeout`, readiness) and
//! the triggers (`max_memory_restart`, `cron_restart`, `watch`).

use std::path::Path;

use rpm2_proto::spec::Sticky;
use rpm2_proto::{AppSpec, WatchSpec};
use serde_json::Value;

use super::{App, Ctx};
use crate::error::{show, ConfigError};
use crate::paths::resolve_in;
use crate::units::{parse_duration_ms, parse_size_bytes};

/// The restart policy and the stop and readiness options.
pub(super) fn restart_policy(app: &App<'_>, spec: &mut AppSpec) -> Result<(), ConfigError> {
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
    spec.stop_exit_codes = stop_exit_codes(app)?;
    spec.kill_timeout_ms = app.ms("kill_timeout")?.unwrap_or(spec.kill_timeout_ms);
    spec.shutdown_with_message = app.bool("shutdown_with_message").unwrap_or(false);
    spec.wait_ready = app.bool("wait_ready").unwrap_or(false);
    spec.listen_timeout_ms = app.ms("listen_timeout")?.unwrap_or(spec.listen_timeout_ms);
    spec.treekill = app.bool("treekill").unwrap_or(true);
    spec.uid = app.str_or_num("uid")?;
    spec.gid = app.str_or_num("gid")?;
    spec.sticky = match app.map.get("sticky") {
        None => Sticky::Off,
        Some(v) => Sticky::from_json(v).ok_or_else(|| {
            app.err(
                "sticky",
                format!("expected true, false, 'ip' or 'forwarded', got {}", show(v)),
            )
        })?,
    };
    spec.drain = app.bool("drain").unwrap_or(true);
    Ok(())
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

/// What restarts the app besides a crash: memory, a schedule, file changes.
pub(super) fn triggers(
    app: &App<'_>,
    ctx: &Ctx<'_>,
    cwd: &Path,
    spec: &mut AppSpec,
) -> Result<(), ConfigError> {
    spec.max_memory_restart = match app.map.get("max_memory_restart") {
        None => None,
        // pm2 treats 0 as "off" (falsy).
        Some(v) => Some(parse_size_bytes(v).map_err(|e| app.err("max_memory_restart", e))?)
            .filter(|&b| b > 0),
    };
    spec.cron_restart = cron(app)?;
    spec.watch = watch(app, cwd, ctx)?;
    Ok(())
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

/// `watch` (true: the cwd; paths resolve against it), `ignore_watch` and
/// `watch_delay`.
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
