//! What the daemon has to tell the user besides answers: that the previous
//! daemon of this home died without stopping its apps (told once), and
//! which of its processes still run as orphans (told while they live).

use std::sync::{Arc, Mutex};

use crate::worker::tree::Orphan;

#[derive(Default)]
struct State {
    previous_crash: Option<String>,
    orphans: Vec<Orphan>,
}

/// Shared between the daemon's start-up, which fills it, and the RPC
/// side, which reads it.
#[derive(Clone, Default)]
pub struct Notices(Arc<Mutex<State>>);

impl Notices {
    /// The previous daemon (`pid`) died without shutting down; `dump` says
    /// whether a saved list exists to resurrect.
    pub fn previous_daemon_died(&self, pid: u32, dump: bool) {
        let hint = if dump {
            "`rpm2 resurrect` starts the saved list again"
        } else {
            "no list was saved (`rpm2 save`) to resurrect"
        };
        self.lock().previous_crash = Some(format!(
            "the previous rpm2 daemon (pid {pid}) died without stopping its apps; {hint}"
        ));
    }

    pub fn set_orphans(&self, orphans: Vec<Orphan>) {
        self.lock().orphans = orphans;
    }

    /// Orphans that still run.
    #[must_use]
    pub fn orphans(&self) -> Vec<Orphan> {
        let mut state = self.lock();
        state.orphans.retain(|o| alive(o.pid));
        state.orphans.clone()
    }

    /// Everything to tell now; the crash is told once.
    #[must_use]
    pub fn take(&self) -> Vec<String> {
        let crash = self.lock().previous_crash.take();
        let orphans = self.orphans();
        let mut out: Vec<String> = crash.into_iter().collect();
        if !orphans.is_empty() {
            out.push(describe_orphans(&orphans));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One line naming the orphans and the command that ends them.
#[must_use]
pub fn describe_orphans(orphans: &[Orphan]) -> String {
    let list: Vec<String> = orphans
        .iter()
        .map(|o| match o.pm_id {
            Some(id) => format!("pid {} (app {}, id {id})", o.pid, o.app),
            None => format!("pid {} (app {})", o.pid, o.app),
        })
        .collect();
    let pids: Vec<String> = orphans.iter().map(|o| o.pid.to_string()).collect();
    format!(
        "processes started by a previous rpm2 daemon still run, not managed by this one (they may hold your ports): {}; end them with: kill {}",
        list.join(", "),
        pids.join(" ")
    )
}

fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crash_is_told_once_and_dead_orphans_are_forgotten() {
        let n = Notices::default();
        n.previous_daemon_died(4242, true);
        n.set_orphans(vec![
            Orphan {
                pid: std::process::id(),
                app: "api".into(),
                pm_id: Some(0),
            },
            Orphan {
                pid: u32::MAX - 1,
                app: "gone".into(),
                pm_id: None,
            },
        ]);
        let first = n.take();
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(first[0].contains("pid 4242") && first[0].contains("resurrect"));
        assert!(first[1].contains("app api") && !first[1].contains("gone"));
        assert!(first[1].contains(&format!("kill {}", std::process::id())));
        let second = n.take();
        assert_eq!(second.len(), 1, "the crash is told once: {second:?}");
    }
}
