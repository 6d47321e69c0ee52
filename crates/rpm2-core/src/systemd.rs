//! `rpm2 __daemon --systemd`: the daemon as the main process of the unit
//! that `rpm2 startup` writes (`Type=notify`).
//!
//! pm2's unit is `Type=forking`: `pm2 resurrect` spawns a daemon that
//! forks away, and systemd follows it through `PIDFile=`. Here systemd
//! starts the daemon itself, so it stays in the foreground (no fork, no
//! setsid: systemd tracks it and its cgroup), and says `READY=1` once the
//! list saved by `rpm2 save` is resurrected and its apps are up — units
//! ordered `After=` this one start when the apps serve.
//!
//! - Log: the daemon's own log goes to stdout, which systemd gives to
//!   journald (`journalctl -u rpm2-<user>`): journald stamps, keeps and
//!   rotates it, and `PM2_LOG_DATE_FORMAT` still applies. `pm2.log` is not
//!   written (rotation and `reloadLogs` leave a stdout that is not the
//!   daemon log alone). The apps' logs are files, as always.
//! - Stop: `systemctl stop` sends SIGTERM to the daemon alone
//!   (`KillMode=mixed`); it stops every app, as pm2's `ExecStop=pm2 kill`
//!   does, and exits 0. Unlike a SIGTERM to a daemon started by the CLI,
//!   it does not save the list first: pm2's `kill` does not either, and a
//!   shutdown must not replace what the user saved with whatever state the
//!   apps are in while the machine goes down.

use rpm2_proto::{ErrorCode, Request, Response, WorkerStatus};
use sd_notify::NotifyState;

use crate::daemon::Launch;
use crate::paths::Home;
use crate::supervisor::{ops, SupervisorHandle};

/// The flag after `__daemon` that selects this mode.
pub const FLAG: &str = "--systemd";

/// Entry point of `rpm2 __daemon --systemd`. Returns the exit code.
pub fn main(home: &Home) -> i32 {
    if let Err(e) = home.ensure() {
        eprintln!("rpm2 daemon: cannot create {}: {e}", home.root().display());
        return 1;
    }
    crate::daemon::run_as(home, Launch::Systemd)
}

/// Another daemon holds the home's lock: under systemd that is a failure
/// (the unit would otherwise look started while supervising nothing).
pub(crate) fn home_taken(home: &Home) -> i32 {
    eprintln!(
        "rpm2 daemon: another rpm2 daemon already runs in {}; stop it (`rpm2 save && rpm2 kill`) and start the unit again",
        home.root().display()
    );
    1
}

/// Resurrect the saved list, then tell systemd the service is ready. A
/// missing or broken dump is logged, not fatal: the daemon still serves.
pub(crate) async fn resurrect_then_ready(sup: SupervisorHandle, home: Home) {
    let status = match ops::handle(&sup, &home, Request::Resurrect).await {
        Response::Processes { processes } => {
            let online = processes
                .iter()
                .filter(|p| p.pm2_env.status == WorkerStatus::Online)
                .count();
            format!("{online} of {} processes online", processes.len())
        }
        Response::Error { error } if error.code == ErrorCode::NoDump => {
            "no saved process list (`rpm2 save` makes one)".to_owned()
        }
        Response::Error { error } => {
            tracing::error!("resurrect at start failed: {}", error.message);
            format!("resurrect failed: {}", error.message)
        }
        other => format!("resurrect answered {other:?}"),
    };
    tracing::info!("systemd: ready ({status})");
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tell systemd the daemon is stopping its apps.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd (NOTIFY_SOCKET): {e}");
    }
}
