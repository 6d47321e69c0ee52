//! The selected worker's panels: `@pm2/io` custom metrics and metadata
//! (what `describe` shows that matters while watching).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use rpm2_proto::ProcessInfo;
use serde_json::Value;

use super::render::{clip, status_style};
use crate::output::format::{short_mode, uptime_cell};

const LABEL_WIDTH: usize = 18;
/// From this inner width, paths get a column of their own.
const TWO_COLUMNS: u16 = 80;
const SHORT_COLUMN: u16 = 34;

pub fn draw_metrics(frame: &mut Frame, p: Option<&ProcessInfo>, area: Rect) {
    let block = Block::bordered().title(" Custom Metrics ");
    let width = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = match p {
        Some(p) if !p.pm2_env.axm.axm_monitor.is_empty() => p
            .pm2_env
            .axm
            .axm_monitor
            .iter()
            .map(|(name, metric)| metric_line(name, metric, width))
            .collect(),
        _ => vec![Line::from("none reported (@pm2/io metrics show here)").dim()],
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `name          value unit`: the value right-aligned as in pm2.
fn metric_line(name: &str, metric: &Value, width: usize) -> Line<'static> {
    let value = metric.get("value").unwrap_or(metric);
    let mut shown = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(unit) = metric.get("unit").and_then(Value::as_str) {
        shown = format!("{shown} {unit}");
    }
    let name = clip(name, width.saturating_sub(shown.chars().count() + 1).max(1));
    let pad = width.saturating_sub(name.chars().count() + shown.chars().count());
    Line::from(vec![
        Span::raw(name).bold(),
        Span::raw(" ".repeat(pad.max(1))),
        Span::raw(shown),
    ])
}

pub fn draw_metadata(frame: &mut Frame, p: Option<&ProcessInfo>, now_ms: u64, area: Rect) {
    let block = Block::bordered().title(" Metadata ");
    let Some(p) = p else {
        frame.render_widget(block, area);
        return;
    };
    let env = &p.pm2_env;
    let or_na = |s: String| if s.is_empty() { "N/A".to_owned() } else { s };
    let node_version = env.node_version.as_deref();
    // Most useful first: a short panel shows the top rows. `true` marks
    // long values (paths), which get the right column when there is room.
    let rows: Vec<(&str, Span<'static>, bool)> = vec![
        ("App name", Span::raw(p.name.clone()).bold(), false),
        (
            "Status",
            Span::styled(env.status.as_str(), status_style(env.status)),
            false,
        ),
        ("Script path", Span::raw(env.pm_exec_path.clone()), true),
        (
            "Pid",
            Span::raw(if p.pid == 0 {
                "N/A".to_owned()
            } else {
                p.pid.to_string()
            }),
            false,
        ),
        ("Exec cwd", Span::raw(env.pm_cwd.clone()), true),
        ("Uptime", Span::raw(uptime_cell(p, now_ms)), false),
        ("Script args", Span::raw(or_na(env.args.join(" "))), true),
        ("Restarts", Span::raw(env.restart_time.to_string()), false),
        ("Interpreter", Span::raw(env.exec_interpreter.clone()), true),
        (
            "Exec mode",
            Span::raw(short_mode(&env.exec_mode).to_owned()).bold(),
            false,
        ),
        (
            "Interpreter args",
            Span::raw(or_na(
                env.node_args.as_deref().unwrap_or_default().join(" "),
            )),
            true,
        ),
        (
            "Unstable restarts",
            Span::raw(env.unstable_restarts.to_string()),
            false,
        ),
        (
            "Event loop lag",
            Span::raw(
                env.event_loop_lag_ms
                    .map_or_else(|| "N/A".to_owned(), |ms| format!("{ms} ms")),
            ),
            false,
        ),
        ("Out log", Span::raw(env.pm_out_log_path.clone()), true),
        ("Namespace", Span::raw(env.namespace.clone()), false),
        ("Error log", Span::raw(env.pm_err_log_path.clone()), true),
        (
            "Node.js version",
            Span::raw(node_version.unwrap_or("N/A").to_owned()),
            false,
        ),
        (
            "Version",
            Span::raw(env.version.clone().unwrap_or_else(|| "N/A".to_owned())),
            false,
        ),
        ("Watch & reload", watch_mark(env.watch), false),
    ];
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width < TWO_COLUMNS {
        let lines: Vec<Line> = rows.into_iter().map(|(l, v, _)| label_line(l, v)).collect();
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Length(SHORT_COLUMN), Constraint::Min(0)]).areas(inner);
    let (long, short): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.2);
    for (rows, column) in [(short, left), (long, right)] {
        let lines: Vec<Line> = rows.into_iter().map(|(l, v, _)| label_line(l, v)).collect();
        frame.render_widget(Paragraph::new(lines), column);
    }
}

fn label_line(label: &str, value: Span<'static>) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!("{label:<LABEL_WIDTH$}")).dim(),
        value,
    ])
}

fn watch_mark(on: bool) -> Span<'static> {
    if on {
        Span::raw("✔").fg(Color::Green).bold()
    } else {
        Span::raw("✘").fg(Color::Red).bold()
    }
}
