//! Reaping the runs an earlier image of the daemon started (`rpm2 update`):
//! they are still our children, but no `tokio::process::Child` stands for
//! them, so one task waits for SIGCHLD and asks each of them with
//! `waitpid(pid, WNOHANG)` — never `waitpid(-1)`, which would steal the
//! exit statuses tokio waits for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

use super::Msg;
use crate::Gen;

/// Pid → the run it is (`None`: a child of the previous image that is no
/// run, such as a `node --version` it was waiting for; reaped silently).
type Watched = Arc<Mutex<HashMap<u32, Option<Gen>>>>;

#[derive(Default)]
pub struct Adopted {
    pids: Watched,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Adopted {
    /// Reap `pid` (run `gen`) when it exits.
    pub fn watch(&mut self, pid: u32, gen: Gen, tx: &UnboundedSender<Msg>) {
        self.insert(pid, Some(gen), tx);
    }

    /// The previous image's other children (not runs): reap them when they
    /// exit, or they would stay zombies forever.
    pub fn watch_strays(
        &mut self,
        known: &std::collections::HashSet<u32>,
        tx: &UnboundedSender<Msg>,
    ) {
        for pid in children() {
            if !known.contains(&pid) {
                self.insert(pid, None, tx);
            }
        }
    }

    fn insert(&mut self, pid: u32, gen: Option<Gen>, tx: &UnboundedSender<Msg>) {
        if let Ok(mut pids) = self.pids.lock() {
            pids.insert(pid, gen);
        }
        if self.task.is_none() {
            self.task = Some(tokio::spawn(reap(Arc::clone(&self.pids), tx.clone())));
        }
    }

    /// Stop waiting for run `gen` (detached for another update).
    pub fn forget(&mut self, gen: Gen) {
        if let Ok(mut pids) = self.pids.lock() {
            pids.retain(|_, g| *g != Some(gen));
        }
    }
}

async fn reap(pids: Watched, tx: UnboundedSender<Msg>) {
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("cannot watch SIGCHLD for adopted workers: {e}; polling");
            None
        }
    };
    loop {
        // First sweep at once: a worker may have exited during the exec.
        sweep(&pids, &tx);
        match &mut sigchld {
            Some(s) => {
                if s.recv().await.is_none() {
                    return;
                }
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

fn sweep(pids: &Watched, tx: &UnboundedSender<Msg>) {
    let Ok(mut pids) = pids.lock() else {
        return;
    };
    pids.retain(|&pid, &mut run| {
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        let (code, signal) = match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => (Some(code), None),
            Ok(WaitStatus::Signaled(_, sig, _)) => (None, Some(sig as i32)),
            Ok(_) => return true,
            // Not our child any more (reaped elsewhere): gone, status unknown.
            Err(Errno::ECHILD) => (None, None),
            Err(_) => return true,
        };
        if let Some(gen) = run {
            let _ = tx.send(Msg::Exited { gen, code, signal });
        }
        false
    });
}

/// This process's children, from `/proc/self/task/*/children` (each
/// thread's; right after the exec there is only the main thread).
fn children() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}
