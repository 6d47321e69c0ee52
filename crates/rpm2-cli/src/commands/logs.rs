//! `rpm2 logs`: the last lines of each log file, then the live stream
//! from the daemon's bus (lines are not re-read from disk).

use std::collections::BTreeSet;
use std::process::ExitCode;

use rpm2_proto::{ErrorCode, Event, ProcessInfo, Target};

use super::{list_all, CliError, CmdResult, Ctx};
use crate::args::LogsArgs;
use crate::print::out;

pub fn logs(ctx: &Ctx, a: &LogsArgs) -> CmdResult {
    let converted;
    let a = if let Some(fmt) = &a.timestamp {
        converted = LogsArgs {
            timestamp: Some(rpm2_config::dayjs_to_strftime(fmt)),
            ..a.clone()
        };
        &converted
    } else {
        a
    };
    let target = a.target.clone().unwrap_or(Target::All);
    // Subscribe first so nothing written while we tail is missed.
    let events = if a.nostream {
        None
    } else {
        Some(ctx.client()?.subscribe()?)
    };
    let procs: Vec<ProcessInfo> = list_all(ctx)?
        .into_iter()
        .filter(|p| target.matches(p.pm_id, &p.name, &p.pm2_env.namespace))
        .collect();
    if procs.is_empty() && target != Target::All {
        return Err(CliError::new(
            ErrorCode::ProcessNotFound,
            format!("no process matches {target}"),
        ));
    }
    let (want_out, want_err) = match (a.out, a.err) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    };

    if a.lines > 0 {
        let mut seen = BTreeSet::new();
        if target == Target::All && !a.raw && want_out && want_err {
            tail_file(ctx.home.daemon_log().as_path(), a, "RPM2", "rpm2", false);
        }
        for p in &procs {
            for (path, wanted, is_err) in [
                (&p.pm2_env.pm_out_log_path, want_out, false),
                (&p.pm2_env.pm_err_log_path, want_err, true),
            ] {
                if !wanted || path == "/dev/null" || !seen.insert(path.clone()) {
                    continue;
                }
                let id = p.pm_id.to_string();
                tail_file(std::path::Path::new(path), a, &id, &p.name, is_err);
            }
        }
    }

    let Some(mut events) = events else {
        return Ok(ExitCode::SUCCESS);
    };
    if !a.raw && !a.json {
        out(&format!("\n{target} logs (Ctrl-C to stop):\n"));
    }
    loop {
        let event = events.next_event()?;
        let (process, data, is_err) = match event {
            Event::LogOut { process, data, .. } => (process, data, false),
            Event::LogErr { process, data, .. } => (process, data, true),
            Event::Dropped { lines, events, .. } => {
                // On stderr: the lines around it stay what the apps wrote.
                eprintln!(
                    "[RPM2] {lines} log lines ({events} chunks or events) dropped: this reader \
                     fell behind and the daemon keeps only a bounded buffer for it"
                );
                continue;
            }
            _ => continue,
        };
        if (is_err && !want_err) || (!is_err && !want_out) {
            continue;
        }
        if !target.matches(process.pm_id, &process.name, &process.namespace) {
            continue;
        }
        let mut text = String::new();
        for line in data.split('\n').filter(|l| !l.is_empty()) {
            text.push_str(&format_line(
                a,
                &process.pm_id.to_string(),
                &process.name,
                line,
                is_err,
            ));
        }
        if is_err && a.raw {
            eprint!("{text}");
        } else {
            out(&text);
        }
    }
}

fn tail_file(path: &std::path::Path, a: &LogsArgs, id: &str, name: &str, is_err: bool) {
    let Ok(lines) = rpm2_logs::tail_lines(path, a.lines) else {
        return;
    };
    if !a.raw && !a.json {
        out(&format!("{} last {} lines:\n", path.display(), a.lines));
    }
    let text: String = lines
        .iter()
        .map(|l| format_line(a, id, name, l, is_err))
        .collect();
    out(&text);
}

fn format_line(a: &LogsArgs, id: &str, name: &str, line: &str, is_err: bool) -> String {
    if a.json {
        let v = serde_json::json!({
            "message": line,
            "timestamp": chrono::Local::now().to_rfc3339(),
            "type": if is_err { "err" } else { "out" },
            "process_id": id,
            "app_name": name,
        });
        return format!("{v}\n");
    }
    if a.raw {
        return format!("{line}\n");
    }
    // `logs()` converted --timestamp from dayjs to strftime once.
    let stamp = a.timestamp.as_deref().map_or_else(String::new, |fmt| {
        format!("{} ", chrono::Local::now().format(fmt))
    });
    format!("{id}|{name:<10} | {stamp}{line}\n")
}
