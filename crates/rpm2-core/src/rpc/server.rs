//! The daemon's RPC socket: accept, check the peer's uid, `hello`, then
//! one response per request (or an event stream after `Subscribe`).
//!
//! Nobody can lock the others out: request clients and subscribers have
//! separate caps; a client must say hello within a deadline and is dropped
//! when idle; a newcomer that finds no room is refused at once with
//! `DAEMON_BUSY`. A subscriber that reads slowly gets a bounded queue and
//! a `log:dropped` event for what it missed (`rpm2_logs::bus`). The socket
//! file is watched: deleted or replaced, it is bound again.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rpm2_proto::frame::{encode, encode_answer, FrameDecoder, FrameError};
use rpm2_proto::{ErrorCode, Request, Response, RpcError, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};

use crate::paths::Home;
use crate::supervisor::{ops, SupervisorHandle};

/// Request clients connected at once; the next one is refused.
const MAX_CONNECTIONS: usize = 256;
/// Event subscribers (`logs`, `launchBus`) at once, counted apart.
const MAX_SUBSCRIBERS: usize = 64;
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
    /// `update`: the table is written down and the client answered; exec
    /// the new image now.
    Handover(Box<crate::handover::Prepared>),
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
                let too_large = matches!(e, FrameError::TooLarge(..));
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
            Request::Hello {
                protocol,
                update_only,
                ..
            } => {
                if protocol != PROTOCOL_VERSION && !update_only {
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
                    daemon_version: crate::handover::daemon_version(),
                    update_refused: crate::handover::update_refused(),
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
            Request::Update => {
                // Answer first: the exec closes this connection.
                return match crate::handover::prepare(&shared.sup).await {
                    Ok(prepared) => {
                        let written = write(&mut stream, &Response::Ok, limits.idle).await;
                        let _ = shared
                            .daemon_tx
                            .send(DaemonRequest::Handover(Box::new(prepared)));
                        written
                    }
                    Err(error) => write(&mut stream, &Response::Error { error }, limits.idle).await,
                };
            }
            Request::Kill => {
                // Answer once everything is stopped, then let the daemon exit.
                let processes = ops::stop_all(&shared.sup).await;
                let written =
                    write(&mut stream, &Response::Processes { processes }, limits.idle).await;
                let _ = shared.daemon_tx.send(DaemonRequest::Exit);
                return written;
            }
            other => handle_contained(shared, other).await,
        };
        write(&mut stream, &resp, limits.idle).await?;
    }
}

/// Handle one request; a panic on its way (a bug) is logged by the panic
/// hook and answered as `INTERNAL_ERROR`, and the connection goes on.
/// Unwind safety: the handler holds no lock and shares nothing mutable
/// but the supervisor's channel (the state is the actor's), so nothing is
/// left half-changed here.
async fn handle_contained(shared: &Shared, req: Request) -> Response {
    use futures_util::FutureExt;
    let handling = async {
        #[cfg(debug_assertions)]
        crate::panics::debug::maybe_panic_on(crate::panics::debug::Place::Rpc, &req);
        ops::handle(&shared.sup, &shared.home, req).await
    };
    match std::panic::AssertUnwindSafe(handling).catch_unwind().await {
        Ok(resp) => resp,
        Err(payload) => Response::Error {
            error: RpcError::new(
                ErrorCode::Internal,
                format!(
                    "the daemon failed while handling this request (a bug; see {}): {}",
                    shared.home.daemon_log().display(),
                    crate::panics::payload_text(payload.as_ref())
                ),
            ),
        },
    }
}

/// Send one response; a client that does not read it within `wait` is
/// dropped.
async fn write(stream: &mut UnixStream, resp: &Response, wait: Duration) -> io::Result<()> {
    let bytes = match encode_answer(resp) {
        Ok(bytes) => bytes,
        Err(e @ FrameError::TooLarge(..)) => {
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

/// Forward bus events until the client goes away. The bus keeps this
/// subscriber's events in its own queue, bounded by bytes, and tells it
/// (`log:dropped`) what it had to leave out while the client read slowly.
async fn stream_events(mut stream: UnixStream, sup: &SupervisorHandle) -> io::Result<()> {
    let mut rx = sup.subscribe();
    let (mut rd, mut wr) = stream.split();
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Ok(event) = ev else { return Ok(()) };
                let bytes = encode(&Response::Event { event }).map_err(io::Error::other)?;
                wr.write_all(&bytes).await?;
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
}
