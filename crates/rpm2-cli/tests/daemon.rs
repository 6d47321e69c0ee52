//! The daemon's life: ping, kill, save/resurrect, recovering from a daemon
//! killed with SIGKILL, and SIGTERM saving the list.

mod common;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{alive, fixture, free_port, http_get, pid_of, status_of, wait_dead, wait_until, Rpm2};

#[test]
fn ping_prints_pong_and_starts_the_daemon() {
    let r = Rpm2::new();
    assert!(r.daemon_pid().is_none_or(|p| !alive(p)));
    let out = r.ok(&["ping"]);
    assert!(out.stdout.contains("pong"), "{}", out.all());
    let pid = r.daemon_pid().expect("pm2.pid written");
    assert!(alive(pid));
    assert!(r.home().join("rpc.sock").exists());
    // A second ping talks to the same daemon.
    r.ok(&["ping"]);
    assert_eq!(r.daemon_pid(), Some(pid));
}

#[test]
fn kill_without_a_daemon_exits_zero_and_starts_none() {
    let r = Rpm2::new();
    r.ok(&["kill"]);
    assert!(r.daemon_pid().is_none_or(|p| !alive(p)));
    assert!(!r.home().join("rpc.sock").exists());
}

#[test]
fn kill_stops_the_apps_and_the_daemon() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "k"]);
    let app = pid_of(&r.proc("k"));
    let daemon = r.daemon_pid().unwrap();
    r.ok(&["kill"]);
    wait_dead(app);
    wait_dead(daemon);
    assert!(!r.home().join("rpc.sock").exists());
    // The next command starts a fresh, empty daemon.
    assert!(r.jlist().is_empty());
    assert_ne!(r.daemon_pid(), Some(daemon));
}

#[test]
fn save_kill_resurrect() {
    let r = Rpm2::new();
    let port = free_port();
    r.ok(&[
        "start",
        &fixture("http.js"),
        "--name",
        "web",
        "--",
        &port.to_string(),
    ]);
    r.ok(&["start", &fixture("idle.js"), "--name", "sleeper"]);
    r.ok(&["stop", "sleeper"]);
    let body = wait_until("web to answer", || http_get(port));
    let old_pid = pid_of(&r.proc("web"));
    assert_eq!(body, format!("ok {old_pid}"));

    let out = r.ok(&["save"]);
    assert!(r.home().join("dump.pm2").exists(), "{}", out.all());
    r.ok(&["kill"]);
    wait_dead(old_pid);

    r.ok(&["resurrect"]);
    let web = r.wait_status("web", "online");
    let new_pid = pid_of(&web);
    assert_ne!(new_pid, old_pid);
    let body = wait_until("web to answer again", || {
        http_get(port).filter(|b| *b == format!("ok {new_pid}"))
    });
    assert_eq!(body, format!("ok {new_pid}"));
    // A stopped app comes back stopped.
    let sleeper = r.proc("sleeper");
    assert_eq!(status_of(&sleeper), "stopped");
    assert_eq!(sleeper["pid"], 0);

    // Resurrect again: apps already there are left alone.
    r.ok(&["resurrect"]);
    assert_eq!(pid_of(&r.proc("web")), new_pid);
    assert_eq!(r.jlist().len(), 2);
}

#[test]
fn save_refuses_an_empty_list_unless_forced() {
    let r = Rpm2::new();
    let out = r.fails(&["save"]);
    assert!(
        out.stderr.contains("not managing any process"),
        "{}",
        out.all()
    );
    assert!(!r.home().join("dump.pm2").exists());
    r.ok(&["save", "--force"]);
    assert!(r.home().join("dump.pm2").exists());
}

#[test]
fn a_daemon_killed_with_sigkill_is_replaced_cleanly() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "orphan"]);
    let worker = pid_of(&r.proc("orphan"));
    let daemon = r.daemon_pid().expect("pm2.pid");
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    wait_dead(daemon);
    // The stale socket and pid file are still there.
    assert!(r.home().join("rpc.sock").exists());

    let out = r.ok(&["list"]);
    assert!(!out.stdout.contains("orphan"), "{}", out.all());
    let fresh = r.daemon_pid().expect("new pm2.pid");
    assert_ne!(fresh, daemon);
    assert!(alive(fresh));
    r.ok(&["ping"]);
    // The new daemon works: it can start apps.
    r.ok(&["start", &fixture("idle.js"), "--name", "after"]);
    assert_eq!(status_of(&r.proc("after")), "online");

    // The old daemon's worker was orphaned (as with pm2): end it ourselves.
    if alive(worker) {
        let _ = kill(Pid::from_raw(worker), Signal::SIGKILL);
    }
}

#[test]
fn a_daemon_that_is_gone_while_a_command_waits_for_it_is_replaced() {
    // As after `kill` answered: the daemon removed its socket, not yet its
    // pid file. A command then waits for it to bind again; once it is gone,
    // the command starts a fresh daemon instead of failing.
    let r = Rpm2::new();
    r.ok(&["ping"]);
    let daemon = r.daemon_pid().expect("pm2.pid");
    kill(Pid::from_raw(daemon), Signal::SIGSTOP).unwrap();
    std::fs::remove_file(r.home().join("rpc.sock")).unwrap();
    let ping = r.spawn(&["ping"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    wait_dead(daemon);
    let out = ping.wait(std::time::Duration::from_secs(20)).unwrap();
    assert!(
        out.success() && out.stdout.contains("pong"),
        "{}",
        out.all()
    );
    let fresh = r.daemon_pid().expect("new pm2.pid");
    assert_ne!(fresh, daemon);
    assert!(alive(fresh));
}

#[test]
fn sigterm_to_the_daemon_saves_and_stops_everything() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "termed"]);
    let worker = pid_of(&r.proc("termed"));
    let daemon = r.daemon_pid().unwrap();
    kill(Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    wait_dead(daemon);
    wait_dead(worker);
    let dump = std::fs::read_to_string(r.home().join("dump.pm2")).expect("dump written");
    assert!(dump.contains("termed"), "{dump}");
    assert!(!r.home().join("rpc.sock").exists());
    // And resurrect brings it back.
    r.ok(&["resurrect"]);
    r.wait_status("termed", "online");
}

/// Daemons (`rpm2 __daemon`) whose environment names this home.
fn daemons_of(home: &std::path::Path) -> Vec<i32> {
    let needle = format!("RPM2_HOME={}", home.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            alive(*pid)
                && String::from_utf8_lossy(&cmd).contains("__daemon")
                && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
        })
        .collect()
}

#[test]
fn concurrent_first_calls_start_one_daemon() {
    let r = Rpm2::new();
    let calls: Vec<_> = (0..6).map(|_| r.spawn(&["ping"])).collect();
    for c in calls {
        let out = c.wait(std::time::Duration::from_secs(60)).unwrap();
        assert!(out.success(), "{}", out.all());
        assert!(out.stdout.contains("pong"), "{}", out.all());
    }
    let daemon = r.daemon_pid().unwrap();
    // Callers that lost the race to the lock exit on their own (slowly on a
    // busy machine); only the one holding it stays.
    wait_until("one daemon left", || {
        (daemons_of(r.home()) == [daemon]).then_some(())
    });
    r.ok(&["kill"]);
    wait_dead(daemon);
    assert!(daemons_of(r.home()).is_empty());
}
