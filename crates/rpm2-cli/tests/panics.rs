//! A panic in the daemon (a bug) is contained and logged: the daemon goes
//! on serving (issue 15). Debug builds have a test hook for it: with
//! `RPM2_DEBUG_PANIC` in the daemon's environment, `describe
//! debug-panic:rpc` panics in the RPC handler, `describe debug-panic:actor`
//! in the supervisor actor.

mod common;

use common::{fixture, Rpm2};

#[test]
fn a_panic_in_a_request_or_in_the_supervisor_is_contained_and_logged() {
    let r = Rpm2::new();
    // The first call starts the daemon, with the hook armed.
    r.run_with(
        &["start", &fixture("idle.js"), "--name", "calm"],
        &[("RPM2_DEBUG_PANIC", "1")],
    );
    let daemon = r.daemon_pid().expect("daemon pid");
    let worker = r.proc("calm")["pid"].clone();

    // In the RPC handler: the client gets INTERNAL_ERROR, not a hang-up.
    let out = r.run(&["describe", "debug-panic:rpc"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stderr.contains("a bug"), "{}", out.all());
    assert!(out.stderr.contains("debug-panic:rpc"), "{}", out.all());

    // In the supervisor actor: that request fails, saying why…
    let out = r.run(&["describe", "debug-panic:actor"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stderr.contains("a bug"), "{}", out.all());

    // …and the same daemon still answers, and still supervises.
    assert_eq!(r.daemon_pid(), Some(daemon));
    assert_eq!(r.proc("calm")["pm2_env"]["status"], "online");
    assert_eq!(r.proc("calm")["pid"], worker);
    r.ok(&["restart", "calm"]);
    assert_ne!(r.proc("calm")["pid"], worker);
    r.ok(&["start", &fixture("idle.js"), "--name", "second"]);
    assert_eq!(r.proc("second")["pm2_env"]["status"], "online");

    // Both panics are in the daemon log, with where they happened.
    let log = std::fs::read_to_string(r.home().join("pm2.log")).expect("daemon log");
    for place in ["debug-panic:rpc", "debug-panic:actor"] {
        assert!(
            log.lines()
                .any(|l| l.contains("panic in thread") && l.contains(place)),
            "no panic line for {place} in:\n{log}"
        );
    }
}

#[test]
fn an_absurd_instance_count_is_refused_before_anything_changes() {
    let r = Rpm2::new();
    let out = r.run(&[
        "start",
        &fixture("idle.js"),
        "--name",
        "many",
        "-i",
        "4000000000",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stderr.contains("more than rpm2 runs"), "{}", out.all());
    assert!(r.procs("many").is_empty());

    r.ok(&["start", &fixture("idle.js"), "--name", "calm"]);
    let out = r.run(&["scale", "calm", "+4000000000"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stderr.contains("more than rpm2 runs"), "{}", out.all());
    assert_eq!(r.procs("calm").len(), 1);
}
