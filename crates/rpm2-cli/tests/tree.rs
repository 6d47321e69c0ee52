//! `stop` and `kill` end a worker's whole process tree, including
//! descendants that left its process group or session.

mod common;

use common::{alive, fixture, wait_dead, wait_file, Rpm2};

/// Start the detached fixture; returns its grandchild's pid.
fn start_detached(r: &Rpm2, name: &str) -> i32 {
    let pid_file = r.path(&format!("{name}.pid"));
    r.ok(&[
        "start",
        &fixture("detached.js"),
        "--name",
        name,
        "--",
        &pid_file.display().to_string(),
    ]);
    let grandchild: i32 = wait_file(&pid_file).trim().parse().unwrap();
    assert!(alive(grandchild));
    grandchild
}

#[test]
fn stop_ends_a_detached_grandchild_that_ignores_sigint() {
    let r = Rpm2::new();
    let grandchild = start_detached(&r, "tree");
    r.ok(&["stop", "tree"]);
    wait_dead(grandchild);
}

#[test]
fn kill_ends_a_detached_grandchild_before_the_daemon_exits() {
    let r = Rpm2::new();
    let grandchild = start_detached(&r, "tree");
    r.ok(&["kill"]);
    // Nothing else would ever end it: the daemon is gone.
    wait_dead(grandchild);
}

#[test]
fn treekill_false_leaves_the_grandchild_alone() {
    let r = Rpm2::new();
    let pid_file = r.path("solo.pid");
    let config = r.path("solo.config.js");
    std::fs::write(
        &config,
        format!(
            "module.exports = {{ apps: [{{ name: 'solo', script: {:?}, args: [{:?}], treekill: false }}] }};",
            fixture("detached.js"),
            pid_file.display().to_string()
        ),
    )
    .unwrap();
    r.ok(&["start", &config.display().to_string()]);
    let grandchild: i32 = wait_file(&pid_file).trim().parse().unwrap();
    r.ok(&["stop", "solo"]);
    assert!(alive(grandchild), "treekill: false must not reach it");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(grandchild),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_dead(grandchild);
}
