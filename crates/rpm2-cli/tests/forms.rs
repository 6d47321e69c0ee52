//! pm2's command-line forms: `/regex/`, script files and config files as
//! targets, `start -` (a config on stdin), `start -f`, `-x`, `-p`, `all`
//! with no process, `update` and `ecosystem`. Bad input fails clearly and
//! changes nothing.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fixture, pid_of, restart_time, status_of, wait_until, Out, Rpm2};
use serde_json::Value;

/// A copy of the idle fixture in the work directory, so that relative
/// script paths can be used as from a shell in the app's folder.
fn local_app(r: &Rpm2, name: &str) -> String {
    let text = std::fs::read_to_string(fixture("idle.js")).unwrap();
    r.write(name, &text);
    name.to_owned()
}

/// `rpm2 <args>` with `input` on stdin (a hang guard, not a timing check).
fn run_stdin(r: &Rpm2, args: &[&str], input: &str) -> Out {
    let mut child = r
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rpm2 {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Out {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn names_and_status(r: &Rpm2) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .jlist()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                status_of(p).to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pair(name: &str, status: &str) -> (String, String) {
    (name.to_owned(), status.to_owned())
}

#[test]
fn regex_targets_match_names() {
    let r = Rpm2::new();
    let app = local_app(&r, "app.js");
    for name in ["echo-1", "echo-2", "echo-3"] {
        r.ok(&["start", &app, "--name", name]);
        r.wait_status(name, "online");
    }
    r.ok(&["stop", "/echo-[1,2]/"]);
    assert_eq!(
        names_and_status(&r),
        [
            pair("echo-1", "stopped"),
            pair("echo-2", "stopped"),
            pair("echo-3", "online")
        ]
    );
    r.ok(&["restart", "/echo-[12]/"]);
    r.wait_status("echo-1", "online");
    r.wait_status("echo-2", "online");

    // A bad regex and a regex matching nothing: clear errors, nothing changed.
    let out = r.fails(&["stop", "/echo-[/"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("invalid regex /echo-[/"),
        "{}",
        out.stderr
    );
    let out = r.fails(&["delete", "/nothing-here/"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("No process found"), "{}", out.stderr);
    assert!(names_and_status(&r).iter().all(|(_, s)| s == "online"));
    assert_eq!(r.jlist().len(), 3);
}

#[test]
fn script_files_name_their_processes() {
    let r = Rpm2::new();
    let app = local_app(&r, "001-app.js");
    r.ok(&["start", &app]);
    let before = r.wait_status("001-app", "online");
    r.ok(&["stop", &app]);
    assert_eq!(status_of(&r.proc("001-app")), "stopped");
    // Starting the same script again restarts the stopped app.
    r.ok(&["start", &app]);
    r.wait_status("001-app", "online");
    r.ok(&["restart", "./001-app.js"]);
    let after = r.wait_status("001-app", "online");
    assert_ne!(pid_of(&before), pid_of(&after));
    // By absolute path too, then gone.
    let abs = r.path("001-app.js").display().to_string();
    r.ok(&["delete", &abs]);
    assert!(r.jlist().is_empty());
}

#[test]
fn a_running_script_starts_again_only_with_force() {
    let r = Rpm2::new();
    let app = local_app(&r, "echo.js");
    r.ok(&["start", &app]);
    r.wait_status("echo", "online");
    let out = r.fails(&["start", &app]);
    assert!(
        out.stderr
            .contains("Script already launched, add -f option to force re-execution"),
        "{}",
        out.stderr
    );
    assert_eq!(r.procs("echo").len(), 1);

    // -f: a second app of the same name, beside the first; -i gives it
    // its own mode and count.
    r.ok(&["start", &app, "-f"]);
    r.ok(&["start", &app, "-f", "-i", "2"]);
    let procs = r.wait_online("echo", 4);
    let ids: Vec<u64> = procs.iter().map(|p| p["pm_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    let modes: Vec<&str> = procs
        .iter()
        .map(|p| p["pm2_env"]["exec_mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        ["fork_mode", "fork_mode", "cluster_mode", "cluster_mode"]
    );

    // Ids act on one process; the name on all of them.
    r.ok(&["stop", "1"]);
    let procs = r.procs("echo");
    assert_eq!(status_of(&procs[1]), "stopped");
    assert_eq!(status_of(&procs[0]), "online");
    r.ok(&["restart", "echo"]);
    let procs = r.wait_online("echo", 4);
    assert_eq!(restart_time(&procs[0]), 1);
    assert_eq!(restart_time(&procs[3]), 1);

    // A dump holds both apps, and resurrect brings both back.
    r.ok(&["save"]);
    r.ok(&["kill"]);
    r.ok(&["resurrect"]);
    r.wait_online("echo", 4);
    r.ok(&["delete", "echo"]);
    assert!(r.jlist().is_empty());
}

#[test]
fn a_config_on_stdin_starts_and_deletes() {
    let r = Rpm2::new();
    let app = local_app(&r, "piped.js");
    let config = format!(r#"{{"apps": [{{"name": "piped", "script": "{app}"}}]}}"#);
    let out = run_stdin(&r, &["start", "-"], &config);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    r.wait_status("piped", "online");
    let out = run_stdin(&r, &["stop", "-"], &config);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert_eq!(status_of(&r.proc("piped")), "stopped");
    let out = run_stdin(&r, &["delete", "-"], &config);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(r.jlist().is_empty());

    // pm2 evaluates piped text as JavaScript: code in it works.
    let js = r#"[{ name: 'js' + 'expr', script: ['pip', 'ed.js'].join('') }]"#;
    let out = run_stdin(&r, &["start", "-"], js);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    r.wait_status("jsexpr", "online");
}

#[test]
fn bad_stdin_is_a_config_error_and_starts_nothing() {
    let r = Rpm2::new();
    let out = run_stdin(&r, &["start", "-"], "");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("stdin: no config given"),
        "{}",
        out.stderr
    );
    let out = run_stdin(&r, &["start", "-"], r#"{"apps": [{"name": "x", "#);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("stdin: invalid JSON"), "{}", out.stderr);
    let out = run_stdin(&r, &["delete", "-"], "{ not json at all");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = run_stdin(&r, &["start", "-", "other.js"], "[]");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(r.jlist().is_empty());
}

#[test]
fn config_files_name_their_apps() {
    let r = Rpm2::new();
    let app = local_app(&r, "cfg.js");
    let eco = r.write(
        "two.json",
        &format!(
            r#"{{"apps": [{{"name": "one", "script": "{app}"}}, {{"name": "two", "script": "{app}"}}]}}"#
        ),
    );
    r.ok(&["start", &app, "--name", "other"]);
    r.ok(&["start", &eco]);
    r.wait_status("two", "online");
    r.ok(&["stop", &eco, "--only", "one"]);
    assert_eq!(
        names_and_status(&r),
        [
            pair("one", "stopped"),
            pair("other", "online"),
            pair("two", "online")
        ]
    );
    r.ok(&["delete", &eco]);
    assert_eq!(names_and_status(&r), [pair("other", "online")]);
    // Its apps are gone: nothing to do, not an error (pm2).
    r.ok(&["stop", &eco]);
    assert_eq!(names_and_status(&r), [pair("other", "online")]);
}

#[test]
fn all_with_no_process_is_an_error() {
    let r = Rpm2::new();
    for action in ["restart", "stop", "delete", "reload", "reset"] {
        let out = r.fails(&[action, "all"]);
        assert_eq!(out.code, Some(1), "{action}");
        assert!(
            out.stderr.contains("No process found"),
            "{action}: {}",
            out.stderr
        );
    }
}

#[test]
fn execute_command_and_pid_file() {
    let r = Rpm2::new();
    let app = local_app(&r, "forked.js");
    r.ok(&["start", &app, "-x", "-i", "2", "-p", "forked.pid"]);
    let procs = r.wait_online("forked", 2);
    for p in &procs {
        assert_eq!(p["pm2_env"]["exec_mode"], "fork_mode");
    }
    let pid = wait_until("the pid file", || {
        std::fs::read_to_string(r.path("forked-0.pid")).ok()
    });
    assert_eq!(pid.trim().parse::<i32>().unwrap(), pid_of(&procs[0]));
}

#[test]
fn update_and_its_alias_hand_the_daemon_over_in_place() {
    let r = Rpm2::new();
    // No daemon: nothing to update, and none is started.
    let out = r.ok(&["update"]);
    assert!(out.stdout.contains("nothing to update"), "{}", out.stdout);
    r.ok(&["ping"]);
    let pid = std::fs::read_to_string(r.home().join("pm2.pid")).unwrap();
    for cmd in ["update", "updatePM2"] {
        let out = r.ok(&[cmd]);
        assert!(out.stdout.contains("updated in place"), "{}", out.stdout);
        assert_eq!(
            std::fs::read_to_string(r.home().join("pm2.pid")).unwrap(),
            pid
        );
    }
}

#[test]
fn ecosystem_writes_a_sample_that_starts() {
    let r = Rpm2::new();
    local_app(&r, "app.js");
    r.ok(&["init"]);
    let text = std::fs::read_to_string(r.path("ecosystem.config.js")).unwrap();
    assert!(text.contains("script: './app.js'"), "{text}");
    r.ok(&["start"]);
    r.wait_status("app", "online");
}

#[test]
fn resurrect_drops_a_corrupt_dump_for_its_backup() {
    let r = Rpm2::new();
    let app = local_app(&r, "kept.js");
    r.ok(&["start", &app]);
    r.wait_status("kept", "online");
    r.ok(&["save"]);
    // A second save moves the first dump to the backup.
    r.ok(&["save"]);
    r.ok(&["delete", "all"]);
    std::fs::write(r.home().join("dump.pm2"), "[{").unwrap();
    r.ok(&["resurrect"]);
    assert!(!r.home().join("dump.pm2").exists());
    r.wait_status("kept", "online");
    let procs: Vec<Value> = r.jlist();
    assert_eq!(procs.len(), 1);
}

#[test]
fn restart_merges_node_args_and_name_into_the_app() {
    let r = Rpm2::new();
    let app = local_app(&r, "opts.js");
    r.ok(&["start", &app, "-i", "2"]);
    r.wait_online("opts", 2);
    assert_eq!(
        r.procs("opts")[0]["pm2_env"]["node_args"],
        serde_json::json!([])
    );
    r.ok(&[
        "restart",
        &app,
        "--node-args=--no-warnings --max-old-space-size=64",
    ]);
    let procs = r.wait_online("opts", 2);
    let args = serde_json::json!(["--no-warnings", "--max-old-space-size=64"]);
    assert_eq!(procs[1]["pm2_env"]["node_args"], args);
    // The worker runs with them.
    let pid = pid_of(&procs[0]);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.contains("--max-old-space-size=64"), "{cmdline:?}");

    // A new name, kept by later actions; `null` clears the arguments.
    r.ok(&["reload", "opts", "--name", "renamed", "--node-args", "null"]);
    let procs = r.wait_online("renamed", 2);
    // pm2 deletes node_args given as null: the key is gone.
    assert!(
        procs[0]["pm2_env"].get("node_args").is_none(),
        "{}",
        procs[0]
    );
    assert!(r.procs("opts").is_empty());
    r.ok(&["scale", "renamed", "3"]);
    r.wait_online("renamed", 3);
    // `start <id> --name` renames too (pm2 restarts a known app).
    r.ok(&["start", "0", "--name", "again"]);
    r.wait_online("again", 3);
    // A new app of the old name is another app.
    r.ok(&["start", &app]);
    r.wait_status("opts", "online");
    assert_eq!(r.jlist().len(), 4);

    // An empty name changes nothing.
    let out = r.fails(&["restart", "again", "--name", " "]);
    assert!(out.stderr.contains("empty name"), "{}", out.stderr);
    assert_eq!(r.procs("again").len(), 3);
}

#[test]
fn send_signal_takes_the_words_pm2_scripts_give() {
    let r = Rpm2::new();
    let marker = r.path("got").display().to_string();
    r.ok(&["start", &fixture("usr2.js"), "--name", "sig", "--", &marker]);
    r.wait_status("sig", "online");
    common::wait_file(std::path::Path::new(&format!("{marker}.up")));
    // `ID=$(pm2 prettylist | grep pm_id)` gives the id twice.
    r.ok(&["sendSignal", "SIGUSR2", "0", "0"]);
    assert_eq!(common::wait_file(std::path::Path::new(&marker)), "SIGUSR2");
    let out = r.fails(&["sendSignal", "SIGNOPE", "sig"]);
    assert!(out.stderr.contains("unknown signal"), "{}", out.stderr);
    let out = r.fails(&["sendSignal", "SIGUSR2", "nobody"]);
    assert_eq!(out.code, Some(1));
}
