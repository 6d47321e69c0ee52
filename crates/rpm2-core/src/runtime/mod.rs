//! `rpm2-runtime` (pm2-runtime; also `rpm2 start --no-daemon`): the daemon
//! in the foreground of this very process, for containers and service
//! managers. It starts the given apps, prints their output on its own
//! stdout/stderr, reaps orphans (PID 1, or a child subreaper), and ends
//! with them:
//! - SIGTERM, SIGINT or SIGQUIT: every worker drains and stops (the stop
//!   path: drain preload, `disconnect`, SIGINT, SIGKILL after
//!   `kill_timeout`), then it exits;
//! - every app stopped or errored (unless `auto_exit` is off): it exits;
//! - `rpm2 kill` from another shell: it exits.
//!
//! The exit code is 0 when every worker's last run ended cleanly, else the
//! code of the first one (in time) that did not (`supervisor::exits`).
//! The RPC socket serves as always: `rpm2 list` and `require('rpm2')`
//! work against it.

pub mod output;
pub mod reaper;

use std::sync::Arc;
use std::time::Duration;

use rpm2_proto::WorkerStatus;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{oneshot, Notify};

pub use output::LogStyle;

use crate::daemon::{self, Serving};
use crate::paths::Home;
use crate::supervisor::{ops, Call, SupervisorHandle};

/// Starts the apps once the daemon serves: on a thread of its own, as a
/// client of the daemon's socket. `Err` is the message to print.
pub type Starter = Box<dyn FnOnce(&Home) -> Result<(), String> + Send>;

pub struct Options {
    pub style: LogStyle,
    /// Exit once every app has stopped or errored.
    pub auto_exit: bool,
    pub start: Starter,
}

/// How the runtime came to an end.
enum End {
    Signal(&'static str),
    AllDone,
    /// `rpm2 kill` stopped everything already.
    Killed,
    StartFailed,
}

/// Pending exits of the pumps: they pause up to 50 ms between reads, so
/// the last lines of stopped apps reach the bus within this.
const LAST_LINES: Duration = Duration::from_millis(150);
/// How often the runtime looks for orphans and finished apps besides the
/// events that tell it to (a lagging bus reader may miss one).
const TICK: Duration = Duration::from_secs(2);

/// Run until the apps are done; returns the process exit code.
pub fn main(home: &Home, opts: Options) -> i32 {
    if let Err(e) = home.ensure() {
        eprintln!("[RPM2][ERROR] cannot create {}: {e}", home.root().display());
        return 1;
    }
    if std::process::id() != 1 {
        if let Err(e) = reaper::become_subreaper() {
            eprintln!("[RPM2][WARN] orphans of the apps go to init, not to rpm2-runtime: {e}");
        }
    }
    let Some((lock, previous)) = daemon::take_lock(home) else {
        eprintln!(
            "[RPM2][ERROR] a daemon already runs for RPM2_HOME={} (stop it with `rpm2 kill`, or give \
             rpm2-runtime a home of its own)",
            home.root().display()
        );
        return 1;
    };
    // stdout carries the apps' lines only (pure JSON with --json).
    daemon::init_log_to(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
        std::io::stderr,
    ));
    let code = daemon::block_on(run(home, previous, opts));
    daemon::close(home, lock);
    code
}

async fn run(home: &Home, previous: Option<u32>, opts: Options) -> i32 {
    crate::handover::refuse_updates(
        "rpm2-runtime is not updated in place: its container is replaced with a new image as a whole",
    );
    let Some(Serving {
        sup, mut exit_rx, ..
    }) = daemon::open(home, previous).await
    else {
        return 1;
    };
    let lifecycle = Arc::new(Notify::new());
    // Subscribed before any app starts: no line is missed.
    let printer = match output::Printer::start(sup.subscribe(), opts.style, Arc::clone(&lifecycle))
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot start the output thread: {e}");
            return 1;
        }
    };
    let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr2), Ok(mut hup), Ok(mut child)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
        signal(SignalKind::child()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return 1;
    };
    reaper::reap_orphans();

    let (started_tx, mut started_rx) = oneshot::channel();
    let start_home = home.clone();
    let start = opts.start;
    let spawned = std::thread::Builder::new()
        .name("rpm2-start".to_owned())
        .spawn(move || {
            let _ = started_tx.send(start(&start_home));
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the apps: {e}");
        return 1;
    }
    let mut started = false;
    let mut tick = tokio::time::interval(TICK);
    let end = loop {
        tokio::select! {
            result = &mut started_rx, if !started => match result {
                Ok(Ok(())) => {
                    started = true;
                    lifecycle.notify_one();
                }
                Ok(Err(message)) => {
                    eprintln!("[RPM2][ERROR] {message}");
                    break End::StartFailed;
                }
                Err(_) => break End::StartFailed,
            },
            _ = term.recv() => break End::Signal("SIGTERM"),
            _ = int.recv() => break End::Signal("SIGINT"),
            _ = quit.recv() => break End::Signal("SIGQUIT"),
            _ = usr2.recv() => {
                tracing::info!("SIGUSR2: reopening log files");
                let _ = sup.logs().reopen_all().await;
            }
            _ = hup.recv() => {}
            _ = child.recv() => {
                reaper::reap_orphans();
            }
            () = lifecycle.notified(), if started && opts.auto_exit => {
                if all_done(&sup).await {
                    break End::AllDone;
                }
            }
            _ = tick.tick() => {
                reaper::reap_orphans();
                if started && opts.auto_exit && all_done(&sup).await {
                    break End::AllDone;
                }
            }
            _ = exit_rx.recv() => break End::Killed,
        }
    };
    // Before the stop: stopping an errored worker makes it `stopped`.
    let errored = first_errored(&sup).await;
    match end {
        End::Signal(name) => {
            tracing::info!("{name} received: draining and stopping every app");
            ops::stop_all(&sup).await;
        }
        End::AllDone => {
            tracing::info!("every app has stopped or errored: rpm2-runtime exits");
            ops::stop_all(&sup).await;
        }
        End::StartFailed => {
            ops::stop_all(&sup).await;
        }
        End::Killed => {}
    }
    tokio::time::sleep(LAST_LINES).await;
    printer.finish();
    sup.logs().sync().await;
    if matches!(end, End::StartFailed) {
        return 1;
    }
    exit_code(&sup, errored)
}

/// No worker runs or is about to (a pending restart counts as running).
async fn all_done(sup: &SupervisorHandle) -> bool {
    sup.call(|reply| Call::Info { ids: None, reply })
        .await
        .is_ok_and(|list| {
            list.iter().all(|p| {
                matches!(
                    p.pm2_env.status,
                    WorkerStatus::Stopped | WorkerStatus::Errored
                )
            })
        })
}

/// A worker left `errored` (too many unstable restarts), as `[name:id]`.
async fn first_errored(sup: &SupervisorHandle) -> Option<String> {
    sup.call(|reply| Call::Info { ids: None, reply })
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.pm2_env.status == WorkerStatus::Errored)
        .map(|p| format!("[{}:{}]", p.name, p.pm_id))
}

/// 0 when every worker's last run ended cleanly; else the first failure's
/// code; 1 for a worker left `errored` by runs that each ended with 0.
fn exit_code(sup: &SupervisorHandle, errored: Option<String>) -> i32 {
    if let Some((exit, code)) = sup.exits().first_failure() {
        let how = match (exit.code, exit.signal) {
            (Some(c), _) => format!("code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "an unknown status".to_owned(),
        };
        tracing::info!(
            "exit code {code}: [{}:{}] was the first app to fail ({how})",
            exit.app,
            exit.pm_id
        );
        return code;
    }
    if let Some(worker) = errored {
        tracing::info!("exit code 1: {worker} is errored");
        return 1;
    }
    0
}
