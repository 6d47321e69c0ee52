//! Where output goes and how it looks: `out_file`, `error_file`, `log_file`,
//! `merge_logs`, `log_date_format`/`time`, `log_type`, `disable_logs`,
//! `pid_file`.

use std::path::Path;

use rpm2_proto::{AppSpec, ExecMode, LogTarget};
use serde_json::Value;

use super::program::Scale;
use super::{App, Ctx};
use crate::dayjs::dayjs_to_strftime;
use crate::error::{show, ConfigError};
use crate::paths::resolve_in;

pub(super) fn logs(
    app: &App<'_>,
    ctx: &Ctx<'_>,
    cwd: &Path,
    scale: &Scale,
    spec: &mut AppSpec,
) -> Result<(), ConfigError> {
    if let Some(path) = app.str("out_file") {
        spec.out_file = log_target(cwd, path, ctx);
    }
    if let Some(path) = app.str("error_file") {
        spec.error_file = log_target(cwd, path, ctx);
    }
    spec.log_file = match app.map.get("log_file") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(LogTarget::Default),
        Some(Value::String(path)) => Some(log_target(cwd, path, ctx)),
        Some(other) => {
            return Err(app.err(
                "log_file",
                format!("expected a boolean or a path, got {}", show(other)),
            ))
        }
    };
    // pm2 merges the logs of a fork app unless `instances` was given.
    spec.merge_logs = app
        .bool("merge_logs")
        .unwrap_or(scale.exec_mode == ExecMode::Fork && !scale.instances_given);
    spec.log_date_format = match app.str("log_date_format") {
        Some(format) => Some(dayjs_to_strftime(format)),
        None if app.bool("time") == Some(true) => Some("%Y-%m-%dT%H:%M:%S".to_owned()),
        None => None,
    };
    spec.log_json = app.str("log_type") == Some("json");
    spec.disable_logs = app.bool("disable_logs").unwrap_or(false);
    spec.pid_file = app
        .str("pid_file")
        .map(|p| resolve_in(cwd, p, &ctx.opts.shell_env));
    Ok(())
}

fn log_target(cwd: &Path, path: &str, ctx: &Ctx<'_>) -> LogTarget {
    if path == "/dev/null" || path == "NULL" {
        LogTarget::Null
    } else {
        LogTarget::Path(resolve_in(cwd, path, &ctx.opts.shell_env))
    }
}
