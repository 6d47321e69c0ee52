//! One function per command; this module parses argv and dispatches.

mod actions;
mod boot_failure;
mod config;
mod extra;
mod logs;
pub mod migrate;
mod runtime;
mod show;
mod start;
pub mod startup;
mod trigger;
mod words;

pub use words::{stdin_config, STDIN};

use std::process::ExitCode;

use clap::Parser;
use rpm2_client::{connect_or_spawn_with, Client, ClientError, Home, Timeouts};
use rpm2_proto::ProcessInfo;

use crate::args::{Cli, Command};
use crate::error::{exit, CliError};
use crate::print::{self, Style};

/// What every command needs.
pub struct Ctx {
    pub home: Home,
    pub style: Style,
    /// The daemon's notices were printed by this command already.
    pub notices_shown: std::cell::Cell<bool>,
    /// How long to wait for the daemon (`--rpc-timeout`, `RPM2_TIMEOUT_MS`).
    pub timeouts: Timeouts,
}

impl Ctx {
    /// The daemon's notices (a predecessor that died, orphans it left),
    /// once per command, on stderr so that `jlist | jq` sees JSON only.
    /// A daemon that cannot say them is not an error.
    pub fn print_notices(&self, client: &mut Client) {
        if self.notices_shown.replace(true) {
            return;
        }
        for notice in client.notices().unwrap_or_default() {
            eprintln!("[RPM2][WARN] {notice}");
        }
    }

    /// Connect to the daemon, starting it if none answers.
    pub fn client(&self) -> Result<Client, CliError> {
        let exe = std::env::current_exe().map_err(|e| {
            ClientError::Unavailable(format!("cannot find the rpm2 executable: {e}"))
        })?;
        let (mut client, spawned) = connect_or_spawn_with(&self.home, &exe, self.timeouts)?;
        if spawned && !self.style.silent {
            // On stderr: `rpm2 jlist | jq` must see JSON only, even on a cold start.
            eprintln!(
                "[RPM2] Spawning rpm2 daemon with RPM2_HOME={}",
                self.home.root().display()
            );
            eprintln!("[RPM2] rpm2 daemon successfully daemonized");
        }
        if spawned {
            // The first command after a crash says so.
            self.print_notices(&mut client);
        }
        if client.daemon_version != env!("CARGO_PKG_VERSION") && !self.style.silent {
            // pm2's words; on stderr so that `jlist | jq` sees JSON only.
            eprintln!(
                "\n>>>> In-memory RPM2 is out-of-date, do:\n>>>> $ rpm2 update\nIn memory RPM2 version: {}\nLocal RPM2 version: {}\n",
                client.daemon_version,
                env!("CARGO_PKG_VERSION")
            );
        }
        Ok(client)
    }
}

fn run_daemon(home: &Home, args: &[std::ffi::OsString]) -> ExitCode {
    let code = rpm2_core::daemon::main(home, args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub fn run() -> ExitCode {
    // The same executable is `rpm2-runtime` when started under that name.
    if runtime::invoked_as_runtime() {
        return runtime::main();
    }
    // The daemon's own command lines (normally run by `rpm2-daemon`) skip
    // clap: building pm2's whole command tree touches code and data pages
    // that a long-lived process would keep resident.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = rpm2_core::daemon::run_command(&argv) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not failures; usage errors are (pm2: 1).
            return if e.use_stderr() {
                ExitCode::from(exit::ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let home = Home::from_env();
    if matches!(cli.command, Command::Daemon) {
        return run_daemon(&home, &[]);
    }
    let mut timeouts = Timeouts::from_env();
    if let Some(ms) = cli.rpc_timeout {
        timeouts.fixed = Some(std::time::Duration::from_millis(ms));
    }
    let ctx = Ctx {
        home,
        notices_shown: std::cell::Cell::new(false),
        timeouts,
        style: Style {
            silent: cli.silent,
            mini: cli.mini_list,
            color: !cli.no_color
                && std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        },
    };
    let result = match cli.command {
        Command::Start(a) => start::start(&ctx, a),
        Command::Stop(a) => words::stop_or_delete(&ctx, &a.targets, a.only.as_deref(), false),
        Command::Delete(a) => words::stop_or_delete(&ctx, &a.targets, a.only.as_deref(), true),
        Command::StartOrRestart(a) => {
            actions::start_or(&ctx, &a.file, a.only.as_deref(), a.env, false)
        }
        Command::StartOrReload(a) => {
            actions::start_or(&ctx, &a.file, a.only.as_deref(), a.env, true)
        }
        Command::Restart(a) => actions::restart_or_reload(&ctx, a, false),
        Command::Reload(a) => actions::restart_or_reload(&ctx, a, true),
        Command::Scale { name, count } => actions::simple(&ctx, "scale", |c| c.scale(name, count)),
        Command::Reset { target } => actions::simple(&ctx, "reset", |c| c.reset(vec![target])),
        Command::SendSignal { signal, targets } => {
            actions::simple(&ctx, "sendSignal", |c| c.send_signal(signal, targets))
        }
        Command::List => show::list(&ctx),
        Command::Jlist => show::jlist(&ctx),
        Command::Prettylist => show::prettylist(&ctx),
        Command::Describe { target } => show::describe(&ctx, target),
        Command::Env { id } => show::env(&ctx, id),
        Command::Pid { target } => show::pid(&ctx, target),
        Command::Id { name } => show::id(&ctx, &name),
        Command::Logs(a) => logs::logs(&ctx, &a),
        Command::Flush { targets } => actions::done(&ctx, |c| c.flush(targets), "Logs flushed"),
        Command::ReloadLogs => actions::done(&ctx, Client::reload_logs, "All logs reloaded"),
        Command::Save { force } => actions::save(&ctx, force),
        Command::Resurrect { from: None } => actions::resurrect(&ctx),
        Command::Resurrect { from: Some(from) } => migrate::resurrect_from(&ctx, &from),
        Command::Install(a) => migrate::install(&ctx, &a),
        Command::Uninstall { module } => migrate::uninstall(&ctx, &module),
        Command::Ping => actions::ping(&ctx),
        Command::Kill => actions::kill(&ctx),
        Command::Trigger {
            target,
            action,
            params,
        } => trigger::trigger(&ctx, target, action, params),
        Command::Ecosystem { mode } => extra::ecosystem(&ctx, mode.as_deref()),
        Command::Update => extra::update(&ctx),
        Command::Monit => crate::monit::monit(&ctx),
        Command::Set { key, value } => config::set(&ctx, key.as_deref(), value.as_deref()),
        Command::Multiset { values } => config::multiset(&ctx, &values),
        Command::Get { key } => config::get(&ctx, key.as_deref()),
        Command::Unset { key } => config::unset(&ctx, &key),
        Command::Conf { key, value } => config::conf(&ctx, key.as_deref(), value.as_deref()),
        Command::Startup(a) => startup::startup(&ctx, &a),
        Command::Unstartup(a) => startup::unstartup(&ctx, &a),
        Command::Daemon => unreachable!("handled above"),
    };
    result.unwrap_or_else(|e| print::error(&e))
}

/// Commands return `Ok(exit code)` or the error to report.
pub type CmdResult = Result<ExitCode, CliError>;

/// The process list.
pub fn list_all(ctx: &Ctx) -> Result<Vec<ProcessInfo>, CliError> {
    Ok(ctx.client()?.list()?)
}
