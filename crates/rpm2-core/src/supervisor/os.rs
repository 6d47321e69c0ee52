//! What the supervisor asks of the operating system: start a run's process
//! (with its log pumps, IPC channel and reaper), signal it, write its pid
//! file. The daemon uses `RealOs`; lifecycle tests use a fake that records.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use nix::sys::signal::Signal;
use rpm2_logs::bus;
use rpm2_logs::{LogFormat, LogRegistry, PumpConfig, StreamKind};
use rpm2_proto::{AppSpec, EventProcess};
use tokio::sync::mpsc;

use super::Msg;
use crate::link::SharedLink;
use crate::worker::spawn::{spawn, ChildPid};
use crate::worker::tree;
use crate::Gen;

/// Everything needed to start one run.
pub struct SpawnRequest<'a> {
    pub run: Gen,
    pub spec: &'a AppSpec,
    pub env: &'a BTreeMap<String, String>,
    /// `NODE_UNIQUE_ID` for cluster workers.
    pub cluster_id: Option<u32>,
    pub out_log: Option<&'a Path>,
    pub err_log: Option<&'a Path>,
    pub combined_log: Option<&'a Path>,
    /// Who its log lines are about on the bus.
    pub process: EventProcess,
    /// Marks every process of the run (`worker::tree`).
    pub marker: &'a str,
    /// The drain preload to `--require` (Node workers only).
    pub preload: Option<&'a Path>,
}

/// Who a signal is for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub pid: u32,
    /// pm2's `treekill`: the process group, and every process marked with
    /// this run's marker with their descendants.
    pub tree: Option<&'a str>,
}

/// A run's process, started.
pub struct Started {
    pub pid: u32,
    /// Why a log file could not be opened (the app runs without it).
    pub log_error: Option<String>,
    pub link: Option<SharedLink>,
}

/// The supervisor's port to processes and files. A run's exit and IPC
/// messages come back to the actor as `Msg`s tagged with its number.
pub trait Os: Send {
    fn spawn(&mut self, req: SpawnRequest<'_>) -> io::Result<Started>;
    fn signal(&mut self, target: Target<'_>, signal: Signal) -> nix::Result<()>;
    /// SIGKILL, after `after`, whatever is left of a stopped run's tree.
    fn sweep(&mut self, marker: &str, after: std::time::Duration);
    fn write_pid_file(&mut self, path: &Path, pid: u32);
    fn remove_pid_file(&mut self, path: &Path);
    /// Stop run `gen`'s log pumps (their pipes come back on the receivers)
    /// and its reaper, for `rpm2 update`.
    fn detach(&mut self, _gen: Gen) -> (Option<PipeBack>, Option<PipeBack>) {
        (None, None)
    }
    /// Run `gen` was reaped: drop what was kept for it.
    fn forget(&mut self, _gen: Gen) {}
    /// After an update: reap the previous image's children that are none
    /// of the `known` runs' pids when they exit.
    fn adopt_strays(&mut self, _known: &std::collections::HashSet<u32>) {}
    /// Carry on with a run the previous daemon image started.
    fn adopt(&mut self, req: AdoptRequest<'_>) -> Started {
        Started {
            pid: req.pid,
            log_error: None,
            link: None,
        }
    }
}

/// Where a detached pump's pipe comes back.
pub type PipeBack = tokio::sync::oneshot::Receiver<rpm2_logs::DetachedPump>;

/// A run another image of the daemon started, with its open fds.
pub struct AdoptRequest<'a> {
    pub run: Gen,
    pub pid: u32,
    pub spec: &'a AppSpec,
    pub out_log: Option<&'a Path>,
    pub err_log: Option<&'a Path>,
    pub combined_log: Option<&'a Path>,
    pub process: EventProcess,
    pub ipc: Option<(std::os::fd::OwnedFd, Vec<u8>)>,
    pub stdout: Option<(std::os::fd::OwnedFd, rpm2_logs::PumpCarry)>,
    pub stderr: Option<(std::os::fd::OwnedFd, rpm2_logs::PumpCarry)>,
    /// Already reaped by the previous image: no reaper.
    pub exited: bool,
}

/// What `RealOs` keeps of a run's tasks.
#[derive(Default)]
struct RunTasks {
    out: Option<rpm2_logs::PumpControl>,
    err: Option<rpm2_logs::PumpControl>,
    reaper: Option<tokio::task::JoinHandle<()>>,
}

/// Real processes.
pub struct RealOs {
    pub tx: mpsc::UnboundedSender<Msg>,
    pub bus: bus::Sender,
    pub logs: LogRegistry,
    tasks: std::collections::HashMap<Gen, RunTasks>,
    adopted: super::adopt::Adopted,
}

impl Os for RealOs {
    fn spawn(&mut self, req: SpawnRequest<'_>) -> io::Result<Started> {
        let gen = req.run;
        // Registered before any orphan reaper can see it exit (`runtime::reaper`).
        let registering = crate::runtime::reaper::registering();
        let spawned = spawn(req.spec, req.env, req.cluster_id, req.marker, req.preload)?;
        let pid = spawned.pid;
        registering.own(pid);
        let mut tasks = RunTasks::default();
        let log_error = match spawned.output {
            Some((stdout, stderr)) => {
                let pipes = [stdout.into_owned_fd(), stderr.into_owned_fd()]
                    .map(|p| p.ok().map(|fd| (fd, rpm2_logs::PumpCarry::default())));
                let [out, err] = pipes;
                self.start_pumps(&PumpTarget::from(&req), out, err, &mut tasks)
            }
            None => None,
        };
        // IPC messages straight into the actor's queue, tagged with the run.
        let name = req.spec.name.clone();
        let link = spawned.channel.and_then(|fd| {
            rpm2_node_ipc::open_into(fd, self.tx.clone(), move |incoming| Msg::Ipc {
                gen,
                incoming,
            })
            .map_err(|e| tracing::warn!("App [{name}]: no IPC channel: {e}"))
            .ok()
            .map(|sender| Arc::new(sender) as SharedLink)
        });
        // Reap it.
        let tx = self.tx.clone();
        let mut child = spawned.child;
        tasks.reaper = Some(tokio::spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let (code, signal) = match child.wait().await {
                Ok(st) => (st.code(), st.signal()),
                Err(_) => (None, None),
            };
            crate::runtime::reaper::release(pid);
            let _ = tx.send(Msg::Exited { gen, code, signal });
        }));
        self.tasks.insert(gen, tasks);
        Ok(Started {
            pid,
            link,
            log_error,
        })
    }

    fn signal(&mut self, target: Target<'_>, signal: Signal) -> nix::Result<()> {
        let Some(marker) = target.tree else {
            return ChildPid::Process(target.pid).signal(signal);
        };
        // Found before the group is signalled, while parents still live.
        let others = tree::descendants(Some(target.pid), marker);
        let res = ChildPid::Group(target.pid).signal(signal);
        for pid in others {
            let _ = ChildPid::Process(pid).signal(signal);
        }
        res
    }

    fn sweep(&mut self, marker: &str, after: std::time::Duration) {
        let marker = marker.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // The /proc walk blocks: keep it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || {
                tree::kill_outliving(tree::descendants(None, &marker));
            })
            .await;
        });
    }

    fn write_pid_file(&mut self, path: &Path, pid: u32) {
        if let Err(e) = rpm2_logs::safe_open::write_file(path, pid.to_string().as_bytes()) {
            tracing::warn!("cannot write pid file: {e}");
        }
    }

    fn remove_pid_file(&mut self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    fn detach(&mut self, gen: Gen) -> (Option<PipeBack>, Option<PipeBack>) {
        let Some(mut tasks) = self.tasks.remove(&gen) else {
            return (None, None);
        };
        // Its process stays our child: the next image reaps it.
        if let Some(reaper) = tasks.reaper.take() {
            reaper.abort();
        }
        self.adopted.forget(gen);
        (
            tasks.out.as_mut().and_then(rpm2_logs::PumpControl::detach),
            tasks.err.as_mut().and_then(rpm2_logs::PumpControl::detach),
        )
    }

    fn forget(&mut self, gen: Gen) {
        self.tasks.remove(&gen);
        self.adopted.forget(gen);
    }

    fn adopt_strays(&mut self, known: &std::collections::HashSet<u32>) {
        self.adopted.watch_strays(known, &self.tx);
    }

    fn adopt(&mut self, req: AdoptRequest<'_>) -> Started {
        let gen = req.run;
        let mut tasks = RunTasks::default();
        let log_error = self.start_pumps(
            &PumpTarget {
                name: &req.spec.name,
                out_log: req.out_log,
                err_log: req.err_log,
                combined_log: req.combined_log,
                date_format: req.spec.log_date_format.clone(),
                json: req.spec.log_json,
                process: req.process.clone(),
            },
            req.stdout,
            req.stderr,
            &mut tasks,
        );
        let name = req.spec.name.clone();
        let link = req.ipc.and_then(|(fd, leftover)| {
            rpm2_node_ipc::open_resumed(fd, leftover, self.tx.clone(), move |incoming| Msg::Ipc {
                gen,
                incoming,
            })
            .map_err(|e| tracing::warn!("App [{name}]: IPC channel lost in the update: {e}"))
            .ok()
            .map(|sender| Arc::new(sender) as SharedLink)
        });
        if !req.exited {
            self.adopted.watch(req.pid, gen, &self.tx);
        }
        self.tasks.insert(gen, tasks);
        Started {
            pid: req.pid,
            log_error,
            link,
        }
    }
}

/// Whose output a pump carries, and where it goes.
struct PumpTarget<'a> {
    name: &'a str,
    out_log: Option<&'a Path>,
    err_log: Option<&'a Path>,
    combined_log: Option<&'a Path>,
    date_format: Option<String>,
    json: bool,
    process: EventProcess,
}

impl<'a> From<&SpawnRequest<'a>> for PumpTarget<'a> {
    fn from(req: &SpawnRequest<'a>) -> Self {
        Self {
            name: &req.spec.name,
            out_log: req.out_log,
            err_log: req.err_log,
            combined_log: req.combined_log,
            date_format: req.spec.log_date_format.clone(),
            json: req.spec.log_json,
            process: req.process.clone(),
        }
    }
}

impl RealOs {
    #[must_use]
    pub fn new(tx: mpsc::UnboundedSender<Msg>, bus: bus::Sender, logs: LogRegistry) -> Self {
        Self {
            tx,
            bus,
            logs,
            tasks: std::collections::HashMap::new(),
            adopted: super::adopt::Adopted::default(),
        }
    }

    /// Each stream to its file(s) and to the bus; says which file could
    /// not be opened, if one could not.
    fn start_pumps(
        &self,
        req: &PumpTarget<'_>,
        stdout: Option<(std::os::fd::OwnedFd, rpm2_logs::PumpCarry)>,
        stderr: Option<(std::os::fd::OwnedFd, rpm2_logs::PumpCarry)>,
        tasks: &mut RunTasks,
    ) -> Option<String> {
        let mut log_error = None;
        let mut open = |p: Option<&Path>| -> Vec<rpm2_logs::FileWriter> {
            p.iter()
                .filter_map(|p| match self.logs.writer(p) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        tracing::warn!("App [{}] cannot open its log file: {e}", req.name);
                        log_error.get_or_insert_with(|| format!("cannot open log file: {e}"));
                        None
                    }
                })
                .collect()
        };
        let mut out_files = open(req.out_log);
        let mut err_files = open(req.err_log);
        let combined = open(req.combined_log);
        out_files.extend(combined.iter().cloned());
        err_files.extend(combined);
        for (pipe, kind, files) in [
            (stdout, StreamKind::Out, out_files),
            (stderr, StreamKind::Err, err_files),
        ] {
            let Some((fd, carry)) = pipe else {
                continue;
            };
            let control = rpm2_logs::spawn_fd_pump_resumed(
                fd,
                PumpConfig {
                    kind,
                    files,
                    format: LogFormat {
                        date_format: req.date_format.clone(),
                        json: req.json,
                    },
                    process: req.process.clone(),
                    bus: self.bus.clone(),
                },
                carry,
            );
            match kind {
                StreamKind::Out => tasks.out = Some(control),
                StreamKind::Err => tasks.err = Some(control),
            }
        }
        log_error
    }
}
