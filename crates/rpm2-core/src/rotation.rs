//! Applies rpm2's own settings (log rotation, pm2-logrotate's keys in
//! `module_conf.json`) to the running daemon: at start, and when `set` or
//! `unset` sends `ReloadSettings`. Size-based rotation happens in the log
//! writers as they write (`rpm2_logs`); this module hands them the policy
//! and runs the schedule: every `rotateInterval` (cron) every non-empty log
//! file rotates, and every `workerInterval` seconds the daemon's own log
//! (written by `tracing` to stdout, not through a writer) is checked
//! against `max_size`.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rpm2_client::logrotate::{LogRotate, Retain};
use rpm2_client::module_conf;
use rpm2_logs::rotate::{rotate_path, NameState};
use rpm2_logs::{LogRegistry, RotatePolicy};

use crate::paths::Home;

/// Reads the settings and applies them; a store that cannot be read keeps
/// the settings in force (and says why). Returns the problems found, for
/// the caller that asked.
pub fn apply(home: &Home, logs: &LogRegistry) -> Vec<String> {
    let conf = match module_conf::load(&home.module_conf_file()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("settings not applied: {e}");
            return vec![e.to_string()];
        }
    };
    let (settings, problems) = LogRotate::from_conf(&conf);
    for p in &problems {
        tracing::warn!("{p}: the default is used");
    }
    if !settings.enabled {
        logs.set_rotation(None);
        logs.set_schedule(None);
        return problems;
    }
    let strftime = rpm2_config::dayjs_to_strftime(&settings.date_format);
    let retain = match settings.retain {
        Retain::All => None,
        Retain::Count(n) => Some(n),
    };
    let policy = match RotatePolicy::new(
        Some(settings.max_size),
        retain,
        settings.compress,
        &strftime,
    ) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("log rotation settings not applied: {e}");
            return vec![e];
        }
    };
    logs.set_rotation(Some(policy.clone()));
    let cron = croner::Cron::from_str(&settings.rotate_interval).ok();
    let every = Duration::from_secs(settings.worker_interval.max(1));
    let task = tokio::spawn(schedule(
        logs.clone(),
        home.daemon_log(),
        policy,
        cron,
        every,
    ));
    logs.set_schedule(Some(task));
    problems
}

async fn schedule(
    logs: LogRegistry,
    daemon_log: PathBuf,
    policy: RotatePolicy,
    cron: Option<croner::Cron>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = chrono::Local::now();
        let until_cron = cron
            .as_ref()
            .and_then(|c| c.find_next_occurrence(&now, false).ok())
            .map(|next| (next - now).to_std().unwrap_or(Duration::ZERO));
        let cron_sleep = async {
            match until_cron {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cron_sleep => {
                logs.rotate_all().await;
                rotate_daemon_log(&daemon_log, &policy, true).await;
            }
            _ = tick.tick() => rotate_daemon_log(&daemon_log, &policy, false).await,
        }
    }
}

/// Whether the daemon's stdout is its log file (the CLI started it that
/// way); a daemon in the foreground of a JS caller writes elsewhere and
/// leaves its stdout alone. Decided once, at start.
static OWNS_LOG: OnceLock<bool> = OnceLock::new();
static NAMES: Mutex<Option<NameState>> = Mutex::new(None);

/// Records whether stdout is the daemon log; call once at start.
pub fn note_daemon_log(path: &Path) {
    let same = std::fs::metadata(path).ok().is_some_and(|m| {
        nix::sys::stat::fstat(std::io::stdout().as_raw_fd())
            .is_ok_and(|s| s.st_dev == m.dev() && s.st_ino == m.ino())
    });
    let _ = OWNS_LOG.set(same);
}

/// Opens the daemon log by its path again and puts it on stdout and stderr
/// (pm2's `reloadLogs`, after an external logrotate renamed it).
pub fn reopen_daemon_log(path: &Path) -> std::io::Result<()> {
    if !OWNS_LOG.get().copied().unwrap_or(false) {
        return Ok(());
    }
    let file = rpm2_logs::safe_open::open_append(path)?;
    for fd in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors, which stay open; the
        // old file they pointed to is released by the kernel.
        if unsafe { nix::libc::dup2(file.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Rotates the daemon log if it reached `max_size` (or, `force`, if it is
/// not empty).
async fn rotate_daemon_log(path: &Path, policy: &RotatePolicy, force: bool) {
    if !OWNS_LOG.get().copied().unwrap_or(false) {
        return;
    }
    let path = path.to_path_buf();
    let policy = policy.clone();
    let result = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let due = size > 0 && (force || policy.max_size.is_some_and(|max| size >= max));
        if !due {
            return Ok(());
        }
        let mut names = NAMES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rotate_path(&path, &policy, names.get_or_insert_with(NameState::default))?;
        reopen_daemon_log(&path)
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!("cannot rotate the daemon log: {e}");
    }
}
