//! Read-only commands: list, jlist, prettylist, describe, env, pid, id.

use std::process::ExitCode;

use rpm2_proto::{ErrorCode, ProcessInfo, Target};

use super::{list_all, CliError, CmdResult, Ctx};
use crate::error::exit;
use crate::output;
use crate::print::out;

pub fn list(ctx: &Ctx) -> CmdResult {
    let mut client = ctx.client()?;
    let procs = client.list()?;
    ctx.print_notices(&mut client);
    let now = rpm2_core::supervisor::now_ms();
    if ctx.style.mini {
        out(&output::render_mini_list(&procs, now));
    } else {
        out(&format!(
            "{}\n",
            output::render_list(&procs, now, ctx.style.color)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn jlist(ctx: &Ctx) -> CmdResult {
    let procs = list_all(ctx)?;
    let text =
        serde_json::to_string(&procs).map_err(|e| CliError::new(ErrorCode::Io, e.to_string()))?;
    out(&format!("{text}\n"));
    Ok(ExitCode::SUCCESS)
}

pub fn prettylist(ctx: &Ctx) -> CmdResult {
    let procs = list_all(ctx)?;
    out(&format!("{}\n", output::render_prettylist(&procs)));
    Ok(ExitCode::SUCCESS)
}

/// The workers matching `target`; none when it is unknown.
fn matching(ctx: &Ctx, target: Target) -> Result<Vec<ProcessInfo>, CliError> {
    match ctx.client()?.describe(vec![target]) {
        Ok(processes) => Ok(processes),
        Err(e) if e.code() == ErrorCode::ProcessNotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

pub fn describe(ctx: &Ctx, target: Target) -> CmdResult {
    let procs = matching(ctx, target.clone())?;
    if procs.is_empty() {
        ctx.style.warn(&format!("{target} doesn't exist"));
        return Ok(ExitCode::from(exit::ERROR));
    }
    let now = rpm2_core::supervisor::now_ms();
    let local_env: Vec<(String, String)> = std::env::vars().collect();
    for p in &procs {
        out(&format!(
            "{}\n",
            output::render_describe(p, now, &local_env)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn env(ctx: &Ctx, id: u32) -> CmdResult {
    let procs = matching(ctx, Target::Id(id))?;
    let Some(p) = procs.into_iter().find(|p| p.pm_id == id) else {
        return Err(CliError::new(
            ErrorCode::ProcessNotFound,
            format!("process {id} doesn't exist"),
        ));
    };
    out(&output::render_env(&p));
    Ok(ExitCode::SUCCESS)
}

pub fn pid(ctx: &Ctx, target: Option<Target>) -> CmdResult {
    let procs = match target {
        Some(t) => matching(ctx, t)?,
        None => list_all(ctx)?,
    };
    let text: String = procs.iter().map(|p| format!("{}\n", p.pid)).collect();
    out(&text);
    Ok(ExitCode::SUCCESS)
}

pub fn id(ctx: &Ctx, name: &str) -> CmdResult {
    let ids: Vec<u32> = list_all(ctx)?
        .into_iter()
        .filter(|p| p.name == name)
        .map(|p| p.pm_id)
        .collect();
    out(&format!("{}\n", output::inspect(&serde_json::json!(ids))));
    Ok(ExitCode::SUCCESS)
}
