//! The apps' output on the runtime's own stdout and stderr, read from the
//! event bus that `rpm2 logs` reads. It runs on a thread of its own: a
//! container's log driver that reads slowly blocks these writes, never the
//! daemon (the bus keeps a bounded queue for it and says what it dropped).

use std::io::{self, Write};
use std::sync::Arc;

use rpm2_logs::bus;
use rpm2_proto::{Event, EventProcess};
use tokio::sync::Notify;

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStyle {
    /// `0|api        | line`: stdout lines on stdout, stderr lines on stderr.
    #[default]
    Prefixed,
    /// The line alone, on the stream it was written to.
    Raw,
    /// One JSON object per line, all on stdout:
    /// `{"app","id","stream","time","message"}`.
    Json,
    /// pm2-runtime's `--format`: `timestamp=… app=… id=… type=… message=…`
    /// on stdout.
    KeyValue,
}

/// How long the last lines may take to be written at exit: a stdout
/// nobody reads must not keep the runtime from exiting.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The printing thread, and how to stop it.
pub struct Printer {
    done: Arc<Notify>,
    finished: std::sync::mpsc::Receiver<()>,
}

impl Printer {
    /// Print what `events` brings in `style`; `lifecycle` is notified of
    /// every process event (and of dropped events, which may hide one).
    pub fn start(
        mut events: bus::Receiver,
        style: LogStyle,
        lifecycle: Arc<Notify>,
    ) -> io::Result<Self> {
        let done = Arc::new(Notify::new());
        let stop = Arc::clone(&done);
        let (finished_tx, finished) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("rpm2-output".to_owned())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
                    return;
                };
                rt.block_on(async {
                    loop {
                        tokio::select! {
                            event = events.recv() => match event {
                                Ok(event) => print(&event, style, &lifecycle),
                                Err(bus::Closed) => return,
                            },
                            () = stop.notified() => break,
                        }
                    }
                    // What was queued before the stop is still printed.
                    while let Ok(event) = events.try_recv() {
                        print(&event, style, &lifecycle);
                    }
                });
                let _ = io::stdout().flush();
                let _ = finished_tx.send(());
            })?;
        Ok(Self { done, finished })
    }

    /// Print what is queued, then stop (waiting at most `FINISH_WAIT`).
    pub fn finish(self) {
        self.done.notify_one();
        let _ = self.finished.recv_timeout(FINISH_WAIT);
    }
}

fn print(event: &Event, style: LogStyle, lifecycle: &Notify) {
    let (process, at, data, is_err) = match event {
        Event::LogOut { process, at, data } => (process, *at, data, false),
        Event::LogErr { process, at, data } => (process, *at, data, true),
        Event::ProcessEvent { .. } => {
            lifecycle.notify_one();
            return;
        }
        Event::Dropped { lines, .. } => {
            lifecycle.notify_one();
            let _ = writeln!(
                io::stderr(),
                "[RPM2] {lines} log lines dropped: the output was read more slowly than the apps wrote"
            );
            return;
        }
        Event::ProcessMsg { .. } => return,
    };
    let mut text = String::new();
    for line in data.split('\n').filter(|l| !l.is_empty()) {
        format_line(&mut text, style, process, at, line, is_err);
    }
    // Errors (a closed stdout) are not worth dying for: the apps run on.
    let _ = if is_err && matches!(style, LogStyle::Prefixed | LogStyle::Raw) {
        io::stderr().lock().write_all(text.as_bytes())
    } else {
        io::stdout().lock().write_all(text.as_bytes())
    };
}

fn format_line(
    out: &mut String,
    style: LogStyle,
    p: &EventProcess,
    at: u64,
    line: &str,
    is_err: bool,
) {
    use std::fmt::Write as _;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let stream = if is_err { "err" } else { "out" };
    let _ = match style {
        LogStyle::Prefixed => writeln!(out, "{}|{:<10} | {line}", p.pm_id, p.name),
        LogStyle::Raw => writeln!(out, "{line}"),
        LogStyle::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "app": p.name,
                "id": p.pm_id,
                "stream": stream,
                "time": time(at),
                "message": line,
            })
        ),
        LogStyle::KeyValue => writeln!(
            out,
            "timestamp={} app={} id={} type={} message={line}",
            time(at),
            p.name,
            p.pm_id,
            if is_err { "error" } else { "out" },
        ),
    };
}

/// ms since the epoch → RFC 3339 in UTC with milliseconds.
fn time(at_ms: u64) -> String {
    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(at).map_or_else(String::new, |t| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(style: LogStyle, data: &str, is_err: bool) -> String {
        let p = EventProcess {
            pm_id: 3,
            name: "api".into(),
            namespace: "default".into(),
        };
        let mut out = String::new();
        for line in data.split('\n').filter(|l| !l.is_empty()) {
            format_line(&mut out, style, &p, 0, line, is_err);
        }
        out
    }

    #[test]
    fn each_style_writes_one_line_per_line() {
        assert_eq!(
            lines(LogStyle::Prefixed, "a\nb\n", false),
            "3|api        | a\n3|api        | b\n"
        );
        assert_eq!(lines(LogStyle::Raw, "a\r\n", true), "a\n");
        assert_eq!(
            lines(LogStyle::KeyValue, "a", true),
            "timestamp=1970-01-01T00:00:00.000Z app=api id=3 type=error message=a\n"
        );
    }

    #[test]
    fn json_lines_parse_and_keep_odd_text() {
        let out = lines(LogStyle::Json, "say \"hi\"\t\u{1b}[31mred\nsecond\n", true);
        let parsed: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("pure JSON"))
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["message"], "say \"hi\"\t\u{1b}[31mred");
        assert_eq!(parsed[0]["app"], "api");
        assert_eq!(parsed[0]["id"], 3);
        assert_eq!(parsed[0]["stream"], "err");
        assert_eq!(parsed[1]["time"], "1970-01-01T00:00:00.000Z");
    }
}
