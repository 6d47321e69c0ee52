//! The crash/restart policy with real crashing apps: restarts, `errored`
//! after max_restarts, a stable run resetting the unstable count,
//! stop_exit_codes, autorestart false, restart_delay.

mod common;

use common::{fixture, pid_of, restart_time, status_of, wait_until, Rpm2};

fn runs(r: &Rpm2, counter: &str) -> u32 {
    std::fs::read_to_string(r.path(counter))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_crash_is_restarted_with_a_new_pid() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--name",
        "crashy",
        "--max-restarts",
        "1000",
        "--",
        "1",
        "300",
    ]);
    let first = pid_of(&r.proc("crashy"));
    assert!(first > 0);
    let mut pids = vec![first];
    let p = wait_until("two restarts with new pids", || {
        let p = r.proc("crashy");
        let pid = pid_of(&p);
        if pid > 0 && !pids.contains(&pid) {
            pids.push(pid);
        }
        (restart_time(&p) >= 2 && pids.len() >= 3).then_some(p)
    });
    assert!(p["pm2_env"]["unstable_restarts"].as_u64().unwrap() >= 2);
    assert_ne!(status_of(&p), "errored");
    r.ok(&["stop", "crashy"]);
    let p = r.proc("crashy");
    assert_eq!(status_of(&p), "stopped");
    // A manual stop does not count as a crash.
    assert!(restart_time(&p) >= 2);
}

#[test]
fn errored_after_max_restarts() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--name",
        "doomed",
        "--max-restarts",
        "3",
    ]);
    let p = r.wait_status("doomed", "errored");
    assert_eq!(p["pid"], 0);
    // Three unstable runs: the first start and two restarts.
    assert_eq!(restart_time(&p), 2);
    assert_eq!(p["pm2_env"]["exit_code"], 1);
    // It stays errored (no restart is pending).
    r.ok(&["ping"]);
    assert_eq!(status_of(&r.proc("doomed")), "errored");
    // A manual restart starts it again.
    r.ok(&["restart", "doomed"]);
    r.wait_status("doomed", "errored");
}

/// Runs 1-2 crash at once (unstable), run 3 lives longer than min_uptime
/// (stable: the count resets), runs 4-6 crash at once → errored after run 6.
/// Without the reset it would be errored after run 4.
#[test]
fn a_stable_run_resets_the_unstable_count() {
    let r = Rpm2::new();
    let counter = r.path("runs").display().to_string();
    let eco = r.write(
        "reset.config.json",
        &serde_json::json!({"apps": [{
            "name": "wobbly",
            "script": fixture("runs.js"),
            "args": [counter, "crash,crash,2000,crash"],
            "min_uptime": 1000,
            "max_restarts": 3,
        }]})
        .to_string(),
    );
    r.ok(&["start", &eco]);
    let p = r.wait_status("wobbly", "errored");
    assert_eq!(runs(&r, "runs"), 6);
    assert_eq!(restart_time(&p), 5);
}

#[test]
fn stop_exit_codes_stop_without_restart() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--stop-exit-codes",
        "3",
        "4",
        "--name",
        "quitter",
        "--",
        "3",
        "200",
    ]);
    let p = r.wait_status("quitter", "stopped");
    assert_eq!(restart_time(&p), 0);
    assert_eq!(p["pm2_env"]["exit_code"], 3);
    assert_eq!(p["pid"], 0);

    // An exit code not in the list is restarted.
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--stop-exit-codes",
        "3",
        "--name",
        "other",
        "--",
        "5",
        "200",
    ]);
    wait_until("other to restart", || {
        (restart_time(&r.proc("other")) >= 1).then_some(())
    });
}

#[test]
fn autorestart_false_stops_after_exit() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--name",
        "once",
        "--no-autorestart",
        "--",
        "1",
        "200",
    ]);
    let p = r.wait_status("once", "stopped");
    assert_eq!(restart_time(&p), 0);
    assert_eq!(p["pm2_env"]["exit_code"], 1);
    // A clean exit too.
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--name",
        "clean",
        "--no-autorestart",
        "--",
        "0",
    ]);
    let p = r.wait_status("clean", "stopped");
    assert_eq!(restart_time(&p), 0);
    assert_eq!(p["pm2_env"]["exit_code"], 0);
}

#[test]
fn restart_delay_waits_in_waiting_restart() {
    let r = Rpm2::new();
    let counter = r.path("runs").display().to_string();
    r.ok(&[
        "start",
        &fixture("runs.js"),
        "--name",
        "patient",
        "--restart-delay",
        "1500",
        "--",
        &counter,
        "crash,stay",
    ]);
    // The first run crashes at once: `waiting restart` for the delay...
    let p = r.wait_status("patient", "waiting restart");
    assert_eq!(p["pid"], 0);
    // pm2 counts the restart when it happens, not at the crash.
    assert_eq!(restart_time(&p), 0);
    // ...then the second run stays up.
    let p = wait_until("patient to be back online", || {
        let p = r.proc("patient");
        (status_of(&p) == "online" && runs(&r, "runs") == 2).then_some(p)
    });
    assert_eq!(restart_time(&p), 1);
    assert!(pid_of(&p) > 0);
}

#[test]
fn stop_during_restart_delay_cancels_the_restart() {
    let r = Rpm2::new();
    let counter = r.path("runs").display().to_string();
    r.ok(&[
        "start",
        &fixture("runs.js"),
        "--name",
        "cancelled",
        "--restart-delay",
        "1000",
        "--",
        &counter,
        "crash,stay",
    ]);
    r.wait_status("cancelled", "waiting restart");
    r.ok(&["stop", "cancelled"]);
    assert_eq!(status_of(&r.proc("cancelled")), "stopped");
    // Starting it again is the only way it runs a second time.
    r.ok(&["start", "cancelled"]);
    r.wait_status("cancelled", "online");
    wait_until("the second run", || (runs(&r, "runs") == 2).then_some(()));
    assert_eq!(status_of(&r.proc("cancelled")), "online");
}
