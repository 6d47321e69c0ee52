//! start/stop/restart/delete by name, id and `all`; unknown targets; the
//! jlist shape and the worker's env; signals and graceful stop; wait_ready;
//! scale, sendSignal and reset in fork mode.

mod common;

use common::{
    alive, fixture, pid_of, restart_time, status_of, wait_dead, wait_file, wait_json, wait_until,
    Rpm2,
};

fn start_idle(r: &Rpm2, name: &str) {
    r.ok(&["start", &fixture("idle.js"), "--name", name]);
}

fn statuses(r: &Rpm2) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .jlist()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("?").to_owned(),
                status_of(p).to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn start_stop_restart_delete_by_name_id_and_all() {
    let r = Rpm2::new();
    for name in ["a", "b", "c"] {
        start_idle(&r, name);
    }
    let ids: Vec<u64> = r
        .jlist()
        .iter()
        .map(|p| p["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2]);
    let c_pid = pid_of(&r.proc("c"));

    // By name, then by id.
    r.ok(&["stop", "a"]);
    r.ok(&["stop", "1"]);
    assert_eq!(
        statuses(&r),
        pairs(&[("a", "stopped"), ("b", "stopped"), ("c", "online")])
    );
    assert_eq!(r.proc("a")["pid"], 0);

    // `restart all`: stopped apps are just started (restart_time unchanged),
    // the running one is restarted (new pid, restart_time + 1).
    r.ok(&["restart", "all"]);
    assert_eq!(
        statuses(&r),
        pairs(&[("a", "online"), ("b", "online"), ("c", "online")])
    );
    assert_eq!(restart_time(&r.proc("a")), 0);
    assert_eq!(restart_time(&r.proc("b")), 0);
    let c = r.proc("c");
    assert_eq!(restart_time(&c), 1);
    assert_ne!(pid_of(&c), c_pid);
    wait_dead(c_pid);

    // Several targets at once, mixing names and ids.
    r.ok(&["stop", "a", "2"]);
    assert_eq!(
        statuses(&r),
        pairs(&[("a", "stopped"), ("b", "online"), ("c", "stopped")])
    );
    // `start <name>` and `start <id>` start known apps again.
    r.ok(&["start", "a"]);
    r.ok(&["start", "2"]);
    assert_eq!(
        statuses(&r),
        pairs(&[("a", "online"), ("b", "online"), ("c", "online")])
    );
    // Restart by id.
    let b_pid = pid_of(&r.proc("b"));
    r.ok(&["restart", "1"]);
    assert_ne!(pid_of(&r.proc("b")), b_pid);
    assert_eq!(restart_time(&r.proc("b")), 1);

    // `stop all`.
    let pids: Vec<i32> = r.jlist().iter().map(pid_of).collect();
    r.ok(&["stop", "all"]);
    assert!(r.jlist().iter().all(|p| status_of(p) == "stopped"));
    for pid in pids {
        wait_dead(pid);
    }
    r.ok(&["restart", "all"]);

    // Delete by name and id at once, then `delete all`.
    let a_pid = pid_of(&r.proc("a"));
    r.ok(&["delete", "a", "1"]);
    assert_eq!(statuses(&r), pairs(&[("c", "online")]));
    wait_dead(a_pid);
    let c_pid = pid_of(&r.proc("c"));
    r.ok(&["delete", "all"]);
    assert!(r.jlist().is_empty());
    wait_dead(c_pid);
}

#[test]
fn unknown_targets_fail_with_a_clear_message() {
    let r = Rpm2::new();
    start_idle(&r, "known");
    let pid = pid_of(&r.proc("known"));
    for args in [
        &["stop", "nope"][..],
        &["restart", "nope"],
        &["reload", "nope"],
        &["delete", "nope"],
        &["reset", "nope"],
        &["sendSignal", "SIGUSR2", "nope"],
        &["stop", "42"],
        &["start", "nope"],
    ] {
        let out = r.fails(args);
        assert!(
            out.stderr.contains("nope") || out.stderr.contains("42"),
            "rpm2 {args:?} should name the unknown target: {}",
            out.all()
        );
    }
    let out = r.fails(&["scale", "nope", "2"]);
    assert!(out.stderr.contains("nope"), "{}", out.all());
    // describe: exit 1 and pm2's warning.
    let out = r.run(&["describe", "nope"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.all().contains("nope doesn't exist"), "{}", out.all());
    // The known app was never touched.
    let p = r.proc("known");
    assert_eq!(status_of(&p), "online");
    assert_eq!(pid_of(&p), pid);
    assert_eq!(restart_time(&p), 0);
    // describe of a known app works.
    let out = r.ok(&["describe", "known"]);
    assert!(out.stdout.contains("known"), "{}", out.stdout);
}

#[test]
fn jlist_shape_and_the_worker_env() {
    let r = Rpm2::new();
    let env_file = r.path("env.json");
    r.ok(&[
        "start",
        &fixture("env_dump.js"),
        "--name",
        "shape",
        "--",
        &env_file.display().to_string(),
    ]);
    let env = wait_json(&env_file);
    let p = r.proc("shape");
    let home = r.home().display().to_string();

    assert!(p["pid"].as_u64().unwrap() > 0);
    assert_eq!(p["name"], "shape");
    assert_eq!(p["pm_id"], 0);
    assert!(p["monit"]["memory"].is_u64(), "{p}");
    assert!(p["monit"]["cpu"].is_number(), "{p}");
    let e = &p["pm2_env"];
    assert_eq!(e["status"], "online");
    assert_eq!(e["exec_mode"], "fork_mode");
    assert_eq!(e["restart_time"], 0);
    assert_eq!(e["unstable_restarts"], 0);
    assert!(e["pm_uptime"].as_u64().unwrap() > 0);
    assert!(e["created_at"].as_u64().unwrap() > 0);
    assert!(e["created_at"].as_u64() <= e["pm_uptime"].as_u64());
    assert_eq!(e["NODE_APP_INSTANCE"], 0);
    assert_eq!(e["instances"], 1);
    assert!(
        e["pm_exec_path"]
            .as_str()
            .unwrap()
            .ends_with("fixtures/env_dump.js"),
        "{e}"
    );
    assert_eq!(e["pm_out_log_path"], format!("{home}/logs/shape-out.log"));
    assert_eq!(e["pm_err_log_path"], format!("{home}/logs/shape-error.log"));
    // pm2's `env` is the environment as given: none of its bookkeeping.
    assert!(e["env"].is_object(), "{e}");
    assert_eq!(e["env"].get("pm_id"), None, "{e}");
    assert_eq!(e["env"].get("status"), None, "{e}");
    assert_eq!(e["env"]["unique_id"], e["unique_id"]);

    // What the worker itself sees.
    assert_eq!(env["pm_id"], "0");
    assert_eq!(env["name"], "shape");
    assert_eq!(env["NODE_APP_INSTANCE"], "0");
    assert_eq!(env["unique_id"], e["unique_id"]);
    assert!(!env["unique_id"].as_str().unwrap().is_empty());
    assert_eq!(env["pm_exec_path"], e["pm_exec_path"]);
    assert_eq!(env["PM2_HOME"], home.as_str());
    // The shell env of `rpm2 start` is inherited (pm2 §2.3).
    assert_eq!(env["NO_COLOR"], "1");

    // unique_id is kept across a restart.
    let unique = e["unique_id"].clone();
    std::fs::remove_file(&env_file).unwrap();
    r.ok(&["restart", "shape"]);
    let env = wait_json(&env_file);
    assert_eq!(env["unique_id"], unique);
    assert_eq!(env["restart_time"], "1");
}

#[test]
fn sigint_handler_runs_on_stop() {
    let r = Rpm2::new();
    let marker = r.path("sigint");
    let m = marker.display().to_string();
    r.ok(&["start", &fixture("sigint.js"), "--name", "int", "--", &m]);
    wait_file(&r.path("sigint.up"));
    let pid = pid_of(&r.proc("int"));
    r.ok(&["stop", "int"]);
    // stop answers once the process is gone, so the handler has run.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "sigint");
    assert_eq!(status_of(&r.proc("int")), "stopped");
    assert!(!alive(pid));
}

#[test]
fn an_app_ignoring_sigint_is_killed_after_kill_timeout() {
    let r = Rpm2::new();
    let m = r.path("ign").display().to_string();
    r.ok(&[
        "start",
        &fixture("ignore_sigint.js"),
        "--name",
        "stubborn",
        "--kill-timeout",
        "300",
        "--",
        &m,
    ]);
    wait_file(&r.path("ign.up"));
    let pid = pid_of(&r.proc("stubborn"));
    r.ok(&["stop", "stubborn"]);
    let p = r.proc("stubborn");
    assert_eq!(status_of(&p), "stopped");
    assert_eq!(p["pid"], 0);
    assert!(!alive(pid), "pid {pid} survived stop");
    // And it starts again normally.
    r.ok(&["start", "stubborn"]);
    assert_eq!(status_of(&r.proc("stubborn")), "online");
}

#[test]
fn shutdown_with_message_sends_shutdown_over_ipc() {
    let r = Rpm2::new();
    let marker = r.path("shutdown");
    let m = marker.display().to_string();
    r.ok(&[
        "start",
        &fixture("shutdown_msg.js"),
        "--name",
        "polite",
        "--shutdown-with-message",
        // Long enough that a SIGKILL cannot be mistaken for a clean exit.
        "--kill-timeout",
        "20000",
        "--",
        &m,
    ]);
    wait_file(&r.path("shutdown.up"));
    r.ok(&["stop", "polite"]);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "shutdown");
    let p = r.proc("polite");
    assert_eq!(status_of(&p), "stopped");
    assert_eq!(p["pm2_env"]["exit_code"], 0);
}

#[test]
fn stop_kills_the_grandchildren_too() {
    let r = Rpm2::new();
    let pid_file = r.path("grandchild.pid");
    r.ok(&[
        "start",
        &fixture("grandchild.js"),
        "--name",
        "tree",
        "--",
        &pid_file.display().to_string(),
    ]);
    let grandchild: i32 = wait_file(&pid_file).trim().parse().unwrap();
    assert!(alive(grandchild));
    r.ok(&["stop", "tree"]);
    wait_dead(grandchild);
}

#[test]
fn wait_ready_keeps_launching_until_ready() {
    let r = Rpm2::new();
    let go = r.path("go");
    let mut start = r.spawn(&[
        "start",
        &fixture("ready_on_file.js"),
        "--name",
        "slow",
        "--wait-ready",
        "--listen-timeout",
        "120000",
        "--",
        &go.display().to_string(),
    ]);
    // The worker exists and is launching; `start` waits for it.
    let p = wait_until("slow to be launching", || {
        r.procs("slow")
            .into_iter()
            .next()
            .filter(|p| status_of(p) == "launching" && pid_of(p) > 0)
    });
    assert_eq!(status_of(&r.proc("slow")), "launching");
    assert!(!start.finished(), "start returned before the app was ready");
    std::fs::write(&go, "go").unwrap();
    let out = start.wait(std::time::Duration::from_secs(60)).unwrap();
    assert!(out.success(), "{}", out.all());
    let online = r.proc("slow");
    assert_eq!(status_of(&online), "online");
    assert_eq!(pid_of(&online), pid_of(&p));
    assert_eq!(restart_time(&online), 0);
}

#[test]
fn listen_timeout_makes_a_never_ready_app_online() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("idle.js"),
        "--name",
        "mute",
        "--wait-ready",
        "--listen-timeout",
        "300",
    ]);
    let p = r.wait_status("mute", "online");
    assert_eq!(restart_time(&p), 0);
    assert!(pid_of(&p) > 0);
}

#[test]
fn scale_up_and_down_in_fork_mode() {
    let r = Rpm2::new();
    let eco = r.write(
        "scale.config.json",
        &format!(
            r#"{{"apps": [{{"name": "sc", "script": "{}", "exec_mode": "fork", "instances": 2}}]}}"#,
            fixture("idle.js")
        ),
    );
    r.ok(&["start", &eco]);
    let procs = r.wait_online("sc", 2);
    assert!(procs
        .iter()
        .all(|p| p["pm2_env"]["exec_mode"] == "fork_mode"));
    r.ok(&["scale", "sc", "4"]);
    let procs = r.wait_online("sc", 4);
    let mut instances: Vec<u64> = procs
        .iter()
        .map(|p| p["pm2_env"]["NODE_APP_INSTANCE"].as_u64().unwrap())
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, [0, 1, 2, 3]);
    let mut pids: Vec<i32> = procs.iter().map(pid_of).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 4, "each worker is its own process");

    r.ok(&["scale", "sc", "1"]);
    let left = r.wait_online("sc", 1);
    for p in &procs {
        if pid_of(p) != pid_of(&left[0]) {
            wait_dead(pid_of(p));
        }
    }
    r.ok(&["scale", "sc", "+1"]);
    r.wait_online("sc", 2);
    r.ok(&["scale", "sc", "-1"]);
    r.wait_online("sc", 1);
    // Nothing to do / impossible counts fail.
    assert!(!r.run(&["scale", "sc", "0"]).success());
    assert!(!r.run(&["scale", "sc", "lots"]).success());
    r.wait_online("sc", 1);
}

#[test]
fn send_signal_reaches_the_app() {
    let r = Rpm2::new();
    let marker = r.path("usr2");
    let m = marker.display().to_string();
    r.ok(&["start", &fixture("usr2.js"), "--name", "sig", "--", &m]);
    wait_file(&r.path("usr2.up"));
    let pid = pid_of(&r.proc("sig"));
    r.ok(&["sendSignal", "SIGUSR2", "sig"]);
    assert_eq!(wait_file(&marker), "SIGUSR2");
    // By id too; the app is still the same process.
    std::fs::remove_file(&marker).unwrap();
    r.ok(&["sendSignal", "SIGUSR2", "0"]);
    assert_eq!(wait_file(&marker), "SIGUSR2");
    let p = r.proc("sig");
    assert_eq!(pid_of(&p), pid);
    assert_eq!(status_of(&p), "online");
    assert!(!r.run(&["sendSignal", "SIGNOPE", "sig"]).success());
}

#[test]
fn reset_zeroes_restart_time() {
    let r = Rpm2::new();
    start_idle(&r, "rs");
    r.ok(&["restart", "rs"]);
    r.ok(&["restart", "rs"]);
    assert_eq!(restart_time(&r.proc("rs")), 2);
    let created = r.proc("rs")["pm2_env"]["created_at"].as_u64().unwrap();
    r.ok(&["reset", "rs"]);
    let p = r.proc("rs");
    assert_eq!(restart_time(&p), 0);
    assert_eq!(p["pm2_env"]["unstable_restarts"], 0);
    assert!(p["pm2_env"]["created_at"].as_u64().unwrap() >= created);
    assert_eq!(status_of(&p), "online");
    r.ok(&["restart", "0"]);
    r.ok(&["reset", "all"]);
    assert_eq!(restart_time(&r.proc("rs")), 0);
}

#[test]
fn stop_and_delete_while_launching_end_the_pending_start() {
    let r = Rpm2::new();
    let never = r.path("never").display().to_string();
    for (name, action) in [("stuck", "stop"), ("gone", "delete")] {
        let start = r.spawn(&[
            "start",
            &fixture("ready_on_file.js"),
            "--name",
            name,
            "--wait-ready",
            "--listen-timeout",
            "120000",
            "--",
            &never,
        ]);
        let p = wait_until(&format!("{name} to be launching"), || {
            r.procs(name)
                .into_iter()
                .next()
                .filter(|p| status_of(p) == "launching" && pid_of(p) > 0)
        });
        r.ok(&[action, name]);
        wait_dead(pid_of(&p));
        // The blocked `start` returns (whatever it says) instead of hanging.
        start
            .wait(std::time::Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("start of {name} after {action}: {e}"));
    }
    assert_eq!(status_of(&r.proc("stuck")), "stopped");
    assert!(r.procs("gone").is_empty());
}

#[test]
fn pid_files_and_the_pid_id_env_commands() {
    let r = Rpm2::new();
    start_idle(&r, "pf");
    let pid = pid_of(&r.proc("pf"));
    let pid_file = r.home().join("pids/pf-0.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(r.ok(&["pid", "pf"]).stdout.trim(), pid.to_string());
    assert!(r.ok(&["id", "pf"]).stdout.contains('0'));
    let env = r.ok(&["env", "0"]).stdout;
    // pm2's `env` leaves its bookkeeping (name, pm_id, status…) out.
    assert!(env.lines().any(|l| l == "namespace: default"), "{env}");
    assert!(!env.lines().any(|l| l.starts_with("name: ")), "{env}");
    r.ok(&["stop", "pf"]);
    assert!(!pid_file.exists(), "pid file left after stop");
}

#[test]
fn no_autostart_registers_a_stopped_app() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("idle.js"),
        "--name",
        "lazy",
        "--no-autostart",
    ]);
    let p = r.proc("lazy");
    assert_eq!(status_of(&p), "stopped");
    assert_eq!(p["pid"], 0);
    r.ok(&["start", "lazy"]);
    assert_eq!(status_of(&r.proc("lazy")), "online");
}

#[test]
fn restart_keeps_the_env_unless_update_env() {
    let r = Rpm2::new();
    let file = r.path("env.json");
    let f = file.display().to_string();
    let greeting = || wait_json(&file)["GREETING"].clone();
    r.run_env(
        &["start", &fixture("env_dump.js"), "--name", "upd", "--", &f],
        &[("GREETING", "one")],
    );
    assert_eq!(greeting(), "one");
    std::fs::remove_file(&file).unwrap();
    r.run_env(&["restart", "upd"], &[("GREETING", "two")]);
    assert_eq!(greeting(), "one", "restart by name keeps the stored env");
    std::fs::remove_file(&file).unwrap();
    r.run_env(
        &["restart", "upd", "--update-env"],
        &[("GREETING", "three")],
    );
    assert_eq!(greeting(), "three");
}
