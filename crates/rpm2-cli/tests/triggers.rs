//! Restarts that neither a crash nor a user asked for: file changes
//! (`--watch`), a schedule (`--cron`) and memory (`--max-memory-restart`).

mod common;

use common::{fixture, pid_of, restart_time, wait_until, Rpm2};

#[test]
fn watch_restarts_on_a_file_change() {
    let r = Rpm2::new();
    let script = r.write("watched.js", "setInterval(() => {}, 1 << 30);\n");
    r.ok(&["start", &script, "--name", "watched", "--watch"]);
    let first = pid_of(&r.proc("watched"));
    assert_eq!(r.proc("watched")["pm2_env"]["watch"], true);

    // (Which paths are ignored is unit-tested in rpm2-core's triggers.rs.)
    std::fs::write(r.path("config.json"), "{}").unwrap();
    wait_until("a restart after the change", || {
        let p = r.proc("watched");
        (restart_time(&p) >= 1 && pid_of(&p) != first && pid_of(&p) != 0).then_some(())
    });
}

#[test]
fn cron_restart_restarts_on_schedule() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("idle.js"),
        "--name",
        "cron",
        "--cron",
        "*/1 * * * * *",
    ]);
    let first = pid_of(&r.proc("cron"));
    wait_until("a scheduled restart", || {
        let p = r.proc("cron");
        (restart_time(&p) >= 1 && pid_of(&p) != first).then_some(())
    });
}

#[test]
fn max_memory_restart_restarts_a_growing_app() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("grow.js"),
        "--name",
        "grow",
        "--max-memory-restart",
        "150M",
    ]);
    let first = pid_of(&r.proc("grow"));
    wait_until("a restart over the memory limit", || {
        let p = r.proc("grow");
        (restart_time(&p) >= 1 && pid_of(&p) != first).then_some(())
    });
    let log = std::fs::read_to_string(r.home().join("rpm2.log")).unwrap();
    assert!(log.contains("exceeds --max-memory-restart"), "{log}");
}
