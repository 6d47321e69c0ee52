//! Actions on running apps: stop, restart, reload, delete, scale, signals,
//! and the daemon-level ones (save, resurrect, ping, kill).

use std::collections::BTreeMap;
use std::process::ExitCode;

use rpm2_core::rpc::client::Client;
use rpm2_proto::{Request, Response};

use super::{fail, list_all, CmdResult, Ctx};
use crate::args::ActionArgs;

/// Send one request that answers with processes, then print the table.
pub fn simple(ctx: &Ctx, action: &str, req: Request) -> CmdResult {
    let resp = ctx.call(&req).map_err(|e| fail(&e))?;
    if let Response::Processes { processes } = &resp {
        for p in processes {
            ctx.style
                .info(&format!("[{}]({}) ✓ {action}", p.name, p.pm_id));
        }
    }
    ctx.style.table(&list_all(ctx)?);
    Ok(ExitCode::SUCCESS)
}

/// A request answered with `Ok`, then a message.
pub fn done(ctx: &Ctx, req: Request, msg: &str) -> CmdResult {
    ctx.call(&req).map_err(|e| fail(&e))?;
    ctx.style.info(msg);
    Ok(ExitCode::SUCCESS)
}

/// `restart`/`reload`: targets may be names, ids, namespaces or an
/// ecosystem file. A file's apps get their new spec: started if unknown,
/// restarted (or reloaded) if known — pm2's startOrRestart/startOrReload.
pub fn restart_or_reload(ctx: &Ctx, a: ActionArgs, reload: bool) -> CmdResult {
    let update_env = a.update_env.then(shell_env);
    let mut targets = Vec::new();
    for t in &a.targets {
        if rpm2_config::is_config_file(t) {
            start_or(ctx, t, a.only.as_deref(), a.env.clone(), reload)?;
        } else {
            targets.push(t.clone());
        }
    }
    if targets.is_empty() {
        ctx.style.table(&list_all(ctx)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (req, action) = if reload {
        (
            Request::Reload {
                targets,
                update_env,
                parallel: a.parallel,
            },
            "reload",
        )
    } else {
        (
            Request::Restart {
                targets,
                update_env,
            },
            "restart",
        )
    };
    if !a.update_env {
        ctx.style
            .info("Use --update-env to update environment variables");
    }
    simple(ctx, action, req)
}

/// Load an ecosystem file and start its unknown apps; known ones are
/// restarted, or reloaded with `reload`, with the file's spec.
pub fn start_or(
    ctx: &Ctx,
    file: &str,
    only: Option<&str>,
    env: Option<String>,
    reload: bool,
) -> CmdResult {
    let opts = super::start::load_options(only, env, serde_json::Map::new())?;
    let loaded =
        rpm2_config::load_file(std::path::Path::new(file), &opts).map_err(|e| e.to_string())?;
    for w in &loaded.warnings {
        ctx.style.warn(w);
    }
    let req = if reload {
        Request::StartOrReload { apps: loaded.apps }
    } else {
        Request::Start {
            apps: loaded.apps,
            only_new: false,
        }
    };
    let action = if reload {
        "startOrReload"
    } else {
        "startOrRestart"
    };
    simple(ctx, action, req)
}

/// This shell's environment (for `--update-env`).
pub fn shell_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

pub fn save(ctx: &Ctx, force: bool) -> CmdResult {
    match ctx.call(&Request::Save { force }).map_err(|e| fail(&e))? {
        Response::Saved { path, apps } => {
            ctx.style
                .info(&format!("Saving current process list ({apps} apps)..."));
            ctx.style.info(&format!("Successfully saved in {path}"));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

pub fn resurrect(ctx: &Ctx) -> CmdResult {
    ctx.style.info(&format!(
        "Resurrecting from {}",
        ctx.home.dump_file().display()
    ));
    match ctx.call(&Request::Resurrect).map_err(|e| fail(&e))? {
        Response::Processes { processes } => {
            ctx.style.table(&processes);
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

pub fn ping(ctx: &Ctx) -> CmdResult {
    ctx.call(&Request::Ping).map_err(|e| fail(&e))?;
    if !ctx.style.silent {
        println!("{{ msg: 'pong' }}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Stop every app and the daemon; nothing to do when none runs.
pub fn kill(ctx: &Ctx) -> CmdResult {
    let Ok(mut client) = Client::connect(&ctx.home) else {
        ctx.style.info("No rpm2 daemon running");
        return Ok(ExitCode::SUCCESS);
    };
    let pid = client.daemon_pid;
    client.call(&Request::Kill).map_err(|e| fail(&e))?;
    ctx.style.info("[v] All Applications Stopped");
    // Wait for the daemon to be gone, so the next command starts afresh.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    #[expect(clippy::cast_possible_wrap, reason = "pids fit i32")]
    let daemon = nix::unistd::Pid::from_raw(pid as i32);
    while nix::sys::signal::kill(daemon, None).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    ctx.style.info("[v] rpm2 daemon stopped");
    Ok(ExitCode::SUCCESS)
}
