//! A worker's whole process tree, found again before each stop signal.
//!
//! Signalling the process group misses descendants that started a session
//! or group of their own (`detached: true`), and a parent-pid walk misses
//! those whose parent already exited (they were reparented). So each run
//! gets a marker in its environment, inherited by everything it starts,
//! and the tree is: the run's process, every process of ours whose
//! environment carries the marker, and their descendants by parent pid
//! (for the few that clear their environment).

use std::collections::{BTreeSet, HashMap};
use std::fs;

/// The variable that marks every process started by one run.
pub const RUN_MARKER_ENV: &str = "RPM2_RUN_ID";

/// The pids of the run's tree besides `root` itself (the run's process,
/// if it still lives), from `/proc`. Processes that vanish while it reads
/// are skipped.
#[must_use]
pub fn descendants(root: Option<u32>, marker: &str) -> Vec<u32> {
    let needle = format!("{RUN_MARKER_ENV}={marker}");
    tree(root, |var| var == needle.as_bytes())
}

/// Processes left over from any run of the daemon instance `instance`
/// (markers `<instance>.<run>`), with their descendants.
#[must_use]
pub fn leftovers(instance: &str) -> Vec<u32> {
    let prefix = format!("{RUN_MARKER_ENV}={instance}.");
    tree(None, |var| var.starts_with(prefix.as_bytes()))
}

/// When the daemon stops: give what is left of its workers' trees `grace`
/// to end after the SIGINT they got, then SIGKILL them. Blocks.
pub fn kill_leftovers(instance: &str, grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let left = leftovers(instance);
        if left.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            kill_outliving(left);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SIGKILL what outlived its stopped worker.
pub fn kill_outliving(pids: Vec<u32>) {
    for pid in pids {
        tracing::warn!("pid {pid} outlived its stopped worker: SIGKILL");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `root` (if any), the processes whose environment has a variable for
/// which `marked` holds, and all their descendants; `root` left out.
fn tree(root: Option<u32>, marked: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut members = BTreeSet::new();
    let me = std::process::id();
    for pid in process_ids() {
        if Some(pid) == root || pid == me {
            continue;
        }
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
        // Other users' environments are unreadable: they are not ours.
        if fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(&marked))
        {
            members.insert(pid);
        }
    }
    let mut todo: Vec<u32> = members.iter().copied().chain(root).collect();
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).map_or(&[][..], Vec::as_slice) {
            if child != me && members.insert(child) {
                todo.push(child);
            }
        }
    }
    if let Some(root) = root {
        members.remove(&root);
    }
    // Never init or the daemon, whatever a stale marker claims.
    members.remove(&1);
    members.into_iter().collect()
}

/// Every pid in `/proc` (none if it cannot be read).
fn process_ids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The parent pid from `/proc/<pid>/stat` (the field after the command,
/// which may itself hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// A process that an earlier daemon of the same home started and that
/// still runs (that daemon died without stopping it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub pid: u32,
    /// Its app name and worker id, from the variables rpm2 gave it.
    pub app: String,
    pub pm_id: Option<u32>,
}

/// The orphans of `home`: processes marked by a run of another daemon
/// instance than `own_instance` whose environment names this home. Only
/// the top of each orphaned tree is listed.
#[must_use]
pub fn orphans(home: &std::path::Path, own_instance: &str) -> Vec<Orphan> {
    let home_var = format!("RPM2_HOME={}", home.display());
    let own = format!("{RUN_MARKER_ENV}={own_instance}.");
    let marker = format!("{RUN_MARKER_ENV}=");
    let mut found: HashMap<u32, Orphan> = HashMap::new();
    for pid in process_ids() {
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        let has = |text: &str| vars.contains(&text.as_bytes());
        let marked = vars
            .iter()
            .any(|v| v.starts_with(marker.as_bytes()) && !v.starts_with(own.as_bytes()));
        if !marked || !has(&home_var) {
            continue;
        }
        let value = |key: &str| {
            vars.iter()
                .find_map(|v| v.strip_prefix(format!("{key}=").as_bytes()))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        found.insert(
            pid,
            Orphan {
                pid,
                app: value("name").unwrap_or_default(),
                pm_id: value("pm_id").and_then(|v| v.parse().ok()),
            },
        );
    }
    let mut tops: Vec<Orphan> = found
        .values()
        .filter(|o| parent_of(o.pid).is_none_or(|ppid| !found.contains_key(&ppid)))
        .cloned()
        .collect();
    tops.sort_by_key(|o| o.pid);
    tops
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn finds_marked_processes_that_left_the_tree_and_their_children() {
        let marker = format!("test-{}", std::process::id());
        // A shell whose subshell starts a shell in its own session and exits
        // (so that one is reparented); that shell starts a marked sleeper and
        // one with an empty environment.
        let mut root = Command::new("sh")
            .arg("-c")
            .arg("(setsid sh -c 'sleep 30 & env -i sleep 31 & wait' &); sleep 30")
            .env(RUN_MARKER_ENV, &marker)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let root_pid = root.id();
        let cmdline = |pid: &u32| fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_unmarked_sleeper = |pid: &u32| cmdline(pid).starts_with(b"sleep\x0031");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = descendants(Some(root_pid), &marker);
            if found.iter().any(is_unmarked_sleeper) || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let found_unmarked = found.iter().any(is_unmarked_sleeper);
        let session_shell_parent = found
            .iter()
            .filter(|pid| cmdline(pid).starts_with(b"sh\x00-c\x00sleep"))
            .filter_map(|pid| parent_of(*pid))
            .next();
        for pid in &found {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(*pid).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = root.kill();
        let _ = root.wait();
        assert!(found_unmarked, "found {found:?}");
        assert_ne!(session_shell_parent, Some(root_pid), "it left the tree");
        assert!(!found.contains(&root_pid));
    }

    #[test]
    fn orphans_of_a_home_are_found_by_their_markers() {
        let home = std::env::temp_dir().join(format!("rpm2-orphan-test-{}", std::process::id()));
        let mut child = Command::new("sleep")
            .arg("30")
            .env(RUN_MARKER_ENV, "dead-daemon.7")
            .env("RPM2_HOME", &home)
            .env("name", "api")
            .env("pm_id", "3")
            .spawn()
            .unwrap();
        // Until it has exec'd, the child shows the test's environment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = orphans(&home, "live-daemon");
            if !found.is_empty() || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let mine = orphans(&home, "dead-daemon");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            found,
            vec![Orphan {
                pid: child.id(),
                app: "api".into(),
                pm_id: Some(3)
            }]
        );
        assert!(mine.is_empty(), "a daemon's own runs are not orphans");
    }

    #[test]
    fn parses_a_command_with_parentheses() {
        assert_eq!(
            parent_of(std::process::id()),
            Some(nix::unistd::getppid().as_raw().try_into().unwrap())
        );
    }
}
