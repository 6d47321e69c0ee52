//! One IPC channel to one Node child: a tokio task owning the parent end of the socketpair.
//!
//! A single task does both reading and writing, because reads drive the writer (a worker's
//! `NODE_HANDLE_ACK` releases the send queue, and each received handle must be answered with
//! an ACK/NACK on the same stream).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::dup2;
use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, LineDecoder};
use crate::handoff;
use crate::queue::{Outgoing, SendQueue};
use crate::sys;

const ACK_LINE: &[u8] = b"{\"cmd\":\"NODE_HANDLE_ACK\"}\n";
const NACK_LINE: &[u8] = b"{\"cmd\":\"NODE_HANDLE_NACK\"}\n";
/// Cluster and user messages are small; a long one just takes several reads
/// (libuv reads 64 KiB at a time; a 4 KiB buffer keeps 100s of channels cheap).
const READ_BUF: usize = 4 * 1024;
/// Received fds waiting for their `NODE_HANDLE` line, at most. Node sends one per handle
/// message and waits for its ACK, so more is a confused or hostile worker: the oldest are
/// closed, and it cannot make the daemon run out of fds.
const MAX_PENDING_FDS: usize = 64;

/// Creates the channel: `socketpair(AF_UNIX, SOCK_STREAM)` with CLOEXEC on both ends.
/// Returns `(parent_end, child_end)`. The spawner makes the child end the child's fd 3
/// (see [`prepare_child_fd`]) and closes its own copy of it after spawning.
pub fn channel_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((a, b))
}

/// Environment that tells Node where its channel is (spec §1). Always `json` (spec §2.6).
pub fn child_env(fd: i32) -> [(&'static str, String); 2] {
    [
        ("NODE_CHANNEL_FD", fd.to_string()),
        ("NODE_CHANNEL_SERIALIZATION_MODE", "json".to_string()),
    ]
}

/// For use in `pre_exec`: installs `child_end` as fd `target` with CLOEXEC cleared.
/// Only calls async-signal-safe functions (dup2/fcntl) and allocates nothing.
pub fn prepare_child_fd(child_end: i32, target: i32) -> io::Result<()> {
    if child_end == target {
        let flags = FdFlag::from_bits_retain(fcntl(target, FcntlArg::F_GETFD)?);
        fcntl(target, FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC))?;
    } else {
        // dup2 clears FD_CLOEXEC on the new descriptor.
        dup2(child_end, target)?;
    }
    Ok(())
}

/// What the channel delivers.
#[derive(Debug)]
pub enum Incoming {
    /// A message from the child. For `NODE_HANDLE` envelopes this is the inner `msg`, with the
    /// received fd (CLOEXEC) in `handle`; the ACK has already been sent.
    Message { msg: Value, handle: Option<OwnedFd> },
    /// A worker's answer to `newconn` in Node's own spelling, read without
    /// JSON parsing (see [`crate::handoff`]); other spellings of the same
    /// answer arrive as a `Message`.
    Accepted { ack: u64, accepted: bool },
    /// The channel ended (EOF, error, or [`ChannelSender::close`]). Sent once, last.
    Closed,
}

/// The raw handle types Node's cluster code passes (spec §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleType {
    /// A TCP or unix stream socket (listening or connected).
    NetNative,
    /// A UDP socket.
    DgramNative,
}

impl HandleType {
    /// The `type` string in the `NODE_HANDLE` envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            HandleType::NetNative => "net.Native",
            HandleType::DgramNative => "dgram.Native",
        }
    }
}

/// Sending on a channel that has ended or is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelClosed;

impl fmt::Display for ChannelClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("node IPC channel closed")
    }
}

impl std::error::Error for ChannelClosed {}

enum Cmd {
    Send(Outgoing),
    Close,
    Detach(oneshot::Sender<Detached>),
}

/// A channel taken off its task, still open: for a daemon that hands its
/// workers over to a new image of itself (`rpm2 update`).
#[derive(Debug)]
pub struct Detached {
    /// The parent end, non-blocking.
    pub fd: OwnedFd,
    /// Bytes of a line the worker had not finished writing.
    pub leftover: Vec<u8>,
}

/// Cheap, cloneable handle for writing to the channel. Sends never block: messages go to an
/// unbounded queue drained by the channel task.
#[derive(Clone)]
pub struct ChannelSender {
    tx: mpsc::UnboundedSender<Cmd>,
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for ChannelSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl ChannelSender {
    fn push(&self, out: Outgoing) -> Result<(), ChannelClosed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ChannelClosed);
        }
        self.tx.send(Cmd::Send(out)).map_err(|_| ChannelClosed)
    }

    /// Sends any JSON value as one line (`process.on('message')` in the child for user
    /// messages; internal ones such as cluster messages go to Node's internal handler).
    pub fn send(&self, msg: Value) -> Result<(), ChannelClosed> {
        self.push(Outgoing {
            line: codec::encode_line(&msg),
            handle: None,
        })
    }

    /// Sends `msg` with an fd, wrapped as `{"cmd":"NODE_HANDLE","type":…,"msg":msg}`.
    ///
    /// The fd is made non-blocking first (spec §2.3). The channel owns `fd` and closes it once
    /// the child ACKs it (or after the last NACK re-send); pass a `try_clone()` to keep your
    /// own copy (a shared listening socket, or a connection to re-route if `accepted:false`).
    pub fn send_handle(
        &self,
        msg: Value,
        handle_type: HandleType,
        fd: OwnedFd,
    ) -> Result<(), ChannelClosed> {
        if let Err(e) = sys::set_nonblocking(fd.as_fd()) {
            tracing::warn!(error = %e, "node ipc: cannot set O_NONBLOCK on a handle to pass");
        }
        self.send_handle_line(
            codec::encode_handle_line(handle_type.as_str(), &msg),
            Arc::new(fd),
        )
    }

    /// Sends a ready-made `NODE_HANDLE` line (from [`crate::handoff::newconn_line`] or
    /// [`codec::encode_handle_line`]) with an fd the caller shares (it may keep a clone of
    /// the `Arc`) and already made non-blocking, e.g. a connection from
    /// `accept4(SOCK_NONBLOCK)`: the per-connection path, no syscall or JSON value on the way.
    pub fn send_handle_line(&self, line: Vec<u8>, fd: Arc<OwnedFd>) -> Result<(), ChannelClosed> {
        self.push(Outgoing {
            line,
            handle: Some(fd),
        })
    }

    /// Closes the parent end once everything queued so far has been written (so the child
    /// sees EOF: a cluster worker then exits 0, spec §2.4). Later sends fail. Messages held
    /// behind an un-ACKed handle keep the close waiting until that ACK (or the child's EOF);
    /// drop the child (kill it) if it may never answer.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Cmd::Close);
        }
    }

    /// Stops the channel task once everything queued so far is written and every handle in
    /// flight is answered, and hands back its socket (the worker sees no EOF). Messages read
    /// before that are delivered as usual. `None` when the channel has already ended; the
    /// receiver fails if it ends before it could be detached.
    pub fn detach(&self) -> Option<oneshot::Receiver<Detached>> {
        let (tx, rx) = oneshot::channel();
        if self.closed.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.tx.send(Cmd::Detach(tx)).ok()?;
        Some(rx)
    }

    /// True once [`close`](Self::close) was called or the channel ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }
}

/// Starts the channel task on the current tokio runtime (panics outside one, like
/// `tokio::spawn`). The task ends on EOF/error, after [`ChannelSender::close`], or when every
/// sender and the receiver have been dropped; its end of the socket is closed then.
pub fn open(parent_end: OwnedFd) -> io::Result<(ChannelSender, mpsc::UnboundedReceiver<Incoming>)> {
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    Ok((open_into(parent_end, in_tx, |incoming| incoming)?, in_rx))
}

/// [`open`] delivering into the caller's own queue, each [`Incoming`] wrapped by `wrap`
/// (the daemon tags it with the run it came from): no task in between.
pub fn open_into<T: Send + 'static>(
    parent_end: OwnedFd,
    out: mpsc::UnboundedSender<T>,
    wrap: impl Fn(Incoming) -> T + Send + 'static,
) -> io::Result<ChannelSender> {
    open_resumed(parent_end, Vec::new(), out, wrap)
}

/// [`open_into`] for a channel [detached](ChannelSender::detach) by another image: `leftover`
/// is the start of the worker's next line.
pub fn open_resumed<T: Send + 'static>(
    parent_end: OwnedFd,
    leftover: Vec<u8>,
    out: mpsc::UnboundedSender<T>,
    wrap: impl Fn(Incoming) -> T + Send + 'static,
) -> io::Result<ChannelSender> {
    sys::set_nonblocking(parent_end.as_fd())?;
    sys::set_cloexec(parent_end.as_fd())?;
    // SAFETY: the AsyncFd owns the OwnedFd, so the fd is neither closed nor replaced while
    // it is registered.
    let afd = unsafe { AsyncFd::register(parent_end)? };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let closed = Arc::new(AtomicBool::new(false));
    tokio::spawn(run(
        afd,
        leftover,
        cmd_rx,
        Out { tx: out, wrap },
        Arc::clone(&closed),
    ));
    Ok(ChannelSender { tx: cmd_tx, closed })
}

/// Where received messages go.
struct Out<T, W> {
    tx: mpsc::UnboundedSender<T>,
    wrap: W,
}

impl<T, W: Fn(Incoming) -> T> Out<T, W> {
    fn send(&self, incoming: Incoming) {
        let _ = self.tx.send((self.wrap)(incoming));
    }
}

/// Per-channel receive state.
struct Reader {
    decoder: LineDecoder,
    fds: VecDeque<OwnedFd>,
    buf: Vec<u8>,
    /// ACK/NACK answers dropped because the worker does not read them.
    dropped_answers: u64,
}

impl Reader {
    /// Answers a `NODE_HANDLE` line, unless too many answers already wait
    /// unread (the queue's cap): said once, then every 100 000.
    fn answer(&mut self, q: &mut SendQueue, line: &[u8]) {
        if !q.push_control(line) {
            if self.dropped_answers.is_multiple_of(100_000) {
                tracing::warn!(
                    "node ipc: the worker sends NODE_HANDLE lines and does not read its channel; answers dropped ({} so far)",
                    self.dropped_answers + 1
                );
            }
            self.dropped_answers += 1;
        }
    }

    /// Handles the bytes of one read: internal handle traffic is answered here, the rest is
    /// delivered.
    fn process<T, W: Fn(Incoming) -> T>(&mut self, n: usize, q: &mut SendQueue, out: &Out<T, W>) {
        if self.fds.len() > MAX_PENDING_FDS {
            let excess = self.fds.len() - MAX_PENDING_FDS;
            tracing::warn!("node ipc: closing {excess} received fds that no message claimed");
            self.fds.drain(..excess);
        }
        for line in self.decoder.push(&self.buf[..n]) {
            // Node writes its ACK byte for byte like ours: one comparison
            // instead of a JSON parse, once per connection handed over.
            if line == ACK_LINE[..ACK_LINE.len() - 1] {
                q.on_ack();
                continue;
            }
            if let Some((ack, accepted)) = handoff::parse_accepted_reply(&line) {
                out.send(Incoming::Accepted { ack, accepted });
                continue;
            }
            let Some(mut msg) = codec::decode_line(&line) else {
                continue;
            };
            if !codec::is_internal(&msg) {
                out.send(Incoming::Message { msg, handle: None });
                continue;
            }
            match msg.get("cmd").and_then(Value::as_str).unwrap_or_default() {
                "NODE_HANDLE_ACK" => q.on_ack(),
                "NODE_HANDLE_NACK" => q.on_nack(),
                "NODE_HANDLE" => match self.fds.pop_front() {
                    Some(fd) => {
                        self.answer(q, ACK_LINE);
                        let inner = msg.get_mut("msg").map(Value::take).unwrap_or_default();
                        out.send(Incoming::Message {
                            msg: inner,
                            handle: Some(fd),
                        });
                    }
                    None => {
                        tracing::debug!("node ipc: NODE_HANDLE without an fd, answering NACK");
                        self.answer(q, NACK_LINE);
                    }
                },
                _ => {
                    out.send(Incoming::Message { msg, handle: None });
                }
            }
        }
    }
}

async fn run<T, W: Fn(Incoming) -> T>(
    afd: AsyncFd<OwnedFd>,
    leftover: Vec<u8>,
    mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    out: Out<T, W>,
    closed: Arc<AtomicBool>,
) {
    let mut q = SendQueue::default();
    let mut reader = Reader {
        decoder: LineDecoder::new(),
        fds: VecDeque::new(),
        buf: vec![0; READ_BUF],
        dropped_answers: 0,
    };
    // Says `Closed` when this task ends, also by a panic (a bug on a
    // worker's input): the supervisor then treats the channel as gone,
    // as on EOF, and the run is not left waiting for messages forever.
    let mut end = EndGuard {
        out,
        closed,
        detached: false,
    };
    if !leftover.is_empty() {
        let n = leftover.len();
        reader.buf.resize(n.max(READ_BUF), 0);
        reader.buf[..n].copy_from_slice(&leftover);
        reader.process(n, &mut q, &end.out);
        reader.buf.truncate(READ_BUF);
    }
    let mut cmds_open = true;
    let mut closing = false;
    let mut detach_to: Option<oneshot::Sender<Detached>> = None;
    loop {
        if closing && q.is_drained() {
            break;
        }
        if detach_to.is_some() && q.is_drained() {
            if let Some(to) = detach_to.take() {
                let leftover = reader.decoder.take_pending();
                // Fds of a handle line not read whole yet: rare enough to drop.
                reader.fds.clear();
                let fd = afd.into_inner();
                // Taken: the channel lives on elsewhere, so no `Closed`.
                // Not taken: this is a close after all (the guard says so).
                end.detached = to.send(Detached { fd, leftover }).is_ok();
            }
            return;
        }
        let want_write = q.wants_write();
        tokio::select! {
            cmd = cmd_rx.recv(), if cmds_open => match cmd {
                Some(Cmd::Send(o)) => q.submit(o),
                Some(Cmd::Close) => closing = true,
                Some(Cmd::Detach(to)) => detach_to = Some(to),
                None => cmds_open = false,
            },
            // Nobody can send and nobody listens: stop (closes the socket).
            _ = end.out.tx.closed(), if !cmds_open => break,
            ready = afd.readable() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(error = %e, "node ipc: poll failed");
                        break;
                    }
                };
                let fds_before = reader.fds.len();
                let res = guard.try_io(|inner| {
                    sys::recv_with_fds(inner.as_raw_fd(), &mut reader.buf, &mut reader.fds)
                });
                match res {
                    Err(_would_block) => continue,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "node ipc: read failed, closing channel");
                        break;
                    }
                    Ok(Ok((0, _))) => break,
                    Ok(Ok((n, truncated))) => {
                        // A short read emptied the socket: wait for the next
                        // edge instead of paying a recvmsg that says EAGAIN
                        // (tokio's own streams do the same). Not after a read
                        // that brought fds: Linux ends a read at such a
                        // segment, so more may be queued behind it.
                        if n < reader.buf.len() && reader.fds.len() == fds_before && !truncated {
                            guard.clear_ready();
                        }
                        if truncated {
                            tracing::warn!("node ipc: ancillary data truncated (MSG_CTRUNC)");
                        }
                        reader.process(n, &mut q, &end.out);
                    }
                }
            },
            ready = afd.writable(), if want_write => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(error = %e, "node ipc: poll failed");
                        break;
                    }
                };
                match guard.try_io(|inner| q.write_to(inner.as_raw_fd())) {
                    Err(_would_block) => continue,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "node ipc: write failed, closing channel");
                        break;
                    }
                    Ok(Ok(())) => {}
                }
            },
        }
    }
    // Dropping `end` says `Closed`; dropping `afd` (and with it the OwnedFd) closes our
    // end: the child sees EOF.
}

/// Marks the channel closed and delivers [`Incoming::Closed`] when dropped.
struct EndGuard<T, W: Fn(Incoming) -> T> {
    out: Out<T, W>,
    closed: Arc<AtomicBool>,
    /// Handed to another owner (`rpm2 update`): the channel did not end.
    detached: bool,
}

impl<T, W: Fn(Incoming) -> T> Drop for EndGuard<T, W> {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if !self.detached {
            self.out.send(Incoming::Closed);
        }
    }
}

#[cfg(test)]
#[path = "channel_props.rs"]
mod props;
