//! The daemon process: one per home, found through `rpc.sock` and guarded by
//! a lock on `pm2.pid`. Wires the supervisor, the RPC server and signals,
//! and shuts down in order: stop workers → remove socket and pid file → exit.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::paths::Home;
use crate::rpc::server::{serve, DaemonRequest};
use crate::supervisor::{ops, spawn_supervisor};

/// Set by a caller that spawns `rpm2 __daemon` as its own child: no fork,
/// and (Linux) SIGTERM when that caller dies.
pub const FOREGROUND_ENV: &str = "RPM2_DAEMON_FOREGROUND";

/// The daemon's command lines, shared by the `rpm2-daemon` executable and
/// `rpm2` itself (which still runs them: units written by `rpm2 startup`
/// and daemons started before `rpm2-daemon` existed name it):
/// `__daemon [--handover …]`, `__daemon --systemd` and `__handover-check`.
/// Returns the exit code, or `None` when `args` (after argv[0]) is none of
/// them.
pub fn run_command(args: &[std::ffi::OsString]) -> Option<i32> {
    let (first, rest) = args.split_first()?;
    if first == rpm2_client::DAEMON_SUBCOMMAND {
        if rest.len() == 1 && rest[0] == crate::systemd::FLAG {
            return Some(crate::systemd::main(&Home::from_env()));
        }
        return Some(main(&Home::from_env(), rest));
    }
    if first == crate::handover::CHECK_COMMAND {
        println!("{}", crate::handover::check_output());
        return Some(0);
    }
    None
}

/// Entry point of `rpm2 __daemon [--handover FD …]`: detach, then run
/// until killed; or, after `rpm2 update` executed this image, carry on
/// with what the previous one handed over. Returns the process exit code.
pub fn main(home: &Home, args: &[std::ffi::OsString]) -> i32 {
    if args.first().is_some_and(|a| a == "--handover") {
        return match crate::handover::arrive(args) {
            Some(arrival) => run_handed_over(home, arrival),
            None => 1,
        };
    }
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

/// Who started the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// A client (CLI, JS API), which then connects to it.
    Client,
    /// systemd, through the unit `rpm2 startup` writes (`systemd.rs`).
    Systemd,
}

/// Run the daemon in this process (after `main` detached it, or in the
/// foreground for the JS API's `connect(true)`).
pub fn run_foreground(home: &Home) -> i32 {
    run_as(home, Launch::Client)
}

pub(crate) fn run_as(home: &Home, launch: Launch) -> i32 {
    let Some((lock, previous)) = take_lock(home) else {
        if launch == Launch::Systemd {
            return crate::systemd::home_taken(home);
        }
        // Another daemon owns this home: it will answer the client.
        return 0;
    };
    init_log();
    crate::panics::install_hook();
    let code = block_on(run(home, previous, launch, lock.as_raw_fd()));
    close(home, lock);
    code
}

/// Run the daemon's future on the current-thread runtime it lives on;
/// 1 if that runtime cannot be built.
pub(crate) fn block_on(daemon: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(daemon),
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            1
        }
    }
}

/// Leave the home to the next daemon: socket and pid file gone, lock
/// released (`lock` holds it: a `Flock`, or the pid file handed over by
/// `rpm2 update`, whose lock came with the open file).
pub(crate) fn close<L>(home: &Home, lock: L) {
    let _ = std::fs::remove_file(home.rpc_socket());
    let _ = std::fs::remove_file(home.pid_file());
    drop(lock);
    tracing::info!("rpm2 daemon stopped");
}

/// The daemon log: its stdout (the CLI opened the file), stamped as
/// `PM2_LOG_DATE_FORMAT` says.
fn init_log() {
    init_log_to(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
        io::stdout,
    ));
}

/// The daemon log into `writer` (`rpm2-runtime`: its stderr).
pub(crate) fn init_log_to(writer: tracing_subscriber::fmt::writer::BoxMakeWriter) {
    use crate::log_time::{LocalFormat, LogTime, DATE_FORMAT_ENV};
    let fmt = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_writer(writer);
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
pub(crate) fn take_lock(home: &Home) -> Option<(Flock<std::fs::File>, Option<u32>)> {
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

/// A daemon serving its home, for its owner to drive (`run` below, or
/// `rpm2-runtime`).
pub(crate) struct Serving {
    pub sup: crate::supervisor::SupervisorHandle,
    /// `rpm2 kill` stopped every app: time to exit (or `update`: exec).
    pub exit_rx: mpsc::UnboundedReceiver<DaemonRequest>,
    /// The RPC socket (the server task owns it), kept across an update.
    pub rpc_fd: std::os::fd::RawFd,
    /// The RPC server's accept loop: it ends only by a panic (a bug).
    pub server: tokio::task::JoinHandle<()>,
}

/// Bind the socket, start the supervisor and the RPC server.
pub(crate) async fn open(home: &Home, previous_daemon: Option<u32>) -> Option<Serving> {
    let socket = home.rpc_socket();
    // We hold the lock, so a socket file here is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot bind {}: {e}", socket.display());
            return None;
        }
    };
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));
    let sup = spawn_supervisor(home.clone());
    crate::rotation::note_daemon_log(&home.daemon_log());
    crate::rotation::apply(home, sup.logs());
    crate::metrics_http::apply(home, &sup).await;
    // Only a daemon that died can have left apps running: then look for
    // them (a /proc walk of a few ms, before the first client is served).
    if let Some(pid) = previous_daemon.filter(|&pid| pid != std::process::id()) {
        tracing::warn!("the previous daemon (pid {pid}) died without stopping its apps");
        sup.notices()
            .previous_daemon_died(pid, home.dump_file().exists());
        sup.find_orphans(home.root());
    }
    let serving = serve_with(listener, sup, home);
    tracing::info!(
        "rpm2 daemon {} started (pid {}) in {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        home.root().display()
    );
    Some(serving)
}

/// Start the RPC server on `listener`.
fn serve_with(
    listener: UnixListener,
    sup: crate::supervisor::SupervisorHandle,
    home: &Home,
) -> Serving {
    let rpc_fd = listener.as_raw_fd();
    let (daemon_tx, exit_rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(listener, sup.clone(), home.clone(), daemon_tx));
    Serving {
        sup,
        exit_rx,
        rpc_fd,
        server,
    }
}

/// This image was executed by `rpm2 update`: take the lock, the RPC socket
/// and the table over, and carry on.
fn run_handed_over(home: &Home, arrival: crate::handover::Arrival) -> i32 {
    use std::os::fd::FromRawFd;
    init_log();
    crate::panics::install_hook();
    let fds = &arrival.snapshot.daemon;
    // SAFETY: fds the previous image left open for this one to own.
    let lock = unsafe { std::fs::File::from_raw_fd(fds.lock) };
    let rpc = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fds.rpc) };
    if let Some(fd) = fds.previous_image {
        // SAFETY: as above; only needed had this image refused.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    }
    let launch = if arrival.snapshot.systemd {
        Launch::Systemd
    } else {
        Launch::Client
    };
    let from = arrival.snapshot.from_version.clone();
    let code = block_on(async {
        let listener = match rpc
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(rpc))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("update: the RPC socket did not come through: {e}");
                return 1;
            }
        };
        let snapshot = arrival.snapshot;
        let workers = snapshot.table.runs.len();
        let sup = crate::supervisor::spawn_supervisor_restored(
            home.clone(),
            snapshot.table,
            snapshot.listeners,
        );
        crate::rotation::note_daemon_log(&home.daemon_log());
        crate::rotation::apply(home, sup.logs());
        crate::metrics_http::apply(home, &sup).await;
        tracing::info!(
            "rpm2 daemon {} took over in place from {from}{} (pid {}), {workers} processes kept",
            env!("CARGO_PKG_VERSION"),
            arrival
                .refused
                .as_deref()
                .map_or_else(String::new, |why| format!(" (update refused: {why})")),
            std::process::id()
        );
        serve_until_done(
            home,
            serve_with(listener, sup, home),
            launch,
            lock.as_raw_fd(),
        )
        .await
    });
    close(home, lock);
    code
}

async fn run(
    home: &Home,
    previous_daemon: Option<u32>,
    launch: Launch,
    lock_fd: std::os::fd::RawFd,
) -> i32 {
    let Some(serving) = open(home, previous_daemon).await else {
        return 1;
    };
    serve_until_done(home, serving, launch, lock_fd).await
}

/// Serve clients and signals until the daemon stops (or hands over).
async fn serve_until_done(
    home: &Home,
    serving: Serving,
    launch: Launch,
    lock_fd: std::os::fd::RawFd,
) -> i32 {
    let Serving {
        sup,
        exit_rx: mut daemon_rx,
        rpc_fd,
        mut server,
    } = serving;
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
    if launch == Launch::Systemd {
        tokio::spawn(crate::systemd::resurrect_then_ready(
            sup.clone(),
            home.clone(),
        ));
    }
    let on_signal = |why| shutdown(&sup, home, why, launch);
    loop {
        tokio::select! {
            request = daemon_rx.recv() => {
                sup.logs().sync().await;
                let Some(DaemonRequest::Handover(mut prepared)) = request else {
                    return 0;
                };
                prepared.snapshot.systemd = launch == Launch::Systemd;
                let e = crate::handover::exec(*prepared, lock_fd, rpc_fd);
                tracing::error!("update failed: {e}");
                return 1;
            }
            _ = term.recv() => return on_signal("SIGTERM").await,
            _ = int.recv() => return on_signal("SIGINT").await,
            _ = quit.recv() => return on_signal("SIGQUIT").await,
            _ = usr2.recv() => {
                tracing::info!("SIGUSR2: reopening log files");
                let _ = sup.logs().reopen_all().await;
                let _ = crate::rotation::reopen_daemon_log(&home.daemon_log());
            }
            _ = hup.recv() => {}
            // The accept loop only ends by a panic (a bug, logged by the
            // hook): nobody could reach this daemon any more, so stop as on
            // SIGTERM, and say so in the exit status.
            ended = &mut server => {
                tracing::error!("the rpc server ended ({ended:?}): shutting down");
                on_signal("rpc server failure").await;
                return 1;
            }
        }
    }
}

/// pm2 saves the process list, then stops every app, on a fatal signal.
/// Under systemd it only stops them (`systemd.rs` says why).
async fn shutdown(
    sup: &crate::supervisor::SupervisorHandle,
    home: &Home,
    why: &str,
    launch: Launch,
) -> i32 {
    if launch == Launch::Systemd {
        tracing::info!("{why} received: stopping every app");
        crate::systemd::stopping();
    } else {
        tracing::info!("{why} received: saving the process list and stopping every app");
        ops::save_quietly(sup, home).await;
    }
    let _ = ops::stop_all(sup).await;
    sup.logs().sync().await;
    0
}
