//! Drawing: pm2's layout (process list and logs on top, custom metrics
//! and metadata below) plus a footer with the keys. A pure function of
//! the state and the clock, so it is tested on ratatui's `TestBackend`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use rpm2_proto::{ProcessInfo, WorkerStatus};

use super::history::History;
use super::input::KEYS;
use super::model::{App, LogKind, Notice};
use super::panels;

/// Name column width in the process list (pm2: 15, ellipsis included).
const NAME_WIDTH: usize = 12;
/// Everything in a row but the two sparklines: id, name, status,
/// restarts, CPU, memory, separators.
const FIXED_WIDTH: usize = 5 + NAME_WIDTH + 1 + 10 + 5 + 7 + 8 + 1;
const MAX_SPARK: usize = 20;

pub fn draw(frame: &mut Frame, app: &App, now_ms: u64) {
    let [main, footer] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(frame.area());
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(70), Constraint::Percentage(30)]).areas(main);
    let [list, logs] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    // Metadata holds paths: it gets the wider part below.
    let [metrics, meta] =
        Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(bottom);
    draw_list(frame, app, list);
    draw_logs(frame, app, logs);
    panels::draw_metrics(frame, app.selected_proc(), metrics);
    panels::draw_metadata(frame, app.selected_proc(), now_ms, meta);
    draw_footer(frame, app, footer);
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered()
        .title(" Processes ")
        .border_style(Style::new().fg(Color::Blue));
    if app.procs.is_empty() {
        let text = vec![
            Line::from("No process available"),
            Line::from("start one with: rpm2 start app.js").dim(),
        ];
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let inner = usize::from(area.width.saturating_sub(2));
    let spark = (inner.saturating_sub(FIXED_WIDTH) / 2).min(MAX_SPARK);
    let empty = History::default();
    let items: Vec<ListItem> = app
        .procs
        .iter()
        .map(|p| row(p, app.history.get(&p.pm_id).unwrap_or(&empty), spark))
        .collect();
    let list = List::new(items)
        .block(block)
        .highlight_style(Style::new().bg(Color::Blue));
    let mut state = ListState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(list, area, &mut state);
}

/// `[ 0] name  online  ↺ 2   1.5% ▁▂▃  45 MB ▅▆▇`
fn row(p: &ProcessInfo, history: &History, spark: usize) -> ListItem<'static> {
    let status = p.pm2_env.status;
    let status_text = match status {
        WorkerStatus::WaitingRestart => "waiting",
        other => other.as_str(),
    };
    let mb = p.monit.memory / (1 << 20);
    let line = Line::from(vec![
        Span::raw(format!("[{:>2}] ", p.pm_id)),
        Span::raw(format!(
            "{:<w$} ",
            clip(&p.name, NAME_WIDTH),
            w = NAME_WIDTH
        ))
        .bold(),
        Span::styled(format!("{status_text:<9} "), status_style(status)),
        Span::raw(format!("↺{:<3} ", p.pm2_env.restart_time)),
        Span::raw(format!("{:>5.1}% ", p.monit.cpu)),
        Span::raw(format!("{} ", history.cpu_spark(spark))).fg(Color::Cyan),
        Span::raw(format!("{mb:>4} MB ")),
        Span::raw(history.memory_spark(spark)).fg(Color::Magenta),
    ]);
    ListItem::new(line)
}

pub fn status_style(status: WorkerStatus) -> Style {
    let color = match status {
        WorkerStatus::Online => Color::Green,
        WorkerStatus::Stopped | WorkerStatus::Errored => Color::Red,
        WorkerStatus::Launching | WorkerStatus::Stopping | WorkerStatus::WaitingRestart => {
            Color::Yellow
        }
    };
    Style::new().fg(color).add_modifier(Modifier::BOLD)
}

/// At most `width` characters, with `…` when cut.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn draw_logs(frame: &mut Frame, app: &App, area: Rect) {
    let Some(p) = app.selected_proc() else {
        frame.render_widget(Block::bordered().title(" Logs "), area);
        return;
    };
    let block = Block::bordered().title(format!(" {} logs ", p.name));
    let height = usize::from(area.height.saturating_sub(2));
    let tail: Vec<_> = app.log_tail(p.pm_id).collect();
    let lines: Vec<Line> = if tail.is_empty() {
        vec![Line::from("no log lines yet").dim()]
    } else {
        tail[tail.len().saturating_sub(height)..]
            .iter()
            .map(|l| {
                let color = match l.kind {
                    LogKind::Out => Color::Green,
                    LogKind::Err => Color::Red,
                    LogKind::Daemon => Color::Blue,
                };
                let source = if l.kind == LogKind::Daemon {
                    "rpm2"
                } else {
                    &p.name
                };
                Line::from(vec![
                    Span::raw(format!("{source} > ")).fg(color),
                    Span::raw(l.text.clone()),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    for (key, what) in KEYS {
        spans.push(Span::raw(format!(" {key}")).bold().fg(Color::Cyan));
        spans.push(Span::raw(format!(" {what} ")));
    }
    if let Some(notice) = &app.notice {
        let (text, color) = match notice {
            Notice::Pending(t) => (t, Color::Yellow),
            Notice::Done(t) => (t, Color::Green),
            Notice::Failed(t) => (t, Color::Red),
        };
        spans.push(Span::raw(" │ "));
        spans.push(Span::raw(text.clone()).fg(color));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
