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
    let log = std::fs::read_to_string(r.home().join("pm2.log")).unwrap();
    assert!(log.contains("exceeds --max-memory-restart"), "{log}");
}

#[test]
fn stop_ends_watching_and_restart_watch_toggles_it() {
    let r = Rpm2::new();
    let script = r.write("toggled.js", "setInterval(() => {}, 1 << 30);\n");
    let watching = |r: &Rpm2| r.proc("toggled")["pm2_env"]["watch"].clone();
    r.ok(&["start", &script, "--name", "toggled", "--watch"]);
    assert_eq!(watching(&r), true);
    // As pm2: what is stopped is no longer watched, and stays so.
    r.ok(&["stop", "toggled"]);
    assert_eq!(watching(&r), false);
    r.ok(&["start", "toggled"]);
    r.wait_status("toggled", "online");
    assert_eq!(watching(&r), false);
    // `start <script> --watch` of the known app toggles it (pm2 does so on
    // any restart asked with --watch) ...
    r.ok(&["stop", "toggled"]);
    r.ok(&["start", &script, "--watch"]);
    r.wait_status("toggled", "online");
    assert_eq!(watching(&r), true);
    r.ok(&["restart", "toggled", "--watch"]);
    assert_eq!(watching(&r), false);
    // ... so does `restart --watch` (and the watcher works) ...
    r.ok(&["restart", "toggled", "--watch"]);
    assert_eq!(watching(&r), true);
    let before = restart_time(&r.proc("toggled"));
    std::fs::write(r.path("changed.json"), "{}").unwrap();
    wait_until("a restart after the change", || {
        (restart_time(&r.proc("toggled")) > before).then_some(())
    });
    r.wait_status("toggled", "online");
    // ... and off again.
    r.ok(&["restart", "toggled", "--watch"]);
    assert_eq!(watching(&r), false);
    // An unknown target changes nothing.
    r.fails(&["restart", "nope", "--watch"]);
    assert_eq!(watching(&r), false);
}
