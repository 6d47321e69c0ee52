//! Built-in log rotation (pm2-logrotate's keys): an app floods numbered
//! lines while its log rotates many times; every line is found exactly
//! once, in order and whole, across the rotated (gzipped) files and the
//! live one. Also: `retain`, the cron schedule (apps' and the daemon's own
//! log), refused settings, and a full disk (ENOSPC) while logging.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bin, fixture, wait_until, Rpm2};

/// The rotated files of `live` (`<stem>__<date>[_NNNN].log[.gz]`), oldest
/// first; `None` while one is still being compressed.
fn rotated(live: &Path) -> Option<Vec<PathBuf>> {
    let dir = live.parent().unwrap();
    let stem = live.file_stem().unwrap().to_str().unwrap();
    let prefix = format!("{stem}__");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    if names.iter().any(|n| n.ends_with(".tmp")) {
        return None;
    }
    names.sort();
    Some(names.into_iter().map(|n| dir.join(n)).collect())
}

/// A rotated file's text (gunzipped if `.gz`); `None` if it vanished.
fn text_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{} is not valid gzip: {e}", path.display()));
        Some(text)
    } else {
        Some(String::from_utf8(bytes).unwrap())
    }
}

/// Every rotated file's text, oldest first, then the live file's; `None`
/// while rotation work is in flight.
fn all_texts(live: &Path, compressed: bool) -> Option<Vec<(PathBuf, String)>> {
    let files = rotated(live)?;
    if compressed
        && files
            .iter()
            .any(|f| f.extension().is_none_or(|e| e != "gz"))
    {
        return None; // still waiting for gzip
    }
    let mut out = Vec::new();
    for f in files {
        out.push((f.clone(), text_of(&f)?));
    }
    out.push((live.to_path_buf(), std::fs::read_to_string(live).ok()?));
    Some(out)
}

/// The numbers of the lines, checking each is whole (a number and its
/// newline).
fn numbers(text: &str, file: &Path) -> Vec<u64> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends mid-line",
        file.display()
    );
    text.lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("split or foreign line {l:?} in {}", file.display()))
        })
        .collect()
}

#[test]
fn a_flood_rotates_many_times_and_loses_or_splits_no_line() {
    let r = Rpm2::new();
    r.ok(&["ping"]);
    // Applied live: the daemon is already running.
    r.ok(&["set", "pm2-logrotate:max_size", "16K"]);
    r.ok(&["set", "pm2-logrotate:retain", "all"]);
    r.ok(&["set", "pm2-logrotate:compress", "true"]);
    const N: u64 = 150_000;
    r.ok(&[
        "start",
        &fixture("flood.js"),
        "--name",
        "flood",
        "--",
        &N.to_string(),
    ]);
    let live = r.logs_dir().join("flood-out.log");
    let texts = wait_until("every line to be written and compressed", || {
        let texts = all_texts(&live, true)?;
        let total: usize = texts.iter().map(|(_, t)| t.lines().count()).sum();
        (total as u64 >= N && texts.last()?.1.ends_with(&format!("\n{N}\n"))).then_some(texts)
    });
    let mut expected = 1;
    for (file, text) in &texts {
        for n in numbers(text, file) {
            assert_eq!(n, expected, "in {}", file.display());
            expected += 1;
        }
    }
    assert_eq!(expected, N + 1);
    let rotations = texts.len() - 1;
    assert!(rotations >= 20, "only {rotations} rotations");
    for (file, text) in &texts[..rotations] {
        let name = file.file_name().unwrap().to_str().unwrap();
        // pm2-logrotate's naming, YYYY-MM-DD_HH-mm-ss, plus rpm2's suffix
        // for a second rotation within one second.
        let date = name
            .strip_prefix("flood-out__")
            .and_then(|n| n.strip_suffix(".log.gz"))
            .unwrap_or_else(|| panic!("unexpected name {name}"));
        let stamp = &date[..19];
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").is_ok(),
            "{name}"
        );
        assert!(
            date.len() == 19 || (date.len() == 24 && date.as_bytes()[19] == b'_'),
            "{name}"
        );
        assert!(
            !text.is_empty() && text.len() <= 16 << 10,
            "{name}: {} bytes",
            text.len()
        );
    }
}

#[test]
fn retain_keeps_the_newest_rotated_files() {
    let r = Rpm2::new();
    r.ok(&["set", "pm2-logrotate:max_size", "4K"]);
    r.ok(&["set", "pm2-logrotate:retain", "3"]);
    const N: u64 = 40_000;
    r.ok(&[
        "start",
        &fixture("flood.js"),
        "--name",
        "kept",
        "--",
        &N.to_string(),
    ]);
    let live = r.logs_dir().join("kept-out.log");
    let texts = wait_until("3 rotated files and the last line", || {
        let texts = all_texts(&live, false)?;
        (texts.len() == 4 && texts[3].1.ends_with(&format!("\n{N}\n"))).then_some(texts)
    });
    // What is kept is the end of the output, consecutive and whole.
    let all: Vec<u64> = texts.iter().flat_map(|(f, t)| numbers(t, f)).collect();
    assert_eq!(*all.last().unwrap(), N);
    for w in all.windows(2) {
        assert_eq!(w[1], w[0] + 1);
    }
    assert!(all[0] > 1, "the oldest files were deleted");
}

#[test]
fn rotation_can_be_turned_off_and_unset_turns_it_on_live() {
    let r = Rpm2::new();
    r.ok(&["set", "pm2-logrotate:max_size", "1K"]);
    r.ok(&["set", "pm2-logrotate:enabled", "false"]);
    const N: u64 = 5_000;
    let n = N.to_string();
    r.ok(&["start", &fixture("flood.js"), "--name", "off", "--", &n]);
    let live = r.logs_dir().join("off-out.log");
    let last = format!("\n{N}\n");
    wait_until("the last line", || {
        std::fs::read_to_string(&live)
            .ok()
            .filter(|t| t.ends_with(&last))
    });
    assert_eq!(rotated(&live), Some(vec![]), "rotation is off");
    // Back to on (the daemon is told at once); the next run's lines rotate.
    r.ok(&["unset", "pm2-logrotate:enabled"]);
    r.ok(&["restart", "off"]);
    wait_until("rotated files", || {
        rotated(&live).filter(|f| f.len() > 5).map(|_| ())
    });
}

#[test]
fn the_cron_schedule_rotates_apps_logs_and_the_daemon_log() {
    let r = Rpm2::new();
    r.ok(&["set", "pm2-logrotate:rotateInterval", "*/1 * * * * *"]);
    r.ok(&["start", &fixture("flood.js"), "--name", "timed", "--", "3"]);
    let live = r.logs_dir().join("timed-out.log");
    let texts = wait_until("a timed rotation", || {
        let texts = all_texts(&live, false)?;
        (texts.len() > 1).then_some(texts)
    });
    let all: Vec<u64> = texts.iter().flat_map(|(f, t)| numbers(t, f)).collect();
    assert_eq!(all, [1, 2, 3]);
    wait_until("the daemon log to rotate", || {
        rotated(&r.home().join("pm2.log")).filter(|f| !f.is_empty())
    });
    r.ok(&["ping"]);
    // The daemon writes to the reopened log.
    r.ok(&["reloadLogs"]);
}

#[test]
fn bad_settings_are_refused_and_the_old_value_stays() {
    let r = Rpm2::new();
    r.ok(&["set", "pm2-logrotate:max_size", "1M"]);
    let conf = r.home().join("module_conf.json");
    let before = std::fs::read_to_string(&conf).unwrap();
    for (args, says) in [
        (["set", "pm2-logrotate:max_size", "lots"], "K, M or G"),
        (["set", "pm2-logrotate:max_size", "0"], "K, M or G"),
        (["set", "pm2-logrotate:rotateInterval", "every day"], "cron"),
        (["set", "pm2-logrotate:retain", "many"], "or all"),
        (["set", "pm2-logrotate:workerInterval", "0"], "1 to 86400"),
        (["set", "pm2-logrotate:compress", "yes"], "true or false"),
        (["set", "pm2-logrotate:maxsize", "1M"], "max_size"),
    ] {
        let out = r.fails(&args);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), before, "{args:?}");
    }
    let out = r.ok(&["get", "pm2-logrotate:max_size"]);
    assert_eq!(
        out.stdout,
        "Value for module pm2-logrotate key max_size: 1M\n"
    );
    // Unset keys show their defaults.
    let out = r.ok(&["get", "pm2-logrotate:retain"]);
    assert_eq!(
        out.stdout,
        "Value for module pm2-logrotate key retain: 30\n"
    );
}

/// The disk fills while an app logs: the daemon keeps supervising, logs
/// the failure once, counts what it dropped, and writes again once space
/// returns (`flush` frees it). The logs folder is a 1 MiB tmpfs in a mount
/// namespace of the daemon's own.
#[test]
fn a_full_disk_drops_output_once_and_recovers() {
    let r = Rpm2::new();
    std::fs::create_dir_all(r.logs_dir()).unwrap();
    let mut cmd = Command::new("unshare");
    for (name, _) in rpm2_client::home::OVERRIDES {
        cmd.env_remove(name);
    }
    let started = cmd
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=1m rpm2-test "$1" && exec "$2" ping"#,
            "sh",
        ])
        .arg(r.logs_dir())
        .arg(bin())
        .env("RPM2_HOME", r.home())
        .env_remove("PM2_HOME")
        .current_dir(r.work())
        .stdin(Stdio::null())
        .output();
    match started {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs in a mount namespace here (needs root or \
                 user namespaces): {other:?}"
            );
            return;
        }
    }
    r.ok(&[
        "start",
        &fixture("fill_then_tick.js"),
        "--name",
        "filler",
        "--",
        &(2 << 20).to_string(),
    ]);
    let daemon_log = r.home().join("pm2.log");
    let log = || std::fs::read_to_string(&daemon_log).unwrap_or_default();
    wait_until("the write failure to be logged", || {
        log().contains("log write failed").then_some(())
    });
    // Still supervising: it answers and the app is online.
    r.wait_status("filler", "online");
    assert_eq!(
        log().matches("log write failed").count(),
        1,
        "logged once: {}",
        log()
    );
    // Space returns: the ticks get through and the drop is reported.
    r.ok(&["flush"]);
    let line = wait_until("writes to work again", || {
        log()
            .lines()
            .find(|l| l.contains("log writes work again"))
            .map(str::to_owned)
    });
    let dropped: u64 = line
        .split("dropped_bytes=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(dropped > 0, "{line}");
    assert_eq!(r.proc("filler")["pm2_env"]["restart_time"], 0);
}
