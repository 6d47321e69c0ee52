//! Orphans. As a container's PID 1, or as a child subreaper, `rpm2-runtime`
//! inherits every process whose parent died (an app's double fork, the
//! child of a killed `npm start`). Nobody else waits for those, and left
//! alone they stay zombies.
//!
//! The daemon's own children are waited for by pid (a worker by tokio's
//! `Child::wait`, a helper such as `node --version` by std's): a blanket
//! `waitpid(-1)` would steal their exit statuses. So whoever starts a
//! child registers its pid while holding the registry's lock
//! ([`registering`]), and the reaper reaps, under the same lock, only the
//! zombie children it does not find there. The daemon registers its
//! children in every mode; only the runtime reaps.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Pids of the children that someone waits for by pid.
static OWNED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn lock() -> MutexGuard<'static, BTreeSet<u32>> {
    OWNED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Held while a child is started: the reaper cannot look at zombies
/// between the fork and [`Registering::own`].
pub struct Registering(MutexGuard<'static, BTreeSet<u32>>);

/// Lock the registry before starting a child.
#[must_use]
pub fn registering() -> Registering {
    Registering(lock())
}

impl Registering {
    /// The child `pid` is waited for by its starter; call [`release`] once
    /// that wait returned.
    pub fn own(mut self, pid: u32) {
        self.0.insert(pid);
    }
}

/// The child `pid` was reaped by its starter.
pub fn release(pid: u32) {
    lock().remove(&pid);
}

/// Reap every zombie child that nobody registered; returns how many.
pub fn reap_orphans() -> usize {
    reap_unowned(|| zombie_children(std::process::id()))
}

/// Reap those of `candidates` (found under the lock) nobody registered.
fn reap_unowned(candidates: impl FnOnce() -> Vec<u32>) -> usize {
    let owned = lock();
    let mut reaped = 0;
    for pid in candidates() {
        if owned.contains(&pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => {}
            Ok(_) => reaped += 1,
        }
    }
    reaped
}

/// Children of `parent` (this process) that are zombies, from /proc.
fn zombie_children(parent: u32) -> Vec<u32> {
    children()
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            state_and_parent(&stat) == Some(('Z', parent))
        })
        .collect()
}

/// This process's children: each thread's `children` file (a short read
/// where the kernel has them), else every process (the parent is checked
/// by the caller).
fn children() -> Vec<u32> {
    let listed: Option<Vec<u32>> = std::fs::read_dir("/proc/self/task").ok().and_then(|tasks| {
        let mut pids = Vec::new();
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).ok()?;
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        Some(pids)
    });
    listed.unwrap_or_else(|| {
        std::fs::read_dir("/proc").map_or_else(
            |_| Vec::new(),
            |dir| {
                dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            },
        )
    })
}

/// `pid (comm) S ppid …` → (S, ppid); `comm` may hold spaces and `)`.
fn state_and_parent(stat: &str) -> Option<(char, u32)> {
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let parent = rest.next()?.parse().ok()?;
    Some((state, parent))
}

/// Orphans of our descendants come to us rather than to init (Linux; a
/// PID 1 gets them anyway).
pub fn become_subreaper() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err("child subreapers exist on Linux only".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_and_parent_past_an_odd_command_name() {
        assert_eq!(
            state_and_parent("42 (a) b (c)) Z 7 42 42 0"),
            Some(('Z', 7))
        );
        assert_eq!(state_and_parent("garbage"), None);
    }

    #[test]
    fn a_registered_zombie_is_left_to_its_waiter() {
        let reg = registering();
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        reg.own(child.id());
        // Wait until it is a zombie, then let the reaper look.
        let me = std::process::id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !zombie_children(me).contains(&child.id()) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // (Only this child: other tests' children are not ours to reap.)
        assert_eq!(reap_unowned(|| vec![child.id()]), 0);
        // Its owner still gets its status.
        assert!(child.wait().expect("status kept for the owner").success());
        release(child.id());
    }
}
