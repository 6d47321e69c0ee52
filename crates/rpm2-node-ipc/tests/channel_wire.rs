//! The channel against a real socketpair whose other end is driven by hand, to check exactly
//! what goes on the wire: ACK/NACK handling, re-sends, queue ordering, close and EOF.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use rpm2_node_ipc::{channel_pair, open, ChannelSender, HandleType, Incoming};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

const STEP: Duration = Duration::from_secs(5);

/// The hand-driven "worker" end (blocking, with a read timeout).
struct Peer {
    sock: UnixStream,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

impl Peer {
    fn read_more(&mut self) -> std::io::Result<usize> {
        let mut data = [0u8; 65536];
        let mut cmsg = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: fresh fds from the kernel, owned by nobody else.
                self.fds
                    .extend(fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
            }
        }
        let n = msg.bytes;
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Next line, with its fd if it is a handle line.
    fn line(&mut self) -> (Value, Option<OwnedFd>) {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let v: Value = serde_json::from_slice(&line[..i]).expect("valid JSON line");
                // Like Node's receiver: queued fds are matched to NODE_HANDLE lines.
                let fd = if v["cmd"] == "NODE_HANDLE" {
                    self.fds.pop_front()
                } else {
                    None
                };
                return (v, fd);
            }
            let n = self.read_more().expect("peer read");
            assert!(n > 0, "unexpected EOF");
        }
    }

    /// Next line, which must come without an fd.
    fn plain(&mut self) -> Value {
        let (v, fd) = self.line();
        assert!(fd.is_none(), "unexpected fd with {v}");
        v
    }

    /// Asserts nothing more arrives within a short time, and no stray fd came.
    fn quiet(&mut self) {
        assert!(self.fds.is_empty(), "fds not matched to a NODE_HANDLE line");
        self.sock
            .set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let r = self.read_more();
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "expected no data, got {r:?} buf={:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.sock.set_read_timeout(Some(STEP)).unwrap();
    }

    fn eof(&mut self) {
        assert!(self.buf.is_empty(), "unread data before EOF");
        assert_eq!(self.read_more().expect("read"), 0, "expected EOF");
    }

    fn write(&mut self, s: &str) {
        self.sock.write_all(s.as_bytes()).unwrap();
    }

    fn write_with_fd(&mut self, s: &str, fd: RawFd) {
        let fds = [fd];
        let n = sendmsg::<()>(
            self.sock.as_raw_fd(),
            &[IoSlice::new(s.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert_eq!(n, s.len());
    }
}

fn setup() -> (ChannelSender, UnboundedReceiver<Incoming>, Peer) {
    let (parent, child) = channel_pair().unwrap();
    let (tx, rx) = open(parent).unwrap();
    let sock = UnixStream::from(child);
    sock.set_read_timeout(Some(STEP)).unwrap();
    (
        tx,
        rx,
        Peer {
            sock,
            buf: Vec::new(),
            fds: VecDeque::new(),
        },
    )
}

async fn next(rx: &mut UnboundedReceiver<Incoming>) -> Incoming {
    tokio::time::timeout(STEP, rx.recv())
        .await
        .expect("timeout")
        .expect("receiver ended")
}

fn a_socket() -> OwnedFd {
    OwnedFd::from(UnixStream::pair().unwrap().0)
}

fn flags(fd: &OwnedFd) -> (bool, bool) {
    let raw = fd.as_fd().as_raw_fd();
    let fl = OFlag::from_bits_retain(fcntl(raw, FcntlArg::F_GETFL).unwrap());
    let fdfl = FdFlag::from_bits_retain(fcntl(raw, FcntlArg::F_GETFD).unwrap());
    (
        fl.contains(OFlag::O_NONBLOCK),
        fdfl.contains(FdFlag::FD_CLOEXEC),
    )
}

const ACK: &str = "{\"cmd\":\"NODE_HANDLE_ACK\"}\n";
const NACK: &str = "{\"cmd\":\"NODE_HANDLE_NACK\"}\n";

// multi_thread: the test body blocks on the peer socket while the channel task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_waits_for_ack_and_is_resent_on_nack() {
    let (tx, _rx, mut peer) = setup();
    tx.send(json!("before")).unwrap();
    tx.send_handle(json!({"n": 1}), HandleType::NetNative, a_socket())
        .unwrap();
    tx.send(json!({"after": 1})).unwrap();
    tx.send_handle(json!({"n": 2}), HandleType::DgramNative, a_socket())
        .unwrap();

    assert_eq!(peer.plain(), json!("before"));
    let (v, fd) = peer.line();
    assert_eq!(
        v,
        json!({"cmd": "NODE_HANDLE", "type": "net.Native", "msg": {"n": 1}})
    );
    let fd = fd.expect("fd with the handle line");
    assert!(flags(&fd).0, "passed fds must be O_NONBLOCK");
    peer.quiet(); // everything else is held until the ACK

    for _ in 0..3 {
        peer.write(NACK);
        let (again, fd) = peer.line();
        assert_eq!(again, v);
        assert!(fd.is_some(), "re-sent with its fd");
        peer.quiet();
    }
    peer.write(NACK); // 4th: dropped, the queue moves on
    assert_eq!(peer.plain(), json!({"after": 1}));
    let (v2, fd2) = peer.line();
    assert_eq!(v2["type"], "dgram.Native");
    assert_eq!(v2["msg"], json!({"n": 2}));
    assert!(fd2.is_some());
    peer.quiet();
    peer.write(ACK);
    tx.send(json!("last")).unwrap();
    assert_eq!(peer.plain(), json!("last"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_handles_are_acked_or_nacked() {
    let (tx, mut rx, mut peer) = setup();
    let (mine, _keep) = UnixStream::pair().unwrap();
    // Two messages in one write, the handle line carrying the fd.
    peer.write_with_fd(
        "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"cmd\":\"NODE_CLUSTER\",\"act\":\"x\",\"seq\":5}}\n\"plain\"\n",
        mine.as_raw_fd(),
    );
    drop(mine);
    match next(&mut rx).await {
        Incoming::Message {
            msg,
            handle: Some(fd),
        } => {
            assert_eq!(msg, json!({"cmd":"NODE_CLUSTER","act":"x","seq":5}));
            assert!(flags(&fd).1, "received fds are CLOEXEC");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(next(&mut rx).await, Incoming::Message { msg, handle: None } if msg == json!("plain"))
    );
    assert_eq!(peer.plain(), json!({"cmd":"NODE_HANDLE_ACK"}));

    // A handle line without its fd: NACK, nothing delivered. ACK/NACK lines and garbage from
    // the peer are not delivered either.
    peer.write("{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{}}\n");
    assert_eq!(peer.plain(), json!({"cmd":"NODE_HANDLE_NACK"}));
    peer.write("{\"cmd\":\"NODE_HANDLE_ACK\"}\nnot json\n{\"cmd\":\"NODE_HANDLE_NACK\"}\n{\"a\":\"\u{e9}\"}\n");
    assert!(
        matches!(next(&mut rx).await, Incoming::Message { msg, .. } if msg == json!({"a":"\u{e9}"}))
    );
    drop(tx);
}

/// Linux ends a read at a segment that carries fds, so that read is short
/// with more queued behind it: the channel must read on, not wait for the
/// peer's next write. Both segments are queued before the channel exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_read_ending_at_an_fd_does_not_strand_what_follows() {
    let (parent, child) = channel_pair().unwrap();
    let mut peer = Peer {
        sock: UnixStream::from(child),
        buf: Vec::new(),
        fds: VecDeque::new(),
    };
    let (s, _keep) = UnixStream::pair().unwrap();
    peer.write_with_fd(
        "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":\"h\"}\n",
        s.as_raw_fd(),
    );
    peer.write("\"after the fd\"\n");
    let (_tx, mut rx) = open(parent).unwrap();
    assert!(matches!(
        next(&mut rx).await,
        Incoming::Message {
            handle: Some(_),
            ..
        }
    ));
    assert!(
        matches!(next(&mut rx).await, Incoming::Message { msg, handle: None } if msg == json!("after the fd"))
    );
}

/// Our ACK for the peer's handle must not wait behind our own un-ACKed handle, or two sides
/// that both pass handles would deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_acks_bypass_the_held_queue() {
    let (tx, mut rx, mut peer) = setup();
    tx.send_handle(json!("h"), HandleType::NetNative, a_socket())
        .unwrap();
    tx.send(json!("held")).unwrap();
    let (_, fd) = peer.line();
    assert!(fd.is_some());
    let (s, _keep) = UnixStream::pair().unwrap();
    peer.write_with_fd(
        "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":\"x\"}\n",
        s.as_raw_fd(),
    );
    assert_eq!(peer.plain(), json!({"cmd":"NODE_HANDLE_ACK"}));
    assert!(matches!(
        next(&mut rx).await,
        Incoming::Message {
            handle: Some(_),
            ..
        }
    ));
    peer.quiet();
    peer.write(ACK);
    assert_eq!(peer.plain(), json!("held"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_then_eof() {
    let (tx, mut rx, mut peer) = setup();
    // More than the socket buffer holds, so the writer meets EAGAIN before close.
    let chunk = "y".repeat(10_000);
    for i in 0..100 {
        tx.send(json!({"i": i, "pad": chunk})).unwrap();
    }
    tx.send_handle(json!("h"), HandleType::NetNative, a_socket())
        .unwrap();
    tx.send(json!("held until ack")).unwrap();
    tx.close();
    assert!(tx.send(json!("too late")).is_err());
    for i in 0..100 {
        assert_eq!(peer.line().0["i"], i);
    }
    assert!(peer.line().1.is_some());
    peer.quiet(); // close waits for the held message, which waits for the ACK
    peer.write(ACK);
    assert_eq!(peer.plain(), json!("held until ack"));
    peer.eof();
    assert!(matches!(next(&mut rx).await, Incoming::Closed));
    assert!(rx.recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_eof_gives_closed_and_dropping_both_sides_closes() {
    let (tx, mut rx, peer) = setup();
    drop(peer);
    assert!(matches!(next(&mut rx).await, Incoming::Closed));
    assert!(rx.recv().await.is_none());
    assert!(tx.is_closed());
    assert!(tx.send(json!(1)).is_err());

    let (tx, rx, mut peer) = setup();
    drop(tx);
    drop(rx);
    peer.eof();
}
