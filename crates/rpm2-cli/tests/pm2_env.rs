//! pm2's environment variables: path overrides (`PM2_PID_FILE_PATH`,
//! `PM2_LOG_FILE_PATH`, …) given to the command that starts the daemon move
//! its files, and a path that cannot work is refused before anything is
//! created; `PM2_KILL_TIMEOUT` and friends are defaults of app options;
//! `PM2_LOG_DATE_FORMAT` sets the daemon log's timestamps.

mod common;

use common::{alive, wait_file, Rpm2};

#[test]
fn pm2_variables_move_the_daemons_files() {
    let r = Rpm2::new();
    let pid = r.path("daemon.pid");
    let log = r.path("daemon.log");
    let dump = r.path("saved.json");
    let vars = [
        ("PM2_PID_FILE_PATH", pid.to_str().unwrap()),
        ("PM2_LOG_FILE_PATH", log.to_str().unwrap()),
        ("PM2_DUMP_FILE_PATH", dump.to_str().unwrap()),
    ];
    r.run_env(&["ls"], &vars);
    let daemon: i32 = wait_file(&pid).trim().parse().unwrap();
    assert!(alive(daemon), "the pid file names the running daemon");
    assert!(
        !r.home().join("pm2.pid").exists(),
        "no pid file at the default place"
    );
    assert!(wait_file(&log).contains("daemon"), "the daemon logs there");
    assert!(!r.home().join("pm2.log").exists());
    // The daemon inherited the variables: save writes the moved dump.
    r.run_env(&["start", &common::fixture("idle.js")], &vars);
    r.run_env(&["save"], &vars);
    assert!(wait_file(&dump).contains("idle"));
    assert!(!r.home().join("dump.pm2").exists());
    // Another command finds the daemon by its socket, wherever its pid is.
    r.ok(&["kill"]);
    common::wait_dead(daemon);
}

#[test]
fn a_pid_file_in_a_missing_folder_is_refused_and_nothing_starts() {
    let r = Rpm2::new();
    let bad = r.path("no-such-dir/daemon.pid");
    let out = r.run_with(&["ls"], &[("PM2_PID_FILE_PATH", bad.to_str().unwrap())]);
    assert!(!out.success());
    assert!(
        out.stderr.contains(&format!(
            "PM2_PID_FILE_PATH={}: folder {} does not exist",
            bad.display(),
            r.path("no-such-dir").display()
        )),
        "{}",
        out.stderr
    );
    assert!(!r.home().join("pm2.log").exists(), "no daemon was started");
    assert!(!r.home().join("rpc.sock").exists());
    assert!(!r.path("no-such-dir").exists());
}

#[test]
fn a_log_file_path_that_is_a_folder_is_refused() {
    let r = Rpm2::new();
    let dir = r.work().to_str().unwrap().to_owned();
    let out = r.run_with(&["ping"], &[("PM2_LOG_FILE_PATH", &dir)]);
    assert!(!out.success());
    assert!(
        out.stderr
            .contains(&format!("PM2_LOG_FILE_PATH={dir}: it is a folder")),
        "{}",
        out.stderr
    );
    assert!(!r.home().join("rpc.sock").exists());
}

#[test]
fn pm2_option_variables_are_defaults_of_app_options() {
    let r = Rpm2::new();
    let vars = [
        ("PM2_KILL_TIMEOUT", "4321"),
        ("PM2_GRACEFUL_LISTEN_TIMEOUT", "6543"),
        ("PM2_KILL_USE_MESSAGE", "true"),
    ];
    r.run_env(
        &["start", &common::fixture("idle.js"), "--name", "from-env"],
        &vars,
    );
    let env = &r.proc("from-env")["pm2_env"];
    assert_eq!(env["kill_timeout"], 4321);
    assert_eq!(env["listen_timeout"], 6543);
    // An option given by the app wins over the variable.
    r.run_env(
        &[
            "start",
            &common::fixture("idle.js"),
            "--name",
            "own",
            "--kill-timeout",
            "100",
        ],
        &vars,
    );
    assert_eq!(r.proc("own")["pm2_env"]["kill_timeout"], 100);
    // A bad value is refused, and nothing is started.
    let out = r.run_with(
        &["start", &common::fixture("idle.js"), "--name", "bad"],
        &[("PM2_KILL_TIMEOUT", "soon")],
    );
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("PM2_KILL_TIMEOUT=\"soon\" is not a number of milliseconds"),
        "{}",
        out.stderr
    );
    assert!(r.procs("bad").is_empty());
}

#[test]
fn pm2_log_date_format_stamps_the_daemon_log() {
    // A dayjs format: lines start with it (local time).
    let r = Rpm2::new();
    r.run_env(&["ping"], &[("PM2_LOG_DATE_FORMAT", "[at] YYYY/MM/DD")]);
    let log = wait_file(&r.home().join("pm2.log"));
    let started = log
        .lines()
        .find(|l| l.contains("daemon") && l.contains("started"))
        .unwrap_or_else(|| panic!("{log}"));
    let stamp = started.split_whitespace().take(2).collect::<Vec<_>>();
    assert_eq!(stamp[0], "at", "{started}");
    let date: Vec<&str> = stamp[1].split('/').collect();
    assert!(
        date.len() == 3 && date.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{started}"
    );
    // Empty: no stamp, the level comes first.
    let r = Rpm2::new();
    r.run_env(&["ping"], &[("PM2_LOG_DATE_FORMAT", "")]);
    let log = wait_file(&r.home().join("pm2.log"));
    let started = log
        .lines()
        .find(|l| l.contains("daemon") && l.contains("started"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(started.trim_start().starts_with("INFO"), "{started}");
}
