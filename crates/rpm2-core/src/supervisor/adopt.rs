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

type Watched = Arc<Mutex<HashMap<u32, Gen>>>;

#[derive(Default)]
pub struct Adopted {
    pids: Watched,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Adopted {
    /// Reap `pid` (run `gen`) when it exits.
    pub fn watch(&mut self, pid: u32, gen: Gen, tx: &UnboundedSender<Msg>) {
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
            pids.retain(|_, g| *g != gen);
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
    pids.retain(|&pid, &mut gen| {
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
        let _ = tx.send(Msg::Exited { gen, code, signal });
        false
    });
}
