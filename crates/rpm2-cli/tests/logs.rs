//! Log files: names, which stream lands where, `logs --nostream --lines`,
//! `flush`, per-worker files, and a flood of lines arriving whole and in
//! order.

mod common;

use std::path::Path;

use common::{fixture, wait_until, Rpm2};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Wait until `path` holds at least `n` complete lines; returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    wait_until(&format!("{n} lines in {}", path.display()), || {
        let text = read(path);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= n && text.ends_with('\n')).then_some(lines)
    })
}

#[test]
fn stdout_and_stderr_land_in_their_files() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("print.js"), "--name", "talker", "--", "3"]);
    let out = r.logs_dir().join("talker-out.log");
    let err = r.logs_dir().join("talker-error.log");
    let p = r.proc("talker");
    assert_eq!(p["pm2_env"]["pm_out_log_path"], out.display().to_string());
    assert_eq!(p["pm2_env"]["pm_err_log_path"], err.display().to_string());
    assert_eq!(
        wait_lines(&out, 3),
        ["out-1 inst=0", "out-2 inst=0", "out-3 inst=0"]
    );
    assert_eq!(
        wait_lines(&err, 3),
        ["err-1 inst=0", "err-2 inst=0", "err-3 inst=0"]
    );
    // Only our two files (merged logs: no `-<id>` suffix).
    let mut names: Vec<String> = std::fs::read_dir(r.logs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["talker-error.log", "talker-out.log"]);
}

#[test]
fn several_fork_workers_get_their_own_files() {
    let r = Rpm2::new();
    let eco = r.write(
        "two.config.json",
        &serde_json::json!({"apps": [{
            "name": "duo",
            "script": fixture("print.js"),
            "args": "2",
            "exec_mode": "fork",
            "instances": 2,
        }]})
        .to_string(),
    );
    r.ok(&["start", &eco]);
    let procs = r.wait_online("duo", 2);
    for p in &procs {
        let id = p["pm_id"].as_u64().unwrap();
        let inst = p["pm2_env"]["NODE_APP_INSTANCE"].as_u64().unwrap();
        assert_eq!(p["pm2_env"]["exec_mode"], "fork_mode");
        let out = r.logs_dir().join(format!("duo-out-{id}.log"));
        let err = r.logs_dir().join(format!("duo-error-{id}.log"));
        assert_eq!(p["pm2_env"]["pm_out_log_path"], out.display().to_string());
        assert_eq!(p["pm2_env"]["pm_err_log_path"], err.display().to_string());
        assert_eq!(
            wait_lines(&out, 2),
            [format!("out-1 inst={inst}"), format!("out-2 inst={inst}")]
        );
        assert_eq!(
            wait_lines(&err, 2),
            [format!("err-1 inst={inst}"), format!("err-2 inst={inst}")]
        );
    }
    assert!(!r.logs_dir().join("duo-out.log").exists());
}

#[test]
fn instances_flag_with_a_non_node_script_stays_fork_with_suffixed_logs() {
    let r = Rpm2::new();
    let script = r.write(
        "talk.sh",
        "echo \"sh-out $NODE_APP_INSTANCE\"\necho \"sh-err $NODE_APP_INSTANCE\" >&2\nexec sleep 100000\n",
    );
    r.ok(&["start", &script, "--name", "shell", "-i", "2"]);
    let procs = r.wait_online("shell", 2);
    for p in &procs {
        assert_eq!(p["pm2_env"]["exec_mode"], "fork_mode");
        let id = p["pm_id"].as_u64().unwrap();
        let inst = p["pm2_env"]["NODE_APP_INSTANCE"].as_u64().unwrap();
        let out = r.logs_dir().join(format!("shell-out-{id}.log"));
        let err = r.logs_dir().join(format!("shell-error-{id}.log"));
        assert_eq!(wait_lines(&out, 1), [format!("sh-out {inst}")]);
        assert_eq!(wait_lines(&err, 1), [format!("sh-err {inst}")]);
    }
}

#[test]
fn logs_nostream_prints_the_last_lines() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("print.js"), "--name", "tail", "--", "20"]);
    wait_lines(&r.logs_dir().join("tail-out.log"), 20);
    wait_lines(&r.logs_dir().join("tail-error.log"), 20);
    let out = r.ok(&["logs", "tail", "--nostream", "--lines", "5"]);
    let text = out.stdout;
    for i in 16..=20 {
        assert!(text.contains(&format!("out-{i} inst=0")), "{text}");
        assert!(text.contains(&format!("err-{i} inst=0")), "{text}");
    }
    for i in 1..=15 {
        assert!(!text.contains(&format!("out-{i} inst")), "{text}");
        assert!(!text.contains(&format!("err-{i} inst")), "{text}");
    }
    // In file order.
    let pos = |s: &str| text.find(s).unwrap();
    assert!(pos("out-16 ") < pos("out-20 "));
    // Raw, stdout only, by id.
    let out = r.ok(&["logs", "0", "--nostream", "--lines", "2", "--raw", "--out"]);
    assert_eq!(out.stdout, "out-19 inst=0\nout-20 inst=0\n");
    // Unknown target.
    r.fails(&["logs", "nope", "--nostream"]);
}

#[test]
fn flush_empties_the_files_and_new_lines_start_at_the_top() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("print.js"),
        "--name",
        "flushed",
        "--",
        "3",
    ]);
    let out = r.logs_dir().join("flushed-out.log");
    let err = r.logs_dir().join("flushed-error.log");
    wait_lines(&out, 3);
    wait_lines(&err, 3);
    r.ok(&["flush", "flushed"]);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
    assert_eq!(std::fs::metadata(&err).unwrap().len(), 0);
    // The next lines are written from offset 0 (no hole of NULs).
    r.ok(&["restart", "flushed"]);
    assert_eq!(
        wait_lines(&out, 3),
        ["out-1 inst=0", "out-2 inst=0", "out-3 inst=0"]
    );
    // `flush` with no target empties every app's files.
    wait_lines(&err, 3);
    r.ok(&["flush"]);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
    assert_eq!(std::fs::metadata(&err).unwrap().len(), 0);
}

#[test]
fn a_flood_of_lines_arrives_whole_and_in_order() {
    const LINES: usize = 200_000;
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("flood.js"),
        "--name",
        "flood",
        "--",
        &LINES.to_string(),
    ]);
    let path = r.logs_dir().join("flood-out.log");
    let lines = wait_lines(&path, LINES);
    assert_eq!(lines.len(), LINES, "more lines than written");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line, &(i + 1).to_string(), "line {} is wrong", i + 1);
    }
    // Still the same run (it was not restarted).
    assert_eq!(r.proc("flood")["pm2_env"]["restart_time"], 0);
}

#[test]
fn long_lines_split_characters_and_a_last_line_without_newline_are_kept() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("partial.js"),
        "--name",
        "partial",
        "--no-autorestart",
    ]);
    r.wait_status("partial", "stopped");
    let path = r.logs_dir().join("partial-out.log");
    let text = wait_until("the last line in the log", || {
        Some(read(&path)).filter(|t| t.contains("tail without newline"))
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "{:?}",
        &text[text.len().saturating_sub(200)..]
    );
    assert_eq!(lines[0].len(), 4 + 1024 * 1024);
    assert!(lines[0].starts_with("big:x") && lines[0].ends_with('x'));
    assert_eq!(lines[1], "☃ snowman ☃");
    assert_eq!(lines[2], "tail without newline");
}

#[test]
fn disable_logs_writes_no_file_and_the_app_runs() {
    let r = Rpm2::new();
    let eco = r.write(
        "quiet.config.json",
        &serde_json::json!({"apps": [
            {"name": "quiet", "script": fixture("print.js"), "args": "50", "disable_logs": true},
            {"name": "loud", "script": fixture("print.js"), "args": "3"},
        ]})
        .to_string(),
    );
    r.ok(&["start", &eco]);
    // The app beside it got its lines through, so any output has been read.
    wait_lines(&r.logs_dir().join("loud-out.log"), 3);
    let p = r.proc("quiet");
    assert_eq!(p["pm2_env"]["status"], "online");
    let names: Vec<String> = std::fs::read_dir(r.logs_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quiet"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
