//! `pm2 list`: the process table, and the "mini list" used when stdout is
//! not a terminal (`lib/API/UX/pm2-ls.js`, `pm2-ls-minimal.js`).

use std::fmt::Write as _;

use comfy_table::{Attribute, Cell, Color, Table};
use rpm2_proto::{ProcessInfo, WorkerStatus};

use super::format::{human_bytes, js_number, short_mode, uptime_cell};

/// cli-tableau's look as pm2 configures it: single-line box drawing, a rule
/// under the header, no rules between rows.
pub(crate) const PM2_STYLE: &str = "││──├─┼┤│    ┬┴┌┐└┘";

/// The `list` columns, in pm2's order (its wide, non-condensed layout).
const HEADER: [&str; 13] = [
    "id",
    "name",
    "namespace",
    "version",
    "mode",
    "pid",
    "uptime",
    "↺",
    "status",
    "cpu",
    "mem",
    "user",
    "watching",
];

/// A table that never looks at the real terminal: styling follows `color`
/// and widths follow the content, so output is a function of the input.
pub(crate) fn new_table(color: bool) -> Table {
    let mut table = Table::new();
    table.load_preset(PM2_STYLE).force_no_tty();
    if color {
        table.enforce_styling();
        table.style_text_only();
    }
    table
}

/// pm2's status colours (the 8 standard ANSI colours chalk uses, which
/// crossterm calls `Dark*`): online green, launching blue, stopped/errored
/// red; transient states (stopping, waiting restart) yellow.
pub(crate) fn status_cell(status: WorkerStatus) -> Cell {
    let color = match status {
        WorkerStatus::Online => Color::DarkGreen,
        WorkerStatus::Launching => Color::DarkBlue,
        WorkerStatus::Stopped | WorkerStatus::Errored => Color::DarkRed,
        WorkerStatus::Stopping | WorkerStatus::WaitingRestart => Color::DarkYellow,
    };
    Cell::new(status.as_str())
        .fg(color)
        .add_attribute(Attribute::Bold)
}

/// Sorted by `pm_id` so the table is stable across calls (pm2 sorts by
/// name unless `--sort` is given; by id reads better and matches `jlist`).
fn sorted(procs: &[ProcessInfo]) -> Vec<&ProcessInfo> {
    let mut list: Vec<&ProcessInfo> = procs.iter().collect();
    list.sort_by_key(|p| p.pm_id);
    list
}

/// pm2's process table. `now_ms` (ms since the epoch) computes uptimes;
/// `color` adds pm2's ANSI colours. An empty list gives the header alone.
#[must_use]
pub fn render_list(procs: &[ProcessInfo], now_ms: u64, color: bool) -> String {
    let mut table = new_table(color);
    table.set_header(HEADER.iter().map(|h| {
        Cell::new(h)
            .fg(Color::DarkCyan)
            .add_attribute(Attribute::Bold)
    }));
    for p in sorted(procs) {
        let env = &p.pm2_env;
        let mode = short_mode(&env.exec_mode);
        let mode_cell = if mode == "cluster" {
            Cell::new(mode)
                .fg(Color::DarkBlue)
                .add_attribute(Attribute::Bold)
        } else {
            Cell::new(mode)
                .add_attribute(Attribute::Reverse)
                .add_attribute(Attribute::Bold)
        };
        let watching = if env.watch {
            Cell::new("enabled")
                .fg(Color::DarkGreen)
                .add_attribute(Attribute::Bold)
        } else {
            Cell::new("disabled").fg(Color::DarkGrey)
        };
        table.add_row(vec![
            Cell::new(p.pm_id)
                .fg(Color::DarkCyan)
                .add_attribute(Attribute::Bold),
            Cell::new(&env.name),
            Cell::new(&env.namespace),
            Cell::new(env.version.as_deref().unwrap_or("N/A")),
            mode_cell,
            Cell::new(p.pid),
            Cell::new(uptime_cell(p, now_ms)),
            Cell::new(env.restart_time),
            status_cell(env.status),
            Cell::new(format!("{}%", js_number(p.monit.cpu))),
            Cell::new(human_bytes(p.monit.memory)),
            Cell::new(&env.username).add_attribute(Attribute::Bold),
            watching,
        ]);
    }
    table.to_string()
}

/// pm2's "mini list" (`pm2 ls -m`, and any listing when stdout is not a
/// TTY): one `+--- name` block of `key : value` lines per process, each
/// block followed by a blank line. Same fields and order as pm2.
#[must_use]
pub fn render_mini_list(procs: &[ProcessInfo], now_ms: u64) -> String {
    let mut out = String::new();
    for p in sorted(procs) {
        let env = &p.pm2_env;
        let lines: [(&str, String); 12] = [
            ("namespace", env.namespace.clone()),
            (
                "version",
                env.version.clone().unwrap_or_else(|| "N/A".to_owned()),
            ),
            ("pid", p.pid.to_string()),
            ("pm2 id", env.pm_id.to_string()),
            ("status", env.status.to_string()),
            ("mode", short_mode(&env.exec_mode).to_owned()),
            ("restarted", env.restart_time.to_string()),
            ("uptime", uptime_cell(p, now_ms)),
            ("memory usage", human_bytes(p.monit.memory)),
            ("error log", env.pm_err_log_path.clone()),
            ("watching", if env.watch { "yes" } else { "no" }.to_owned()),
            ("PID file", env.pm_pid_path.clone()),
        ];
        let _ = writeln!(out, "+--- {}", env.name);
        for (key, value) in lines {
            let _ = writeln!(out, "{key} : {value}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{proc_with, sample};
    use super::*;

    #[test]
    fn table_has_pm2_columns_and_values() {
        let now = 1_700_000_300_000; // 5 minutes after pm_uptime
        let out = render_list(&[sample()], now, false);
        let lines: Vec<&str> = out.lines().collect();
        let header: Vec<&str> = lines[1].split('│').map(str::trim).collect();
        assert_eq!(&header[1..14], &HEADER[..]);
        let row: Vec<&str> = lines[3].split('│').map(str::trim).collect();
        assert_eq!(
            &row[1..14],
            &[
                "0", "api", "default", "1.0.0", "fork", "4242", "5m", "2", "online", "1.5%",
                "45.2mb", "alice", "disabled"
            ]
        );
        assert!(lines[0].starts_with('┌') && lines[2].starts_with('├'));
        assert!(lines.last().is_some_and(|l| l.starts_with('└')));
        assert!(!out.contains('\u{1b}'), "no ANSI without color");
    }

    #[test]
    fn rows_are_sorted_by_id_and_stopped_shows_zero_uptime() {
        let a = proc_with(
            r#"{"pm_id": 3, "name": "zeta", "status": "stopped", "exec_mode": "cluster_mode", "watch": true}"#,
        );
        let b = proc_with(r#"{"pm_id": 1, "name": "alpha"}"#);
        let out = render_list(&[a, b], 1_700_000_300_000, false);
        let alpha = out.find("alpha").unwrap_or(usize::MAX);
        let zeta = out.find("zeta").unwrap_or(0);
        assert!(alpha < zeta);
        let zeta_row = out.lines().find(|l| l.contains("zeta")).unwrap_or_default();
        let cells: Vec<&str> = zeta_row.split('│').map(str::trim).collect();
        assert_eq!(cells[5], "cluster");
        assert_eq!(cells[7], "0");
        assert_eq!(cells[9], "stopped");
        assert_eq!(cells[13], "enabled");
    }

    #[test]
    fn empty_list_is_header_only() {
        let out = render_list(&[], 0, false);
        // Top rule, header, header rule, bottom rule: no data rows.
        assert_eq!(out.lines().count(), 4, "{out}");
        assert!(out.contains("watching"));
    }

    #[test]
    fn color_wraps_status_in_ansi() {
        let out = render_list(&[sample()], 1_700_000_300_000, true);
        assert!(out.contains("\u{1b}["));
        assert!(out.contains("online"));
    }

    #[test]
    fn mini_list_matches_pm2_layout() {
        let out = render_mini_list(&[sample()], 1_700_000_300_000);
        let want = "\
+--- api
namespace : default
version : 1.0.0
pid : 4242
pm2 id : 0
status : online
mode : fork
restarted : 2
uptime : 5m
memory usage : 45.2mb
error log : /home/alice/.pm2/logs/api-error.log
watching : no
PID file : /home/alice/.pm2/pids/api-0.pid

";
        assert_eq!(out, want);
        assert_eq!(render_mini_list(&[], 0), "");
    }
}
