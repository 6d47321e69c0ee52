//! `rpm2-runtime [start] <ecosystem|script> [options]` (pm2-runtime) and
//! `rpm2 start --no-daemon …`: the CLI's half — flags and the start plan,
//! loaded (and checked) before anything runs — then `rpm2_core::runtime`
//! runs the daemon in this process. The same executable is `rpm2-runtime`
//! when invoked under that name (a link, or the npm launcher's argv0).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use rpm2_client::{Client, Home, StartPlan, StartTarget};
use rpm2_core::runtime::{LogStyle, Options, Starter};
use serde_json::{json, Map, Value};

use super::boot_failure;
use crate::args::StartArgs;
use crate::error::exit;

/// The name that selects this mode.
pub const NAME: &str = "rpm2-runtime";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "rpm2 for containers (pm2-runtime): the daemon in the foreground, the apps' output on stdout/stderr",
    long_about = "rpm2 for containers (pm2-runtime): runs the rpm2 daemon in this process, starts an \
ecosystem file or a script, prints the apps' output on its stdout/stderr, reaps orphans as PID 1, \
and exits with the apps: on SIGTERM/SIGINT every worker drains and stops; once every app has \
stopped or errored it exits by itself (see --no-auto-exit). Exit code: 0 when every app ended \
cleanly, else the code of the first app that failed (128 + N for a signal N).\n\n\
`rpm2 list` and require('rpm2') work against it through $RPM2_HOME (default ~/.rpm2).",
    arg_required_else_help = true
)]
pub struct RuntimeCli {
    #[command(flatten)]
    pub flags: RuntimeFlags,
    #[command(flatten)]
    pub start: StartArgs,
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "one per pm2-runtime flag")]
pub struct RuntimeFlags {
    /// One JSON object per log line on stdout, nothing else there:
    /// {"app","id","stream","time","message"}
    #[arg(long, conflicts_with_all = ["raw", "format", "formatted"])]
    pub json: bool,
    /// Log lines as the apps wrote them, without the `id|app |` prefix
    #[arg(long, conflicts_with_all = ["format", "formatted"])]
    pub raw: bool,
    /// `id|app | line` (the default)
    #[arg(long)]
    pub formatted: bool,
    /// key=value lines: timestamp=… app=… id=… type=… message=…
    #[arg(long, conflicts_with = "formatted")]
    pub format: bool,
    /// Keep running when every app has stopped or errored
    #[arg(long = "no-auto-exit")]
    pub no_auto_exit: bool,
    /// Seconds to wait before starting the apps
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    pub delay: f64,
    /// Also write the apps' log files, where the config says (default
    /// $RPM2_HOME/logs); without it only the files of -o/-e/-l are written
    #[arg(long = "log-files")]
    pub log_files: bool,
}

/// pm2-runtime flags rpm2 does not have, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "--web",
        "pm2's HTTP status endpoint is not part of rpm2; use `rpm2 jlist`",
    ),
    ("--secret", "PM2 Plus (keymetrics) is not supported"),
    ("--public", "PM2 Plus (keymetrics) is not supported"),
    ("--machine-name", "PM2 Plus (keymetrics) is not supported"),
    ("--trace", "PM2 Plus tracing is not supported"),
    ("--v8", "PM2 Plus v8 metrics are not supported"),
    ("--deep-monitoring", "PM2 Plus monitoring is not supported"),
];

/// Is this process `rpm2-runtime` (by the name it was started as)?
pub fn invoked_as_runtime() -> bool {
    std::env::args_os().next().is_some_and(|arg0| {
        std::path::Path::new(&arg0)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == NAME || n.starts_with("rpm2-runtime."))
    })
}

/// `rpm2-runtime …`.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let before_dashes = argv.iter().skip(1).take_while(|a| *a != "--");
    for arg in before_dashes {
        let name = arg.to_string_lossy();
        let name = name.split('=').next().unwrap_or_default();
        if let Some((flag, why)) = REFUSED.iter().find(|(f, _)| *f == name) {
            eprintln!("[RPM2][ERROR] {NAME}: {flag}: {why}");
            return ExitCode::from(exit::ERROR);
        }
    }
    let parsed = command()
        .try_get_matches_from(argv)
        .and_then(|m| RuntimeCli::from_arg_matches(&m));
    let mut cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // `rpm2-runtime start app.js` and `rpm2-runtime app.js` alike.
    if cli.start.targets.len() > 1 && cli.start.targets[0] == "start" {
        cli.start.targets.remove(0);
    }
    let f = &cli.flags;
    let style = if f.json {
        LogStyle::Json
    } else if f.raw {
        LogStyle::Raw
    } else if f.format {
        LogStyle::KeyValue
    } else {
        LogStyle::Prefixed
    };
    let (auto_exit, log_files, delay) = (!f.no_auto_exit, f.log_files, f.delay);
    run(cli.start, style, auto_exit, log_files, delay)
}

/// `rpm2-runtime`'s clap command: `rpm2 start`'s flags that mean nothing
/// here are hidden.
fn command() -> clap::Command {
    RuntimeCli::command().mut_args(|a| match a.get_id().as_str() {
        "targets" => a.help("Ecosystem file or script (optionally after the word `start`)"),
        "no_daemon" | "force" | "update_env" => a.hide(true),
        _ => a,
    })
}

/// `rpm2 start --no-daemon …`: the runtime with `rpm2 start`'s log files.
pub fn no_daemon(mut a: StartArgs) -> ExitCode {
    if a.targets.is_empty() {
        a.targets.push(super::start::DEFAULT_CONFIG.to_owned());
    }
    run(a, LogStyle::Prefixed, true, true, 0.0)
}

fn run(a: StartArgs, style: LogStyle, auto_exit: bool, log_files: bool, delay: f64) -> ExitCode {
    let code = match starter(a, log_files, delay) {
        Ok(start) => rpm2_core::runtime::main(
            &Home::from_env(),
            Options {
                style,
                auto_exit,
                start,
            },
        ),
        Err(message) => {
            eprintln!("[RPM2][ERROR] {message}");
            1
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Load and check the apps now (a bad config starts no daemon); the
/// returned closure starts them once the daemon serves.
fn starter(a: StartArgs, log_files: bool, delay: f64) -> Result<Starter, String> {
    if a.targets.is_empty() || a.targets == ["start"] {
        return Err(format!(
            "{NAME}: give an ecosystem file or a script to start ({NAME} start ecosystem.config.js)"
        ));
    }
    if a.targets.iter().any(|t| t == super::STDIN) {
        return Err(format!(
            "{NAME}: `-` (a config on stdin) is not supported; give a file"
        ));
    }
    if !(0.0..=86_400.0).contains(&delay) {
        return Err(format!(
            "--delay {delay}: expected seconds between 0 and 86400"
        ));
    }
    let mut overrides = super::start::overrides(&a);
    if !log_files {
        no_log_files(&mut overrides);
    }
    let opts = rpm2_config::load_options(a.only.clone(), a.env.clone(), overrides, None)
        .map_err(|e| e.to_string())?;
    let mut plan = StartPlan::new(a.targets.iter().cloned().map(StartTarget::Text), &opts)
        .map_err(|e| e.to_string())?;
    plan.update = crate::args::spec_update(
        a.name.as_deref(),
        a.interpreter_args.as_deref().or(a.node_args.as_deref()),
    );
    for w in &plan.warnings {
        eprintln!("[RPM2][WARN] {w}");
    }
    let what = a.targets.join(" ");
    Ok(Box::new(move |home: &Home| {
        std::thread::sleep(std::time::Duration::from_secs_f64(delay));
        let mut client = Client::connect(home).map_err(|e| e.to_string())?;
        let done = plan
            .run(&mut client, None, |apps| {
                for app in apps {
                    eprintln!(
                        "[RPM2] Starting {} in {} ({} instance{})",
                        app.script.display(),
                        app.exec_mode.pm2_name(),
                        app.instances,
                        if app.instances == 1 { "" } else { "s" }
                    );
                }
            })
            .map_err(|e| e.to_string())?;
        if done.started.is_empty() && done.restarted.is_empty() {
            return Err(format!("0 application started (no apps to run on {what})"));
        }
        for p in done.started.iter().filter(|p| boot_failure::came_up(p)) {
            eprintln!("[RPM2] [{}]({}) ✓", p.name, p.pm_id);
        }
        Ok(())
    }))
}

/// pm2-runtime writes no log files unless told where: the apps' output is
/// the runtime's own. Paths given with -o/-e/-l stay.
fn no_log_files(overrides: &mut Map<String, Value>) {
    for key in ["out_file", "error_file", "log_file"] {
        overrides
            .entry(key.to_owned())
            .or_insert_with(|| json!("/dev/null"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_well_formed_and_takes_pm2_runtime_arguments() {
        command().debug_assert();
        let m = command()
            .try_get_matches_from([
                "rpm2-runtime",
                "start",
                "app.js",
                "-i",
                "2",
                "--json",
                "--",
                "x",
            ])
            .expect("parses");
        let cli = RuntimeCli::from_arg_matches(&m).expect("fits");
        assert_eq!(cli.start.targets, ["start", "app.js"]);
        assert_eq!(cli.start.instances.as_deref(), Some("2"));
        assert_eq!(cli.start.args, ["x"]);
        assert!(cli.flags.json);
        assert!(command()
            .try_get_matches_from(["rpm2-runtime", "a.js", "--json", "--raw"])
            .is_err());
    }
}
