//! Building and starting a worker process: interpreter, args, cwd, env,
//! its own process group, stdout/stderr pipes, and — for Node — the IPC
//! channel (`NODE_CHANNEL_FD`), plus `NODE_UNIQUE_ID` in cluster mode.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;

use nix::fcntl::{fcntl, FcntlArg};
use rpm2_proto::AppSpec;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// What a started worker hands back to the supervisor.
pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    /// Its output pipes; none with `disable_logs` (output goes to /dev/null).
    pub output: Option<(ChildStdout, ChildStderr)>,
    /// Our end of its IPC channel (Node apps), for `rpm2_node_ipc::open_into`.
    pub channel: Option<OwnedFd>,
}

/// Start one process of `spec` with the final environment `env`.
/// `cluster_id` is `NODE_UNIQUE_ID` (cluster workers only; never set
/// without the channel, or `listen()` silently never completes).
/// `marker` is set as `RPM2_RUN_ID`, inherited by everything it starts
/// (see `tree.rs`).
pub fn spawn(
    spec: &AppSpec,
    env: &BTreeMap<String, String>,
    cluster_id: Option<u32>,
    marker: &str,
    preload: Option<&std::path::Path>,
) -> io::Result<Spawned> {
    let run_as = super::identity::resolve(spec.uid.as_deref(), spec.gid.as_deref())
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    let (program, args) = command_line(spec, preload);
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(output_stdio(spec))
        .stderr(output_stdio(spec))
        // Its own group, so stop signals reach `npm start` → `node` chains.
        .process_group(0)
        .kill_on_drop(false);

    // Only trees the daemon may end are marked (pm2's `treekill`).
    if spec.treekill {
        cmd.env(super::tree::RUN_MARKER_ENV, marker);
    }
    let channel_ends = if spec.node {
        let (parent, child) = rpm2_node_ipc::channel_pair()?;
        // The child end is inherited at its own number (Node reads it from
        // NODE_CHANNEL_FD): no code of ours runs between fork and exec, so
        // the standard library can use posix_spawn (vfork) — a restart
        // starts sooner than after a fork that copies the daemon's pages.
        // Another thread spawning meanwhile could inherit a copy of the
        // child end; it cannot hide the daemon's EOF from the worker.
        rpm2_node_ipc::set_inheritable(child.as_fd())?;
        for (k, v) in rpm2_node_ipc::child_env(child.as_raw_fd()) {
            cmd.env(k, v);
        }
        if let Some(id) = cluster_id {
            cmd.env("NODE_UNIQUE_ID", id.to_string());
        }
        Some((parent, child))
    } else {
        None
    };

    if let Some(run_as) = run_as {
        if let Some(home) = &run_as.home {
            cmd.env("HOME", home);
        }
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid).
        unsafe {
            cmd.pre_exec(move || super::identity::assume(&run_as));
        }
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0);
    let output = child.stdout.take().zip(child.stderr.take());
    if let Some((stdout, stderr)) = &output {
        enlarge_pipe(stdout.as_raw_fd());
        enlarge_pipe(stderr.as_raw_fd());
    }
    let channel = match channel_ends {
        Some((parent, child_end)) => {
            // Our copy of the worker's end must go, or the worker never sees EOF.
            drop::<OwnedFd>(child_end);
            Some(parent)
        }
        None => None,
    };
    Ok(Spawned {
        child,
        pid,
        output,
        channel,
    })
}

/// pm2's `disable_logs`: no file, no bus, so no pipe to read either.
fn output_stdio(spec: &AppSpec) -> Stdio {
    if spec.disable_logs {
        Stdio::null()
    } else {
        Stdio::piped()
    }
}

/// Room for a burst of output: the log pump reads every 10 ms at most, and a
/// chatty app must not block on a full 64 KiB pipe meanwhile. Pipe pages are
/// allocated only as they fill, so an idle worker costs nothing more.
fn enlarge_pipe(fd: i32) {
    const PIPE_SIZE: i32 = 1 << 20;
    // Failure (e.g. above /proc/sys/fs/pipe-max-size for an unprivileged
    // user) leaves the default.
    let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// `interpreter [--require preload] [interpreter_args] script [args]`, or
/// `script [args]`. The preload goes first, so the user's `node_args`
/// (`--import`, `--require`, …) and `NODE_OPTIONS` load after it.
fn command_line(
    spec: &AppSpec,
    preload: Option<&std::path::Path>,
) -> (std::path::PathBuf, Vec<String>) {
    match &spec.interpreter {
        Some(interp) => {
            let mut args = Vec::new();
            if let Some(path) = preload.filter(|_| spec.node) {
                args.push("--require".to_owned());
                args.push(path.to_string_lossy().into_owned());
            }
            args.extend(spec.interpreter_args.iter().cloned());
            args.push(spec.script.to_string_lossy().into_owned());
            args.extend(spec.args.iter().cloned());
            (interp.clone(), args)
        }
        None => (spec.script.clone(), spec.args.clone()),
    }
}

/// A process, or its whole group (pm2's `treekill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildPid {
    Process(u32),
    Group(u32),
}

impl ChildPid {
    #[must_use]
    pub fn new(pid: u32, treekill: bool) -> Self {
        if treekill {
            Self::Group(pid)
        } else {
            Self::Process(pid)
        }
    }

    /// Send `signal`; a process already gone is not an error.
    pub fn signal(self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        use nix::unistd::Pid;
        let res = match self {
            #[expect(clippy::cast_possible_wrap, reason = "pids fit i32")]
            Self::Process(pid) => nix::sys::signal::kill(Pid::from_raw(pid as i32), signal),
            #[expect(clippy::cast_possible_wrap, reason = "pids fit i32")]
            Self::Group(pid) => nix::sys::signal::killpg(Pid::from_raw(pid as i32), signal),
        };
        match res {
            Err(nix::errno::Errno::ESRCH) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
