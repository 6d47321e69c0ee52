//! The daemon process: one per home, found through `rpc.sock` and guarded by
//! a lock on `pm2.pid`. Wires the supervisor, the RPC server and signals,
//! and shuts down in order: stop workers → remove socket and pid file → exit.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;

use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::paths::Home;
use crate::rpc::server::serve;
use crate::supervisor::{ops, spawn_supervisor};

/// Set by a caller that spawns `rpm2 __daemon` as its own child: no fork,
/// and (Linux) SIGTERM when that caller dies.
pub const FOREGROUND_ENV: &str = "RPM2_DAEMON_FOREGROUND";

/// Entry point of `rpm2 __daemon`: detach, then run until killed.
/// Returns the process exit code.
pub fn main(home: &Home) -> i32 {
    if let Err(e) = home.ensure() {
        eprintln!("rpm2 daemon: cannot create {}: {e}", home.root().display());
        return 1;
    }
    // The JS API's `connect(true)` (pm2's noDaemon): stay in the foreground
    // as the caller's child and die with it.
    if std::env::var_os(FOREGROUND_ENV).is_some() {
        std::env::remove_var(FOREGROUND_ENV);
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
        return run_foreground(home);
    }
    // Fork: the parent (the CLI's child) exits now and is reaped by the CLI;
    // the daemon is left in its own session, owned by init.
    // SAFETY: single-threaded here (no runtime started yet).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            eprintln!("rpm2 daemon: fork failed: {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    run_foreground(home)
}

/// Run the daemon in this process (after `main` detached it, or in the
/// foreground for the JS API's `connect(true)`).
pub fn run_foreground(home: &Home) -> i32 {
    let Some((lock, previous)) = take_lock(home) else {
        // Another daemon owns this home: it will answer the client.
        return 0;
    };
    init_log();
    crate::panics::install_hook();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(run(home, previous));
    let _ = std::fs::remove_file(home.rpc_socket());
    let _ = std::fs::remove_file(home.pid_file());
    drop(lock);
    tracing::info!("rpm2 daemon stopped");
    code
}

/// The daemon log: its stdout (the CLI opened the file), stamped as
/// `PM2_LOG_DATE_FORMAT` says.
fn init_log() {
    use crate::log_time::{LocalFormat, LogTime, DATE_FORMAT_ENV};
    let fmt = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_writer(io::stdout);
    let var = std::env::var(DATE_FORMAT_ENV).ok();
    let (time, problem) = match LogTime::from_var(var.as_deref()) {
        Ok(t) => (t, None),
        Err(e) => (LogTime::Default, Some(e)),
    };
    match time {
        LogTime::Default => fmt.init(),
        LogTime::Off => fmt.without_time().init(),
        LogTime::Format(f) => fmt.with_timer(LocalFormat(f)).init(),
    }
    if let Some(e) = problem {
        tracing::warn!("{e}: default timestamps used");
    }
}

/// Hold an exclusive lock on the pid file for the daemon's life. A stale
/// pid file (crashed daemon) is simply overwritten: its lock died with it.
fn take_lock(home: &Home) -> Option<(Flock<std::fs::File>, Option<u32>)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(home.pid_file())
        .ok()?;
    let mut file = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    // A pid left in the file is a daemon that died without cleaning up.
    let mut previous = String::new();
    let _ = std::io::Read::read_to_string(&mut *file, &mut previous);
    let previous = previous.trim().parse::<u32>().ok();
    file.set_len(0).ok()?;
    std::io::Seek::rewind(&mut *file).ok()?;
    write!(file, "{}", std::process::id()).ok()?;
    Some((file, previous))
}

async fn run(home: &Home, previous_daemon: Option<u32>) -> i32 {
    let socket = home.rpc_socket();
    // We hold the lock, so a socket file here is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot bind {}: {e}", socket.display());
            return 1;
        }
    };
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));
    let sup = spawn_supervisor(home.clone());
    crate::rotation::note_daemon_log(&home.daemon_log());
    crate::rotation::apply(home, sup.logs());
    // Only a daemon that died can have left apps running: then look for
    // them (a /proc walk of a few ms, before the first client is served).
    if let Some(pid) = previous_daemon.filter(|&pid| pid != std::process::id()) {
        tracing::warn!("the previous daemon (pid {pid}) died without stopping its apps");
        sup.notices()
            .previous_daemon_died(pid, home.dump_file().exists());
        sup.find_orphans(home.root());
    }
    let (daemon_tx, mut daemon_rx) = mpsc::unbounded_channel();
    let mut serving = tokio::spawn(serve(listener, sup.clone(), home.clone(), daemon_tx));
    tracing::info!(
        "rpm2 daemon {} started (pid {}) in {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        home.root().display()
    );

    let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr2), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return 1;
    };
    loop {
        tokio::select! {
            _ = daemon_rx.recv() => {
                sup.logs().sync().await;
                return 0;
            }
            _ = term.recv() => return shutdown(&sup, home, "SIGTERM").await,
            _ = int.recv() => return shutdown(&sup, home, "SIGINT").await,
            _ = quit.recv() => return shutdown(&sup, home, "SIGQUIT").await,
            _ = usr2.recv() => {
                tracing::info!("SIGUSR2: reopening log files");
                let _ = sup.logs().reopen_all().await;
                let _ = crate::rotation::reopen_daemon_log(&home.daemon_log());
            }
            _ = hup.recv() => {}
            // The accept loop only ends by a panic (a bug, logged by the
            // hook): nobody could reach this daemon any more, so save and
            // stop as on SIGTERM, and say so in the exit status.
            ended = &mut serving => {
                tracing::error!("the rpc server ended ({ended:?}): shutting down");
                shutdown(&sup, home, "rpc server failure").await;
                return 1;
            }
        }
    }
}

/// pm2 saves the process list, then stops every app, on a fatal signal.
async fn shutdown(sup: &crate::supervisor::SupervisorHandle, home: &Home, why: &str) -> i32 {
    tracing::info!("{why} received: saving the process list and stopping every app");
    ops::save_quietly(sup, home).await;
    let _ = ops::stop_all(sup).await;
    sup.logs().sync().await;
    0
}
