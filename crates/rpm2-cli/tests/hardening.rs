//! Faults and abuse (issue 10): a stopped daemon, idle connections that
//! fill the server, a stalled log follower, a deleted socket.

mod common;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{alive, fixture, wait_dead, wait_until, Rpm2};

/// Resumes the daemon when the test ends, even on a failed assertion, so
/// the home's cleanup can reach it.
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Self {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP the daemon");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

#[test]
fn a_stopped_daemon_is_reported_with_its_pid_and_what_to_do() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "calm"]);
    let daemon = r.daemon_pid().expect("daemon pid");
    let stopped = Stopped::new(daemon);

    // The bound comes from the environment…
    let out = r.run_with(&["list"], &[("RPM2_TIMEOUT_MS", "300")]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    let msg = out.stderr.clone();
    assert!(msg.contains(&format!("pid {daemon}")), "{msg}");
    assert!(msg.contains(&format!("kill -CONT {daemon}")), "{msg}");
    assert!(msg.contains("stopped"), "{msg}");
    // …or from the flag, for every kind of command.
    for args in [
        &["--rpc-timeout", "300", "jlist"][..],
        &["--rpc-timeout", "300", "stop", "calm"][..],
        &["--rpc-timeout", "300", "kill"][..],
    ] {
        let out = r.run_with(args, &[]);
        assert_eq!(out.code, Some(3), "rpm2 {args:?}: {}", out.all());
        assert!(
            out.stderr.contains(&format!("pid {daemon}")),
            "{}",
            out.all()
        );
    }
    // Nothing was replaced: the same daemon, resumed, answers everything.
    drop(stopped);
    assert_eq!(r.proc("calm")["pm2_env"]["status"], "online");
    assert_eq!(r.daemon_pid(), Some(daemon));
    r.ok(&["stop", "calm"]);
}

#[test]
fn kill_finds_a_daemon_whose_socket_was_deleted() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "orphan"]);
    let app = common::pid_of(&r.proc("orphan"));
    let daemon = r.daemon_pid().expect("daemon pid");
    std::fs::remove_file(r.home().join("rpc.sock")).unwrap();
    let out = r.ok(&["kill"]);
    assert!(
        !out.all().contains("No rpm2 daemon running"),
        "{}",
        out.all()
    );
    wait_dead(daemon);
    wait_dead(app);
}

#[test]
fn the_daemon_binds_a_deleted_or_replaced_socket_again() {
    let r = Rpm2::new();
    r.ok(&["ping"]);
    let daemon = r.daemon_pid().expect("daemon pid");
    let sock = r.home().join("rpc.sock");
    std::fs::remove_file(&sock).unwrap();
    wait_until("the socket to be bound again", || {
        sock.exists().then_some(())
    });
    r.ok(&["ping"]);
    assert_eq!(r.daemon_pid(), Some(daemon));
    // Replaced by a socket nobody serves.
    std::fs::remove_file(&sock).unwrap();
    let stale = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(stale);
    wait_until("the daemon to answer again", || {
        let out = r.run_with(&["ping"], &[("RPM2_TIMEOUT_MS", "2000")]);
        out.success().then_some(())
    });
    assert_eq!(r.daemon_pid(), Some(daemon));
    assert!(alive(daemon));
}
