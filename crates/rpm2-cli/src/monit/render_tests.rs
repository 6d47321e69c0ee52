//! The dashboard drawn on ratatui's `TestBackend`: what a person would
//! read on the screen, cell by cell.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use rpm2_proto::WorkerStatus;

use super::input::Action;
use super::model::tests::worker;
use super::model::{App, LogKind, Notice};
use super::render::draw;

/// 5 minutes after the fixtures' `pm_uptime`.
const NOW: u64 = 1_700_000_300_000;

fn draw_app(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| draw(frame, app, NOW))
        .expect("draw on the test backend");
    terminal.backend().buffer().clone()
}

fn rows(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| {
            (area.left()..area.right())
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

/// The one row containing `needle`.
fn row_with(buffer: &Buffer, needle: &str) -> (u16, String) {
    let found: Vec<(u16, String)> = rows(buffer)
        .into_iter()
        .zip(0u16..)
        .filter(|(r, _)| r.contains(needle))
        .map(|(r, y)| (y, r))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{needle:?} on one row:\n{}",
        rows(buffer).join("\n")
    );
    found.into_iter().next().unwrap_or_default()
}

/// The screen column where `word` starts in `row`.
fn column(row: &str, word: &str) -> u16 {
    let byte = row.find(word).unwrap_or(0);
    u16::try_from(row[..byte].chars().count()).unwrap_or(0)
}

fn two_apps() -> App {
    let mut app = App::default();
    let mut stopped = worker("worker", 3, 0.0, 0);
    stopped.pm2_env.status = WorkerStatus::Stopped;
    stopped.pm2_env.restart_time = 7;
    stopped.pm2_env.pm_exec_path = "/srv/worker/main.js".to_owned();
    let api = || worker("api", 0, 12.5, 40 << 20);
    app.update(vec![api(), stopped.clone()]);
    let mut busier = api();
    busier.monit.cpu = 100.0;
    busier.monit.memory = 80 << 20;
    app.update(vec![busier, stopped]);
    app
}

#[test]
fn the_list_shows_each_worker_with_status_restarts_cpu_memory_and_sparklines() {
    let screen = draw_app(&two_apps(), 140, 40);
    let (_, api) = row_with(&screen, "[ 0] api");
    assert!(api.contains("online"), "{api}");
    assert!(api.contains("↺2"), "{api}");
    assert!(api.contains("100.0%"), "{api}");
    assert!(api.contains("80 MB"), "{api}");
    // Two samples: CPU 12.5 % then 100 %, memory 40 then 80 MB.
    assert!(api.contains("▁█ "), "CPU sparkline in {api}");
    assert!(
        api.trim_end_matches(['│', ' ']).contains("▄█"),
        "memory in {api}"
    );
    let (_, worker) = row_with(&screen, "[ 3] worker");
    assert!(worker.contains("stopped"), "{worker}");
    assert!(worker.contains("↺7"), "{worker}");
    assert!(worker.contains("0 MB"), "{worker}");
}

#[test]
fn status_colours_and_the_selected_row_stand_out() {
    let app = two_apps();
    let screen = draw_app(&app, 140, 40);
    let (y_api, api) = row_with(&screen, "[ 0] api");
    let (y_worker, worker) = row_with(&screen, "[ 3] worker");
    assert_eq!(screen[(column(&api, "online"), y_api)].fg, Color::Green);
    assert_eq!(
        screen[(column(&worker, "stopped"), y_worker)].fg,
        Color::Red
    );
    // The first row is selected: blue background, as in pm2.
    assert_eq!(screen[(2, y_api)].bg, Color::Blue);
    assert_ne!(screen[(2, y_worker)].bg, Color::Blue);
}

#[test]
fn moving_the_selection_switches_logs_and_metadata() {
    let mut app = two_apps();
    app.log(0, LogKind::Out, "api says hello\n");
    app.log(3, LogKind::Err, "worker failed\n");
    let screen = draw_app(&app, 140, 40);
    row_with(&screen, " api logs ");
    row_with(&screen, "api > api says hello");
    assert!(!rows(&screen).join("\n").contains("worker failed"));
    row_with(&screen, "/srv/api/server.js");

    app.apply(Action::Down);
    let screen = draw_app(&app, 140, 40);
    let (y, line) = row_with(&screen, "worker > worker failed");
    let x = column(&line, "worker >");
    assert_eq!(screen[(x, y)].fg, Color::Red, "stderr lines are red");
    row_with(&screen, " worker logs ");
    row_with(&screen, "/srv/worker/main.js");
    let (_, status) = row_with(&screen, "Status");
    assert!(status.contains("stopped"), "{status}");
    let (y_worker, _) = row_with(&screen, "[ 3] worker");
    assert_eq!(screen[(2, y_worker)].bg, Color::Blue);
}

#[test]
fn the_log_panel_shows_the_newest_lines_that_fit() {
    let mut app = two_apps();
    for i in 1..=100 {
        app.log(0, LogKind::Out, &format!("line {i}\n"));
    }
    app.log(0, LogKind::Daemon, "restart");
    let screen = draw_app(&app, 140, 40);
    let text = rows(&screen).join("\n");
    assert!(text.contains("rpm2 > restart"), "{text}");
    assert!(text.contains("api > line 100"), "{text}");
    assert!(
        !text.contains("api > line 1 "),
        "old lines scrolled away:\n{text}"
    );
    let (y_new, _) = row_with(&screen, "api > line 100");
    let (y_event, _) = row_with(&screen, "rpm2 > restart");
    assert_eq!(y_event, y_new + 1, "newest at the bottom");
}

#[test]
fn metadata_shows_what_describe_does() {
    let screen = draw_app(&two_apps(), 140, 40);
    let text = rows(&screen).join("\n");
    for expected in [
        "App name          api",
        "Pid               4242",
        "Uptime            5m",
        "Restarts          2",
        "Exec mode         fork",
        "Interpreter       node",
        "Script args       --port 3000",
        "Exec cwd          /srv/api",
        "Node.js version   20.11.1",
        "Event loop lag    N/A",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}

#[test]
fn custom_metrics_come_from_axm_monitor() {
    let mut app = two_apps();
    let metrics = serde_json::json!({
        "Heap Size": {"value": 12.5, "unit": "MiB"},
        "Active requests": {"value": "3"},
        "bare": 7
    });
    let mut p = app.procs[0].clone();
    p.pm2_env.axm.axm_monitor = metrics.as_object().cloned().unwrap_or_default();
    let second = app.procs[1].clone();
    app.update(vec![p, second]);
    let screen = draw_app(&app, 140, 40);
    let (_, heap) = row_with(&screen, "Heap Size");
    assert!(heap.contains(" 12.5 MiB│"), "right-aligned: {heap}");
    let (_, active) = row_with(&screen, "Active requests");
    assert!(active.contains(" 3│"), "{active}");
    let (_, bare) = row_with(&screen, "bare");
    assert!(bare.contains(" 7│"), "{bare}");
    // The other worker reported none.
    app.apply(Action::Down);
    let screen = draw_app(&app, 140, 40);
    row_with(&screen, "none reported");
}

#[test]
fn an_empty_list_and_the_footer() {
    let app = App {
        notice: Some(Notice::Failed("daemon unreachable".to_owned())),
        ..App::default()
    };
    let screen = draw_app(&app, 100, 30);
    row_with(&screen, "No process available");
    let (y, footer) = row_with(&screen, "r restart");
    assert_eq!(y, 29, "the footer is the last row");
    for key in [
        "↑↓/jk select",
        "R reload",
        "s stop",
        "q quit",
        "daemon unreachable",
    ] {
        assert!(footer.contains(key), "{key:?} in {footer}");
    }
}

#[test]
fn a_small_terminal_draws_without_panicking() {
    let app = two_apps();
    for (w, h) in [(1, 1), (20, 5), (60, 12), (300, 100)] {
        draw_app(&app, w, h);
    }
}
