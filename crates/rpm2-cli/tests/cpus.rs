//! `instances: max` counts the CPUs this process may use: under
//! `taskset -c 0` a cluster app gets one worker, whatever the host has.

mod common;

use std::process::Command;

use common::{bin, fixture, Rpm2};

#[test]
fn max_instances_follow_the_affinity_mask() {
    if Command::new("taskset").arg("-V").output().is_err() {
        eprintln!("skipped: no taskset on this machine");
        return;
    }
    let r = Rpm2::new();
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        "0",
        bin(),
        "start",
        &fixture("idle.js"),
        "--name",
        "pinned",
        "-i",
        "max",
    ])
    .current_dir(r.work())
    .env("RPM2_HOME", r.home())
    .env("NO_COLOR", "1");
    for (name, _) in rpm2_client::home::OVERRIDES {
        cmd.env_remove(name);
    }
    let out = cmd.output().expect("run taskset");
    assert!(
        out.status.success(),
        "taskset rpm2 start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `start` returns once every worker is spawned: the count is final.
    let procs = r.procs("pinned");
    assert_eq!(procs.len(), 1, "one CPU allowed, one worker: {procs:?}");
    let workers = r.wait_online("pinned", 1);
    assert_eq!(
        workers[0]["pm2_env"]["exec_mode"], "cluster_mode",
        "`-i max` still means cluster mode"
    );
}
