//! Actions on running apps: stop, restart, reload, delete, scale, signals,
//! and the daemon-level ones (save, resurrect, ping, kill).

use std::process::ExitCode;

use rpm2_client::{Client, ClientError, StartPlan, StartTarget};
use rpm2_proto::ProcessInfo;

use super::{CliError, CmdResult, Ctx};
use crate::args::ActionArgs;

/// One call that answers with processes, then the table.
pub fn simple(
    ctx: &Ctx,
    action: &str,
    call: impl FnOnce(&mut Client) -> Result<Vec<ProcessInfo>, ClientError>,
) -> CmdResult {
    let mut client = ctx.client()?;
    for p in &call(&mut client)? {
        ctx.style
            .info(&format!("[{}]({}) ✓ {action}", p.name, p.pm_id));
    }
    ctx.style.table(&client.list()?);
    Ok(ExitCode::SUCCESS)
}

/// A call answered with `Ok`, then a message.
pub fn done(
    ctx: &Ctx,
    call: impl FnOnce(&mut Client) -> Result<(), ClientError>,
    msg: &str,
) -> CmdResult {
    call(&mut ctx.client()?)?;
    ctx.style.info(msg);
    Ok(ExitCode::SUCCESS)
}

/// `restart`/`reload`: targets may be names, ids, namespaces or an
/// ecosystem file. A file's apps get their new spec: started if unknown,
/// restarted (or reloaded) if known — pm2's startOrRestart/startOrReload.
pub fn restart_or_reload(ctx: &Ctx, a: ActionArgs, reload: bool) -> CmdResult {
    let update_env = a.update_env.then(rpm2_config::shell_env);
    let mut words = Vec::new();
    for t in &a.targets {
        if t == super::words::STDIN || rpm2_config::is_config_file(t) {
            start_or(ctx, t, a.only.as_deref(), a.env.clone(), reload)?;
        } else {
            words.push(t.clone());
        }
    }
    if words.is_empty() {
        ctx.style.table(&super::list_all(ctx)?);
        return Ok(ExitCode::SUCCESS);
    }
    let targets = ctx
        .client()?
        .resolve_words(&words, &std::env::current_dir()?)?;
    if !a.update_env {
        ctx.style
            .info("Use --update-env to update environment variables");
    }
    let update = a.spec_update();
    if reload {
        simple(ctx, "reload", |c| {
            c.reload_with(targets, update_env, a.parallel, update)
        })
    } else {
        simple(ctx, "restart", |c| {
            // pm2's `restart --watch` toggles watching, then restarts.
            if a.watch {
                c.toggle_watch(targets.clone())?;
            }
            c.restart_with(targets, update_env, update)
        })
    }
}

/// Load an ecosystem file (or the config on stdin, for `-`) and start its
/// unknown apps; known ones are restarted, or reloaded with `reload`, with
/// the file's spec.
pub fn start_or(
    ctx: &Ctx,
    file: &str,
    only: Option<&str>,
    env: Option<String>,
    reload: bool,
) -> CmdResult {
    let opts =
        rpm2_config::load_options(only.map(str::to_owned), env, serde_json::Map::new(), None)?;
    let plan = if file == super::words::STDIN {
        StartPlan::from_loaded(super::words::stdin_config(&opts)?, &opts)
    } else {
        StartPlan::new([StartTarget::Text(file.to_owned())], &opts)?
    };
    for w in &plan.warnings {
        ctx.style.warn(w);
    }
    let action = if reload {
        "startOrReload"
    } else {
        "startOrRestart"
    };
    simple(ctx, action, |c| {
        plan.start_or(c, reload).map(|(procs, _)| procs)
    })
}

pub fn save(ctx: &Ctx, force: bool) -> CmdResult {
    let saved = ctx.client()?.save(force)?;
    ctx.style.info(&format!(
        "Saving current process list ({} apps)...",
        saved.apps
    ));
    ctx.style
        .info(&format!("Successfully saved in {}", saved.path));
    Ok(ExitCode::SUCCESS)
}

pub fn resurrect(ctx: &Ctx) -> CmdResult {
    ctx.style.info(&format!(
        "Resurrecting from {}",
        ctx.home.dump_file().display()
    ));
    ctx.style.table(&ctx.client()?.resurrect()?);
    Ok(ExitCode::SUCCESS)
}

pub fn ping(ctx: &Ctx) -> CmdResult {
    ctx.client()?.ping()?;
    if !ctx.style.silent {
        println!("{{ msg: 'pong' }}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Stop every app and the daemon; nothing to do when none runs. A daemon
/// that lost its socket is found through its pid file and sent SIGTERM
/// (it stops every app, then exits, as on `kill`).
pub fn kill(ctx: &Ctx) -> CmdResult {
    let pid = match Client::connect_with(&ctx.home, ctx.timeouts) {
        Ok(mut client) => {
            let pid = client.daemon_pid;
            client.kill()?;
            ctx.style.info("[v] All Applications Stopped");
            pid
        }
        Err(ClientError::Unavailable(why)) => {
            let Some(pid) = rpm2_client::pidfile::live_daemon(&ctx.home) else {
                ctx.style.info("No rpm2 daemon running");
                return Ok(ExitCode::SUCCESS);
            };
            ctx.style.info(&format!(
                "The rpm2 daemon (pid {pid}) does not answer on its socket ({why}): \
                 sending it SIGTERM (it stops every app, then exits)"
            ));
            signal_daemon(pid)?;
            pid
        }
        Err(e) => return Err(e.into()),
    };
    // Wait for the daemon to be gone, so the next command starts afresh.
    let bound = ctx.timeouts.reply(&rpm2_proto::Request::Kill);
    let deadline = std::time::Instant::now() + bound;
    while daemon_alive(pid) {
        if std::time::Instant::now() >= deadline {
            return Err(ClientError::timeout("for the daemon to exit", Some(pid), bound).into());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    ctx.style.info("[v] rpm2 daemon stopped");
    Ok(ExitCode::SUCCESS)
}

#[expect(clippy::cast_possible_wrap, reason = "pids fit i32")]
fn daemon_pid(pid: u32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(pid as i32)
}

fn daemon_alive(pid: u32) -> bool {
    nix::sys::signal::kill(daemon_pid(pid), None).is_ok()
}

fn signal_daemon(pid: u32) -> Result<(), CliError> {
    nix::sys::signal::kill(daemon_pid(pid), nix::sys::signal::Signal::SIGTERM).map_err(|e| {
        CliError::new(
            rpm2_proto::ErrorCode::SignalFailed,
            format!("cannot send SIGTERM to the rpm2 daemon (pid {pid}): {e}"),
        )
    })
}
