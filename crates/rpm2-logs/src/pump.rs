//! Pumps: read a worker's stdout or stderr until EOF, queue the bytes to its
//! log files and publish them on the event bus.
//!
//! Raw mode (pm2's default) never looks at the bytes: each read is copied
//! once and handed to the writers, so the cost is per read, not per line.
//! Formatted modes (a date prefix, or `log_type: json`) need whole lines: a
//! partial last line is carried to the next read so a prefix never lands in
//! the middle of a line, even when several workers share a file.

use std::time::Duration;

use crate::bus;
use chrono::format::Item;
use chrono::{Local, SecondsFormat, Utc};
use rpm2_proto::{Event, EventProcess};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::writer::FileWriter;

/// One read takes whatever the pipe holds. Pumps start small (most apps
/// log little, and every worker has two pumps) and double their buffer
/// whenever a read fills it, up to this.
pub(crate) const READ_BUF: usize = 256 << 10;
pub(crate) const FIRST_READ_BUF: usize = 4 << 10;
/// After a read that did not fill the buffer, the pump waits
/// [`COALESCE_DELAY`] before reading again. A Node app logging in a loop
/// makes one `write(2)` per line; reading each as it lands costs a wake-up,
/// a read and a file write per line; pausing lets a whole burst gather in
/// the pipe (the daemon enlarges worker pipes to 1 MiB, see
/// `rpm2-core`'s spawn). Every wake-up of the daemon costs far more than
/// the bytes it moves (a profile at 100k lines/s was two thirds context
/// switching), so a steadily chatty app is read 20 times a second; a lone
/// line is still read the moment it arrives (the pause comes after a read),
/// and a read that fills the buffer is followed at once by the next, so a
/// flood never throttles the app.
pub(crate) const COALESCE_DELAY: Duration = Duration::from_millis(50);
/// A partial line longer than this is written without waiting for its end
/// (bounds memory for apps that never print a newline).
const MAX_PARTIAL: usize = 64 << 10;
/// A partial line idle this long is written without waiting for its end
/// (prompts, progress output), as pm2 would have written it at once.
pub(crate) const PARTIAL_IDLE: Duration = Duration::from_secs(1);
/// Used when the configured strftime format does not parse.
const FALLBACK_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// A pump's unfinished line, carried from one daemon image to the next
/// (`rpm2 update`), so no line is cut or stamped twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PumpCarry {
    pub partial: Vec<u8>,
    /// The partial line's date prefix was already written.
    pub mid_line: bool,
}

/// Which of the worker's pipes a pump reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Out,
    Err,
}

impl StreamKind {
    /// The `type` field of pm2's JSON log lines.
    fn json_name(self) -> &'static str {
        match self {
            Self::Out => "out",
            Self::Err => "err",
        }
    }
}

/// How lines are written to the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFormat {
    /// chrono strftime format (already converted from pm2's dayjs syntax);
    /// each line becomes `<date>: <line>`, or is the JSON `timestamp`.
    pub date_format: Option<String>,
    /// pm2's `log_type: 'json'`.
    pub json: bool,
}

/// Everything a pump needs.
pub struct PumpConfig {
    pub kind: StreamKind,
    /// The out (or error) file, plus the combined `log_file` if any. Empty
    /// means bus only.
    pub files: Vec<FileWriter>,
    pub format: LogFormat,
    pub process: EventProcess,
    pub bus: bus::Sender,
}

/// Reads any byte stream until EOF, writes every byte to the files and
/// publishes chunks on the bus. (The daemon reads worker pipes with
/// [`crate::spawn_fd_pump`], which shares this formatting; this one serves
/// other sources, and tests that control chunk boundaries.) Returns when the pipe closes; a partial last
/// line is written then (formatted modes end it with a newline, so the next
/// run's first prefix starts a line).
///
/// The bus gets one event per read chunk, and only while someone listens;
/// in formatted modes the chunk is the formatted text, as pm2 sends it.
/// After a read the pump pauses 50 ms so bursts are read at once: a line
/// that follows another closely reaches files and bus up to ~50 ms later.
pub fn spawn_pump<R>(mut reader: R, cfg: PumpConfig) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut pump = Pump::new(cfg);
        let mut buf = vec![0u8; FIRST_READ_BUF];
        loop {
            let read = if pump.has_partial() {
                // Only armed while a partial line waits, so the flood case
                // of whole lines pays no timer.
                match tokio::time::timeout(PARTIAL_IDLE, reader.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        pump.flush_partial(false);
                        continue;
                    }
                }
            } else {
                reader.read(&mut buf).await
            };
            match read {
                Ok(0) => break,
                Ok(n) => {
                    pump.chunk(&buf[..n]);
                    if n < buf.len() {
                        tokio::time::sleep(COALESCE_DELAY).await;
                    } else if buf.len() < READ_BUF {
                        buf.resize(buf.len() * 2, 0);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(name = %pump.process.name, error = %e, "log pipe read failed");
                    break;
                }
            }
        }
        pump.finish();
    })
}

enum Mode {
    Raw,
    /// `<date>: <line>` with pre-parsed strftime items.
    Date(Vec<Item<'static>>),
    /// JSON records; the date items, if any, give the `timestamp`. `tail`
    /// is the constant end of every record (`,"type":…}` + newline), built
    /// once so a line costs one escape of its message.
    Json {
        items: Option<Vec<Item<'static>>>,
        tail: Vec<u8>,
    },
}

pub(crate) struct Pump {
    kind: StreamKind,
    files: Vec<FileWriter>,
    mode: Mode,
    process: EventProcess,
    bus: bus::Sender,
    /// Formatted modes: the unfinished last line.
    partial: Vec<u8>,
    /// Date mode: the current line's prefix was already written (a partial
    /// line was flushed early), so its rest must not get another one.
    mid_line: bool,
    /// Bus: the bytes of a UTF-8 character split by the last read.
    utf8_carry: Vec<u8>,
}

impl Pump {
    pub(crate) fn new(cfg: PumpConfig) -> Self {
        let items = cfg.format.date_format.as_deref().map(parse_items);
        let mode = match (cfg.format.json, items) {
            (true, items) => Mode::Json {
                items,
                tail: json_tail(cfg.kind, &cfg.process),
            },
            (false, Some(items)) => Mode::Date(items),
            (false, None) => Mode::Raw,
        };
        Self {
            kind: cfg.kind,
            files: cfg.files,
            mode,
            process: cfg.process,
            bus: cfg.bus,
            partial: Vec::new(),
            mid_line: false,
            utf8_carry: Vec::new(),
        }
    }

    pub(crate) fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// What a pump handed to another image must carry on with.
    pub(crate) fn take_carry(&mut self) -> PumpCarry {
        PumpCarry {
            partial: std::mem::take(&mut self.partial),
            mid_line: std::mem::take(&mut self.mid_line),
        }
    }

    pub(crate) fn resume(&mut self, carry: PumpCarry) {
        self.partial = carry.partial;
        self.mid_line = carry.mid_line;
    }

    /// Handles one read.
    pub(crate) fn chunk(&mut self, data: &[u8]) {
        if matches!(self.mode, Mode::Raw) {
            self.publish(data);
            self.send(data.to_vec());
            return;
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut stamp = None;
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(i + 1);
            if self.partial.is_empty() {
                self.emit(&mut out, &mut stamp, line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.emit(&mut out, &mut stamp, &whole);
                whole.clear();
                self.partial = whole; // keep the allocation
            }
            rest = tail;
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_PARTIAL {
            let partial = std::mem::take(&mut self.partial);
            self.emit(&mut out, &mut stamp, &partial);
        }
        self.output(out);
    }

    /// Writes the partial line now; `eof` also ends it with a newline.
    pub(crate) fn flush_partial(&mut self, eof: bool) {
        let mut out = Vec::new();
        let mut stamp = None;
        let partial = std::mem::take(&mut self.partial);
        if !partial.is_empty() {
            self.emit(&mut out, &mut stamp, &partial);
        }
        if eof && self.mid_line {
            out.push(b'\n');
            self.mid_line = false;
        }
        self.output(out);
    }

    pub(crate) fn finish(&mut self) {
        if !matches!(self.mode, Mode::Raw) {
            self.flush_partial(true);
        }
        if !self.utf8_carry.is_empty() && self.bus.receiver_count() > 0 {
            let data = String::from_utf8_lossy(&self.utf8_carry).into_owned();
            self.utf8_carry.clear();
            let _ = self.bus.send(self.event(data));
        }
    }

    /// Appends one formatted line (or line fragment) to `out`. `stamp` is
    /// computed once per read: lines that arrived together share it, and a
    /// flood of lines costs one clock read and one format per read.
    fn emit(&mut self, out: &mut Vec<u8>, stamp: &mut Option<String>, line: &[u8]) {
        match &self.mode {
            Mode::Raw => out.extend_from_slice(line),
            Mode::Date(items) => {
                if !self.mid_line {
                    let s = stamp.get_or_insert_with(|| local_stamp(items));
                    out.extend_from_slice(s.as_bytes());
                    out.extend_from_slice(b": ");
                }
                out.extend_from_slice(line);
                self.mid_line = line.last() != Some(&b'\n');
            }
            Mode::Json { items, tail } => {
                // Here the stamp is kept as an escaped JSON string.
                let s = stamp.get_or_insert_with(|| {
                    let raw = match items {
                        Some(items) => local_stamp(items),
                        None => Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                    };
                    let mut quoted = Vec::with_capacity(raw.len() + 2);
                    json_string(&mut quoted, &raw);
                    String::from_utf8(quoted).unwrap_or_default()
                });
                out.extend_from_slice(b"{\"message\":");
                json_string(out, &String::from_utf8_lossy(line));
                out.extend_from_slice(b",\"timestamp\":");
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(tail);
            }
        }
    }

    /// Publishes and writes formatted output.
    fn output(&mut self, out: Vec<u8>) {
        if out.is_empty() {
            return;
        }
        self.publish(&out);
        self.send(out);
    }

    /// Queues `data` to every file; the last one gets the buffer itself.
    fn send(&self, data: Vec<u8>) {
        if let Some((last, others)) = self.files.split_last() {
            for w in others {
                w.write(data.clone());
            }
            last.write(data);
        }
    }

    /// One bus event for `data`, if anyone listens. A UTF-8 character split
    /// across reads is held back and completed by the next read, so
    /// followers do not see replacement characters for valid output.
    fn publish(&mut self, data: &[u8]) {
        if self.bus.receiver_count() == 0 {
            self.utf8_carry.clear();
            return;
        }
        let text = if self.utf8_carry.is_empty() {
            let cut = data.len() - incomplete_utf8_tail(data);
            self.utf8_carry.extend_from_slice(&data[cut..]);
            String::from_utf8_lossy(&data[..cut]).into_owned()
        } else {
            // The tail is found on carry and data together: a read may
            // bring only the middle of a character (a 4-byte one cut in
            // three), and then it still is incomplete.
            let mut joined = std::mem::take(&mut self.utf8_carry);
            joined.extend_from_slice(data);
            let cut = joined.len() - incomplete_utf8_tail(&joined);
            self.utf8_carry.extend_from_slice(&joined[cut..]);
            joined.truncate(cut);
            String::from_utf8_lossy(&joined).into_owned()
        };
        if !text.is_empty() {
            // Err only when every receiver went away meanwhile.
            let _ = self.bus.send(self.event(text));
        }
    }

    fn event(&self, data: String) -> Event {
        let process = self.process.clone();
        let at = now_ms();
        match self.kind {
            StreamKind::Out => Event::LogOut { process, at, data },
            StreamKind::Err => Event::LogErr { process, at, data },
        }
    }
}

/// Parses a strftime format once; a bad one falls back to pm2's `time: true`
/// format instead of panicking while formatting.
fn parse_items(fmt: &str) -> Vec<Item<'static>> {
    chrono::format::StrftimeItems::new(fmt)
        .parse_to_owned()
        .unwrap_or_else(|_| {
            tracing::warn!(
                format = fmt,
                "invalid log date format; using {FALLBACK_DATE_FORMAT}"
            );
            chrono::format::StrftimeItems::new(FALLBACK_DATE_FORMAT)
                .parse_to_owned()
                .unwrap_or_default()
        })
}

fn local_stamp(items: &[Item<'static>]) -> String {
    Local::now().format_with_items(items.iter()).to_string()
}

/// `,"type":"out","process_id":0,"app_name":"x"}` and a newline.
fn json_tail(kind: StreamKind, process: &EventProcess) -> Vec<u8> {
    let mut tail = format!(
        ",\"type\":\"{}\",\"process_id\":{},\"app_name\":",
        kind.json_name(),
        process.pm_id
    )
    .into_bytes();
    json_string(&mut tail, &process.name);
    tail.extend_from_slice(b"}\n");
    tail
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Length of an incomplete UTF-8 sequence at the end of `b` (0 if none),
/// looking only at the last three bytes rather than validating everything.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for i in 1..=b.len().min(3) {
        let c = b[b.len() - i];
        if c & 0xC0 == 0x80 {
            continue; // continuation byte: the lead is further back
        }
        let need = match c {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if need > i { i } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::incomplete_utf8_tail;

    #[test]
    fn utf8_tail() {
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(incomplete_utf8_tail(b"abc"), 0);
        assert_eq!(incomplete_utf8_tail(euro), 0);
        assert_eq!(incomplete_utf8_tail(&euro[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&euro[..2]), 2);
        let mut s = b"x".to_vec();
        s.extend_from_slice(&"😀".as_bytes()[..3]);
        assert_eq!(incomplete_utf8_tail(&s), 3);
        assert_eq!(incomplete_utf8_tail(b""), 0);
    }

    /// Found by `followers_get_utf8_output_whole_whatever_the_cuts`: a read
    /// that brings only the middle of a 4-byte character made followers
    /// see four replacement characters.
    #[test]
    fn a_character_cut_in_three_reaches_followers_whole() {
        use super::{LogFormat, Pump, PumpConfig, StreamKind};
        let (bus, mut rx) = crate::bus::channel(crate::bus::SUBSCRIBER_LIMIT);
        let mut pump = Pump::new(PumpConfig {
            kind: StreamKind::Out,
            files: Vec::new(),
            format: LogFormat::default(),
            process: rpm2_proto::EventProcess {
                pm_id: 0,
                name: "app".into(),
                namespace: "default".into(),
            },
            bus,
        });
        let face = "😀".as_bytes();
        for part in [&face[..1], &face[1..3], &face[3..]] {
            pump.chunk(part);
        }
        let mut got = String::new();
        while let Ok(rpm2_proto::Event::LogOut { data, .. }) = rx.try_recv() {
            got.push_str(&data);
        }
        assert_eq!(got, "😀");
    }
}

#[cfg(test)]
#[path = "pump_props.rs"]
mod props;
