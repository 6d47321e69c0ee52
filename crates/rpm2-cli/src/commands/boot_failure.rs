//! `start` on an app that never came up: say why, from what the app wrote
//! to its error log during this start (not an older run's lines).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rpm2_proto::{AppSpec, LogTarget, ProcessInfo, WorkerStatus};

/// How much of an error log's new part is searched for the reason.
const SCAN_BYTES: u64 = 64 * 1024;

/// Sizes of the log files a start may append to, taken before it.
pub struct LogMarks(HashMap<PathBuf, u64>);

impl LogMarks {
    /// Every file in the home's log directory and beside the apps' own log paths.
    pub fn before(logs_dir: &Path, apps: &[AppSpec]) -> Self {
        let mut dirs = vec![logs_dir.to_path_buf()];
        for app in apps {
            for target in [Some(&app.error_file), app.log_file.as_ref()] {
                if let Some(LogTarget::Path(p)) = target {
                    dirs.extend(p.parent().map(Path::to_path_buf));
                }
            }
        }
        let sizes = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
            .collect();
        Self(sizes)
    }
}

/// Did this process come up (or is it on its way)? Not when it errored,
/// waits for a restart after crashing, or stopped with a failure code.
pub fn came_up(p: &ProcessInfo) -> bool {
    match p.pm2_env.status {
        WorkerStatus::Errored | WorkerStatus::WaitingRestart => false,
        WorkerStatus::Stopped => p.pm2_env.exit_code.is_none_or(|c| c == 0),
        _ => true,
    }
}

/// One line per process that did not come up, on stderr.
pub fn report(failed: &[ProcessInfo], marks: &LogMarks) {
    for p in failed {
        let log = Path::new(&p.pm2_env.pm_err_log_path);
        let since = marks.0.get(log).copied().unwrap_or(0);
        eprintln!(
            "[RPM2][ERROR] [{}]({}) {}: {} (see {})",
            p.name,
            p.pm_id,
            p.pm2_env.status.as_str(),
            reason(log, since),
            log.display()
        );
    }
}

/// Processes that run but could not open a log file, one line each on
/// stderr; true if there was one.
pub fn report_log_errors(up: &[ProcessInfo]) -> bool {
    let mut any = false;
    for p in up {
        if let Some(e) = &p.pm2_env.log_error {
            eprintln!(
                "[RPM2][ERROR] [{}]({}) runs, but its output is lost: {e}",
                p.name, p.pm_id
            );
            any = true;
        }
    }
    any
}

/// Node's last `…Error: …` line written after `since` (timestamp prefixes
/// allowed), else the last line written, else a plain statement.
fn reason(err_log: &Path, since: u64) -> String {
    let text = read_from(err_log, since).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find_map(|l| error_part(l))
        .or_else(|| lines.last().copied())
        .map_or_else(
            || "it exited before it was ready (nothing in its error log)".to_owned(),
            str::to_owned,
        )
}

/// `Error: listen EADDRINUSE …` out of a line, when the line has a word
/// ending in `Error` followed by `: ` (`TypeError: …`, `Error [ERR_X]: …`).
fn error_part(line: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(i) = line[from..].find("Error") {
        let end = from + i + "Error".len();
        let start = line[..from + i]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |j| j + 1);
        let rest = &line[end..];
        let rest = rest
            .strip_prefix(" [")
            .and_then(|r| r.find("]").map(|k| &r[k + 1..]))
            .unwrap_or(rest);
        if rest.starts_with(": ") {
            return Some(&line[start..]);
        }
        from = end;
    }
    None
}

/// The file from `since` (from the start if it shrank), at most the last
/// `SCAN_BYTES`.
fn read_from(path: &Path, since: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let since = if since > len { 0 } else { since };
    f.seek(SeekFrom::Start(since.max(len.saturating_sub(SCAN_BYTES))))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_node_error_lines() {
        let cases = [
            (
                "Error: listen EADDRINUSE: address already in use :::8000",
                Some("Error: listen EADDRINUSE: address already in use :::8000"),
            ),
            (
                "2026-11-28T06:00:00: TypeError: x is not a function",
                Some("TypeError: x is not a function"),
            ),
            (
                "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'",
                Some("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'"),
            ),
            ("    throw er; // Unhandled 'error' event", None),
            ("no Errors here: none", None),
        ];
        for (line, want) in cases {
            assert_eq!(error_part(line), want, "{line}");
        }
    }

    #[test]
    fn reads_only_what_this_start_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-error.log");
        std::fs::write(&log, "Error: from an older run\n").unwrap();
        let marks = LogMarks::before(dir.path(), &[]);
        let since = marks.0[&log];
        assert_eq!(
            reason(&log, since),
            "it exited before it was ready (nothing in its error log)"
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"boom\nRangeError: too far\n    at x\n").unwrap();
        assert_eq!(reason(&log, since), "RangeError: too far");
    }
}
