//! pm2's path overrides: `PM2_PID_FILE_PATH`, `PM2_LOG_FILE_PATH`, … given
//! to the command that starts the daemon move its files; a path that
//! cannot work is refused before anything is created.

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
        !r.home().join("rpm2.pid").exists(),
        "no pid file at the default place"
    );
    assert!(wait_file(&log).contains("daemon"), "the daemon logs there");
    assert!(!r.home().join("rpm2.log").exists());
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
    assert!(!r.home().join("rpm2.log").exists(), "no daemon was started");
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
