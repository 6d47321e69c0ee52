//! The daemon's RPC socket: accept, check the peer's uid, `hello`, then
//! one response per request (or an event stream after `Subscribe`).
//!
//! Nobody can lock the others out: request clients and subscribers have
//! separate caps; a client must say hello within a deadline and is dropped
//! when idle; a newcomer that finds no room is refused at once with
//! `DAEMON_BUSY`. A subscriber that reads slowly gets a bounded buffer and
//! a `log:dropped` event for what it missed (`stream_events`). The socket
//! file is watched: deleted or replaced, it is bound again.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rpm2_proto::frame::{encode, FrameDecoder, FrameError};
use rpm2_proto::{ErrorCode, Event, Request, Response, RpcError, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, Semaphore};

use crate::paths::Home;
use crate::supervisor::{now_ms, ops, SupervisorHandle};

/// Request clients connected at once; the next one is refused.
const MAX_CONNECTIONS: usize = 256;
/// Event subscribers (`logs`, `launchBus`) at once, counted apart.
const MAX_SUBSCRIBERS: usize = 64;
/// Encoded events kept for one subscriber that reads slowly.
const SUBSCRIBER_BUFFER: usize = 1024 * 1024;
/// How often the socket file is checked.
const SOCKET_CHECK: Duration = Duration::from_secs(2);

/// The limits of the RPC server; the timeouts can be set through the
/// daemon's environment (tests use short ones).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to a complete `hello` (`RPM2_RPC_HELLO_TIMEOUT_MS`).
    pub hello: Duration,
    /// Between requests, and for writing an answer
    /// (`RPM2_RPC_IDLE_TIMEOUT_MS`).
    pub idle: Duration,
}

impl Limits {
    #[must_use]
    pub fn from_env() -> Self {
        let ms = |name: &str, default: u64| {
            let ms = std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&v| v > 0)
                .unwrap_or(default);
            Duration::from_millis(ms)
        };
        Self {
            hello: ms("RPM2_RPC_HELLO_TIMEOUT_MS", 5_000),
            idle: ms("RPM2_RPC_IDLE_TIMEOUT_MS", 60_000),
        }
    }
}

/// What the RPC side asks of the daemon's main task.
pub enum DaemonRequest {
    /// `kill`: every app is stopped and the client answered; exit now.
    Exit,
}

struct Shared {
    sup: SupervisorHandle,
    home: Home,
    daemon_tx: mpsc::UnboundedSender<DaemonRequest>,
    limits: Limits,
    subscribers: Arc<Semaphore>,
}

/// Serve clients until the socket can no longer be bound.
pub async fn serve(
    listener: UnixListener,
    sup: SupervisorHandle,
    home: Home,
    daemon_tx: mpsc::UnboundedSender<DaemonRequest>,
) {
    let socket = home.rpc_socket();
    let mut bound = identity(&socket);
    let mut listener = listener;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let shared = Arc::new(Shared {
        sup,
        home,
        daemon_tx,
        limits: Limits::from_env(),
        subscribers: Arc::new(Semaphore::new(MAX_SUBSCRIBERS)),
    });
    let my_uid = nix::unistd::getuid().as_raw();
    let mut check = tokio::time::interval(SOCKET_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("rpc accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = check.tick() => {
                if identity(&socket) != bound {
                    match rebind(&socket) {
                        Ok(l) => {
                            tracing::warn!("{} was deleted or replaced: bound it again", socket.display());
                            listener = l;
                            bound = identity(&socket);
                        }
                        Err(e) => tracing::error!("cannot bind {} again: {e}", socket.display()),
                    }
                }
                continue;
            }
        };
        // Only our own user (and root) may drive the daemon.
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == my_uid || cred.uid() == 0 => {}
            _ => {
                tracing::warn!("refused an rpc client of another user");
                continue;
            }
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse_busy(&stream, "clients");
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &shared, permit).await {
                tracing::debug!("rpc client dropped: {e}");
            }
        });
    }
}

/// The socket file's device and inode, if it is there.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Remove whatever sits at `path` and bind a fresh socket there (we hold
/// the pid file's lock: nobody else may serve this home).
fn rebind(path: &PathBuf) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Tell a newcomer there is no room, without waiting for it.
fn refuse_busy(stream: &UnixStream, what: &str) {
    tracing::warn!("rpc: refused a client, all {MAX_CONNECTIONS} {what} slots are taken");
    let error = busy_error(what);
    if let Ok(bytes) = encode(&Response::Error { error }) {
        // A fresh socket's buffer is empty: this never blocks.
        let _ = stream.try_write(&bytes);
    }
}

fn busy_error(what: &str) -> RpcError {
    let max = if what == "clients" {
        MAX_CONNECTIONS
    } else {
        MAX_SUBSCRIBERS
    };
    RpcError::new(
        ErrorCode::DaemonBusy,
        format!(
            "the rpm2 daemon is busy: {max} {what} are connected already, the most it serves at \
             once; retry later (idle clients are dropped after a while)"
        ),
    )
}

/// The next request, or `None` when the client hung up; an `Err` of kind
/// `TimedOut` when none came within `wait`.
async fn next_request(
    stream: &mut UnixStream,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
    wait: Duration,
) -> io::Result<Option<Request>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match decoder.next_frame::<Request>() {
            Ok(Some(req)) => return Ok(Some(req)),
            Ok(None) => {}
            Err(e) => {
                // A malformed frame gets an error answer; too large means
                // we cannot find the next frame, so hang up.
                let too_large = matches!(e, FrameError::TooLarge(_));
                let error = if too_large {
                    RpcError::new(ErrorCode::TooLarge, e.to_string())
                } else {
                    RpcError::new(ErrorCode::BadRequest, quote(&e.to_string()))
                };
                write(stream, &Response::Error { error }, wait).await?;
                if too_large {
                    return Ok(None);
                }
                continue;
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(buf))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(None);
        }
        decoder.extend(&buf[..n]);
    }
}

/// At most this much of a client's input is quoted back in an error.
const MAX_QUOTE: usize = 200;

/// `text` cut to [`MAX_QUOTE`] bytes (at a char boundary), saying so.
fn quote(text: &str) -> String {
    if text.len() <= MAX_QUOTE {
        return text.to_owned();
    }
    let mut end = MAX_QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// Serve one client; `slot` is its request-client slot, given back when
/// it becomes a subscriber (counted apart) or leaves.
async fn connection(
    mut stream: UnixStream,
    shared: &Shared,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> io::Result<()> {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut greeted = false;
    let limits = shared.limits;
    loop {
        let wait = if greeted { limits.idle } else { limits.hello };
        let req = match next_request(&mut stream, &mut decoder, &mut buf, wait).await {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                tracing::debug!(
                    "rpc client dropped: {} for {wait:?}",
                    if greeted { "idle" } else { "no hello" }
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let resp = match req {
            Request::Hello { protocol, .. } => {
                if protocol != PROTOCOL_VERSION {
                    let error = RpcError::new(
                        ErrorCode::ProtocolMismatch,
                        format!(
                            "client speaks protocol {protocol}, daemon {PROTOCOL_VERSION}: run `rpm2 kill` and retry"
                        ),
                    );
                    write(&mut stream, &Response::Error { error }, limits.idle).await?;
                    return Ok(());
                }
                greeted = true;
                Response::Hello {
                    protocol: PROTOCOL_VERSION,
                    daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
                    pid: std::process::id(),
                    home: shared.home.root().display().to_string(),
                }
            }
            _ if !greeted => Response::Error {
                error: RpcError::new(ErrorCode::ProtocolMismatch, "say hello first"),
            },
            Request::Subscribe => {
                let Ok(permit) = Arc::clone(&shared.subscribers).try_acquire_owned() else {
                    let error = busy_error("subscribers");
                    write(&mut stream, &Response::Error { error }, limits.idle).await?;
                    continue;
                };
                write(&mut stream, &Response::Ok, limits.idle).await?;
                drop(slot);
                let result = stream_events(stream, &shared.sup).await;
                drop(permit);
                return result;
            }
            Request::Kill => {
                // Answer once everything is stopped, then let the daemon exit.
                let processes = ops::stop_all(&shared.sup).await;
                let written =
                    write(&mut stream, &Response::Processes { processes }, limits.idle).await;
                let _ = shared.daemon_tx.send(DaemonRequest::Exit);
                return written;
            }
            other => ops::handle(&shared.sup, &shared.home, other).await,
        };
        write(&mut stream, &resp, limits.idle).await?;
    }
}

/// Send one response; a client that does not read it within `wait` is
/// dropped.
async fn write(stream: &mut UnixStream, resp: &Response, wait: Duration) -> io::Result<()> {
    let bytes = match encode(resp) {
        Ok(bytes) => bytes,
        Err(e @ FrameError::TooLarge(_)) => {
            let error = RpcError::new(
                ErrorCode::TooLarge,
                format!("the answer is too large to send: {e}"),
            );
            encode(&Response::Error { error }).map_err(io::Error::other)?
        }
        Err(e) => return Err(io::Error::other(e)),
    };
    tokio::time::timeout(wait, stream.write_all(&bytes))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Encoded events waiting for a subscriber, bounded by bytes: what does
/// not fit is counted and reported by one `log:dropped` event once the
/// subscriber catches up.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Vec<u8>>,
    /// Bytes queued, the frame being written included.
    bytes: usize,
    dropped_events: u64,
    dropped_lines: u64,
}

impl Outbox {
    fn push(&mut self, event: Event) -> io::Result<()> {
        // Judged by the payload first, so a dropped chunk costs no encoding.
        if self.bytes + payload_len(&event) > SUBSCRIBER_BUFFER {
            self.drop_event(&event);
            return Ok(());
        }
        let lines = lines_in(&event);
        let frame = encode(&Response::Event { event }).map_err(io::Error::other)?;
        if self.bytes + frame.len() > SUBSCRIBER_BUFFER {
            self.dropped_events += 1;
            self.dropped_lines += lines;
            return Ok(());
        }
        self.report_dropped()?;
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Ok(())
    }

    /// Queue the `log:dropped` event for what was left out, if anything.
    fn report_dropped(&mut self) -> io::Result<()> {
        if self.dropped_events == 0 {
            return Ok(());
        }
        let event = Event::Dropped {
            at: now_ms(),
            events: self.dropped_events,
            lines: self.dropped_lines,
        };
        let frame = encode(&Response::Event { event }).map_err(io::Error::other)?;
        self.dropped_events = 0;
        self.dropped_lines = 0;
        // Small, and it must not be lost: allowed past the bound.
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Ok(())
    }

    fn drop_event(&mut self, event: &Event) {
        self.dropped_events += 1;
        self.dropped_lines += lines_in(event);
    }

    fn lagged(&mut self, n: u64) {
        self.dropped_events += n;
    }

    /// The next frame to write; it counts until `written`.
    fn pop(&mut self) -> Option<Vec<u8>> {
        if self.frames.is_empty() {
            // Caught up: say what was missed.
            let _ = self.report_dropped();
        }
        self.frames.pop_front()
    }

    fn written(&mut self, len: usize) {
        self.bytes -= len;
    }
}

/// The bytes of an event's text (a lower bound of its frame's size).
fn payload_len(event: &Event) -> usize {
    match event {
        Event::LogOut { data, .. } | Event::LogErr { data, .. } => data.len(),
        _ => 0,
    }
}

fn lines_in(event: &Event) -> u64 {
    match event {
        Event::LogOut { data, .. } | Event::LogErr { data, .. } => {
            let newlines = memchr_count(data.as_bytes());
            u64::try_from(newlines.max(1)).unwrap_or(u64::MAX)
        }
        _ => 0,
    }
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Forward bus events until the client goes away. Events are taken off
/// the bus as they come (so the bus never holds them for us) and queued
/// here, bounded by bytes.
async fn stream_events(mut stream: UnixStream, sup: &SupervisorHandle) -> io::Result<()> {
    let mut rx = sup.subscribe();
    let (mut rd, mut wr) = stream.split();
    let mut probe = [0u8; 64];
    let mut outbox = Outbox::default();
    // The frame being written, and how much of it is.
    let mut current: Option<Vec<u8>> = None;
    let mut offset = 0;
    loop {
        if current.is_none() {
            current = outbox.pop();
            offset = 0;
        }
        let rest = current.as_deref().map_or(&[][..], |f| &f[offset..]);
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(event) => outbox.push(event)?,
                Err(broadcast::error::RecvError::Lagged(n)) => outbox.lagged(n),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // `write` is cancel safe: dropped unfinished, it wrote nothing.
            n = wr.write(rest), if !rest.is_empty() => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                offset += n;
                if let Some(len) = current.as_ref().map(Vec::len).filter(|&len| offset == len) {
                    outbox.written(len);
                    current = None;
                }
            }
            n = rd.read(&mut probe) => {
                if n? == 0 { return Ok(()); }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_a_bounded_part_of_the_input() {
        let long = "é".repeat(10_000);
        let q = quote(&long);
        assert!(q.len() < MAX_QUOTE + 40, "{}", q.len());
        assert!(q.ends_with("(20000 bytes in all)"), "{q}");
        assert_eq!(quote("short"), "short");
    }

    #[test]
    fn an_outbox_keeps_a_bounded_number_of_bytes_and_reports_the_rest() {
        let process = rpm2_proto::EventProcess {
            pm_id: 0,
            name: "a".into(),
            namespace: "default".into(),
        };
        let chunk = Event::LogOut {
            process,
            at: 0,
            data: "x\n".repeat(64 * 1024),
        };
        let mut outbox = Outbox::default();
        for _ in 0..100 {
            outbox.push(chunk.clone()).unwrap();
        }
        assert!(outbox.bytes <= SUBSCRIBER_BUFFER);
        assert!(outbox.dropped_events > 0);
        let dropped_lines = outbox.dropped_lines;
        assert_eq!(dropped_lines, outbox.dropped_events * 64 * 1024);
        // Once drained, the marker comes.
        let mut marker = Vec::new();
        while let Some(frame) = outbox.pop() {
            outbox.written(frame.len());
            marker = frame;
        }
        assert_eq!(outbox.bytes, 0);
        let mut dec = FrameDecoder::new();
        dec.extend(&marker);
        match dec.next_frame::<Response>().unwrap() {
            Some(Response::Event {
                event: Event::Dropped { lines, .. },
            }) => assert_eq!(lines, dropped_lines),
            other => panic!("{other:?}"),
        }
    }
}
