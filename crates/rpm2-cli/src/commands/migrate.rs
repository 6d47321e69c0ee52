//! Moving over from pm2: `resurrect --from <pm2 home or dump.pm2>` starts
//! pm2's saved list in rpm2's daemon, and `install pm2-logrotate` (a line of
//! many deploy scripts) succeeds, since rotation is built in. Other pm2
//! modules are refused: rpm2 runs none.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use rpm2_proto::ErrorCode;

use super::{boot_failure, CmdResult, Ctx};
use crate::error::{exit, CliError};

/// The one pm2 module rpm2 stands in for.
const LOGROTATE: &str = "pm2-logrotate";

/// pm2-logrotate's keys, its defaults, and what each does.
const LOGROTATE_KEYS: &[(&str, &str, &str)] = &[
    ("max_size", "10M", "rotate a log above this size (K, M, G)"),
    ("retain", "30", "rotated files kept per log"),
    ("compress", "false", "gzip the rotated files"),
    (
        "dateFormat",
        "YYYY-MM-DD_HH-mm-ss",
        "date in rotated names (<name>-out__<date>.log)",
    ),
    (
        "rotateInterval",
        "'0 0 * * *'",
        "also rotate on this cron schedule",
    ),
    ("workerInterval", "30", "seconds between size checks"),
    ("rotateModule", "true", "rotate rpm2's own daemon log too"),
];

/// `install <module>` and its aliases, with pm2's flags (accepted, unused).
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Module name (`pm2-logrotate`, optionally `@<version>`)
    pub module: String,
    /// pm2: the module is a local tarball
    #[arg(long)]
    pub tarball: bool,
    /// pm2: run yarn install before starting the module
    #[arg(long)]
    pub install: bool,
    /// pm2: running in a docker container
    #[arg(long)]
    pub docker: bool,
    /// pm2: install in the v1 manner
    #[arg(long)]
    pub v1: bool,
    /// pm2: keep a backup of the module
    #[arg(long, num_args = 0..=1, value_name = "TIME")]
    pub safe: Option<Option<String>>,
}

/// `pm2-logrotate`, `pm2-logrotate@3.0.0`, `pm2-logrotate@latest`.
fn is_logrotate(module: &str) -> bool {
    let name = module.split_once('@').map_or(module, |(name, _)| name);
    name == LOGROTATE
}

fn not_supported(module: &str, what: &str) -> CliError {
    CliError::new(
        ErrorCode::BadRequest,
        format!(
            "{what} {module}: rpm2 does not run pm2 modules (modules are not supported). \
             Log rotation, the usual one, is built in: `rpm2 install {LOGROTATE}` lists its settings"
        ),
    )
}

pub fn install(ctx: &Ctx, a: &InstallArgs) -> CmdResult {
    if !is_logrotate(&a.module) {
        return Err(not_supported(&a.module, "cannot install"));
    }
    ctx.style.info(&format!(
        "{LOGROTATE} is built into rpm2: its daemon rotates the logs it writes, \
         nothing to install and no module process"
    ));
    ctx.style
        .info(&format!("It is configured with {LOGROTATE}'s own keys:"));
    if !ctx.style.silent {
        let width = LOGROTATE_KEYS
            .iter()
            .map(|(k, v, _)| k.len() + v.len())
            .max()
            .unwrap_or(0);
        for (key, default, what) in LOGROTATE_KEYS {
            let pad = width - key.len() - default.len();
            println!("  rpm2 set {LOGROTATE}:{key} {default}{:pad$}   {what}", "");
        }
    }
    ctx.style.info(&format!(
        "(values shown are {LOGROTATE}'s defaults; `rpm2 get {LOGROTATE}` prints the current ones)"
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(ctx: &Ctx, module: &str) -> CmdResult {
    if !is_logrotate(module) {
        return Err(not_supported(module, "cannot uninstall"));
    }
    ctx.style.info(&format!(
        "{LOGROTATE} is built into rpm2: nothing to uninstall. Rotation follows the \
         {LOGROTATE}:* settings (`rpm2 get {LOGROTATE}`; `rpm2 unset {LOGROTATE}:<key>` \
         removes one)"
    ));
    Ok(ExitCode::SUCCESS)
}

/// pm2's saved list, started in rpm2's daemon: apps whose name is already
/// known are left alone (as `resurrect`), apps stopped in pm2 are
/// registered stopped. A bad dump starts nothing.
pub fn resurrect_from(ctx: &Ctx, from: &str) -> CmdResult {
    let from = if from.is_empty() {
        pm2_home()
    } else {
        from.into()
    };
    let opts = rpm2_config::load_options(Vec::<String>::new(), None, serde_json::Map::new(), None)?;
    let saved = rpm2_client::pm2_dump::load(&from, &opts)?;
    ctx.style.info(&format!(
        "Restoring pm2's processes located in {}",
        saved.file.display()
    ));
    for w in &saved.dump.loaded.warnings {
        ctx.style.warn(w);
    }
    let apps = saved.dump.loaded.apps;
    let stopped = saved.dump.stopped;
    let mut client = ctx.client()?;
    if apps.is_empty() {
        ctx.style.info("No process in that list");
        ctx.style.table(&client.list()?);
        return Ok(ExitCode::SUCCESS);
    }
    let known: Vec<String> = client.list()?.into_iter().map(|p| p.name).collect();
    let marks = boot_failure::LogMarks::before(&ctx.home.logs_dir(), &apps);
    for app in &apps {
        let note = if known.contains(&app.name) {
            "already known, left as it is"
        } else if stopped.contains(&app.name) {
            "restored, stopped as in pm2"
        } else {
            "restored"
        };
        ctx.style.info(&format!(
            "Process {} ({}) {note}",
            app.name,
            app.script.display()
        ));
    }
    let started = client.start_saved(apps, &stopped)?;
    logrotate_settings(ctx, &saved.home);
    let (_, failed): (Vec<_>, Vec<_>) = started
        .into_iter()
        .filter(|p| !stopped.contains(&p.name))
        .partition(boot_failure::came_up);
    ctx.style.table(&client.list()?);
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    boot_failure::report(&failed, &marks);
    Ok(ExitCode::from(exit::ERROR))
}

/// Where pm2 keeps its files: `$PM2_HOME`, else `~/.pm2`.
fn pm2_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("PM2_HOME").filter(|h| !h.is_empty()) {
        return home.into();
    }
    let user_home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&user_home).join(".pm2")
}

/// pm2-logrotate's values in pm2's `set` store, as the commands that give
/// them to rpm2's rotation (printed, not run: the user decides).
fn logrotate_settings(ctx: &Ctx, pm2_home: &Path) {
    let file = pm2_home.join("module_conf.json");
    let Ok(conf) = rpm2_client::module_conf::load(&file) else {
        return;
    };
    let Some(serde_json::Value::Object(values)) = conf.get(LOGROTATE) else {
        return;
    };
    if values.is_empty() {
        return;
    }
    ctx.style.info(&format!(
        "pm2 had {LOGROTATE} settings ({}); rotation is built into rpm2 and takes the same keys:",
        file.display()
    ));
    if ctx.style.silent {
        return;
    }
    for (key, value) in values {
        let text = rpm2_client::module_conf::text(value);
        let quoted = if text.contains(char::is_whitespace) || text.is_empty() {
            format!("'{text}'")
        } else {
            text
        };
        println!("  rpm2 set {LOGROTATE}:{key} {quoted}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrotate_names() {
        assert!(is_logrotate("pm2-logrotate"));
        assert!(is_logrotate("pm2-logrotate@2.7.0"));
        assert!(!is_logrotate("pm2-logrotate-s3"));
        assert!(!is_logrotate("@pm2/logrotate"));
        assert!(!is_logrotate("pm2-server-monit"));
    }
}
