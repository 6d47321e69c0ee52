//! Property tests of a channel's receive side with fds (issue 15): any
//! interleaving of lines, cuts and SCM_RIGHTS fds. Each `NODE_HANDLE`
//! line claims the oldest fd received so far (none: NACK, nothing
//! delivered); nothing panics; and every fd is closed in the end, claimed
//! or not. The fds are write ends of pipes whose read ends the test keeps:
//! a read end sees EOF only once every copy of its write end is closed.
//! The first test drives `Reader` read by read (exact model); the second
//! goes through a real socketpair and `open()`.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Incoming, Out, Reader, MAX_PENDING_FDS};
use crate::codec::LineDecoder;
use crate::queue::SendQueue;

/// One line a worker may send, and what the daemon makes of it.
#[derive(Debug, Clone)]
enum Token {
    /// `{"n":k}`: delivered as a message.
    User(u32),
    /// A `NODE_HANDLE` envelope around `{"h":k}`: delivered with the oldest fd, if any.
    Handle(u32),
    /// `NODE_HANDLE_ACK` / `NODE_HANDLE_NACK` with nothing in flight: nothing delivered.
    Ack,
    Nack,
    /// A `newconn` answer in Node's spelling.
    Accepted(u32, bool),
    /// `{` and bytes without `}` or a newline: never JSON, skipped.
    Garbage(Vec<u8>),
}

impl Token {
    fn line(&self) -> Vec<u8> {
        let mut line = match self {
            Token::User(k) => format!(r#"{{"n":{k}}}"#).into_bytes(),
            Token::Handle(k) => {
                format!(r#"{{"cmd":"NODE_HANDLE","type":"net.Native","msg":{{"h":{k}}}}}"#)
                    .into_bytes()
            }
            Token::Ack => br#"{"cmd":"NODE_HANDLE_ACK"}"#.to_vec(),
            Token::Nack => br#"{"cmd":"NODE_HANDLE_NACK"}"#.to_vec(),
            Token::Accepted(k, yes) => {
                format!(r#"{{"cmd":"NODE_CLUSTER","ack":{k},"accepted":{yes},"seq":1}}"#)
                    .into_bytes()
            }
            Token::Garbage(bytes) => {
                let mut g = b"{".to_vec();
                g.extend(bytes.iter().filter(|&&b| b != b'}' && b != b'\n'));
                g
            }
        };
        line.push(b'\n');
        line
    }
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => (0u32..1000).prop_map(Token::User),
        3 => (0u32..1000).prop_map(Token::Handle),
        1 => Just(Token::Ack),
        1 => Just(Token::Nack),
        1 => (0u32..1000, any::<bool>()).prop_map(|(k, b)| Token::Accepted(k, b)),
        1 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Token::Garbage),
    ]
}

/// What the daemon is expected to deliver, fds named by their pipe's index.
#[derive(Debug, PartialEq)]
enum Delivered {
    Message(Value, Option<usize>),
    Accepted(u64, bool),
}

/// A pipe; the write end is passed, the read end kept to see it closed.
fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    crate::sys::set_nonblocking(r.as_fd()).expect("O_NONBLOCK");
    (r, w)
}

fn inode(fd: &impl AsRawFd) -> u64 {
    nix::sys::stat::fstat(fd.as_raw_fd()).expect("fstat").st_ino
}

/// True once every copy of the pipe's write end is closed.
fn writers_gone(read_end: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    matches!(nix::unistd::read(read_end.as_raw_fd(), &mut b), Ok(0))
}

/// Which kept read end `fd` is the write end of.
fn which(fd: &OwnedFd, kept: &[OwnedFd]) -> usize {
    let ino = inode(fd);
    kept.iter()
        .position(|r| inode(r) == ino)
        .expect("a delivered fd is one of the test's pipes")
}

/// Cut `bytes` at `cuts` (modulo its length) into reads.
fn reads(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at {
        out.push(bytes[start..cut].to_vec());
        start = cut;
    }
    out.push(bytes[start..].to_vec());
    out
}

/// `PROPTEST_CASES` when set, else `default` (fewer than proptest's 256:
/// each case runs a tokio runtime).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #[test]
    fn handles_claim_the_oldest_fd_and_every_fd_is_closed(
        tokens in proptest::collection::vec(token(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        // Fds that come with each read (recycled over the reads).
        fds_per_read in proptest::collection::vec(0usize..4, 1..8),
        // Sometimes a flood of fds with no line, past the cap.
        flood in prop_oneof![4 => Just(0usize), 1 => Just(MAX_PENDING_FDS + 5)],
    ) {
        let bytes: Vec<u8> = tokens.iter().flat_map(Token::line).collect();
        let mut kept = Vec::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = Out { tx, wrap: |i: Incoming| i };
        let mut q = SendQueue::default();
        let mut reader = Reader { decoder: LineDecoder::new(), fds: VecDeque::new(), buf: Vec::new(), dropped_answers: 0 };
        // The model: which pipes wait, and what must come out.
        let mut waiting: VecDeque<usize> = VecDeque::new();
        let mut expected = Vec::new();
        let mut line_no = 0;
        let give = |n: usize, reader: &mut Reader, waiting: &mut VecDeque<usize>, kept: &mut Vec<OwnedFd>| {
            for _ in 0..n {
                let (r, w) = pipe();
                reader.fds.push_back(w);
                waiting.push_back(kept.len());
                kept.push(r);
            }
        };
        give(flood, &mut reader, &mut waiting, &mut kept);
        let mut delivered = Vec::new();
        for (i, chunk) in reads(&bytes, &cuts).into_iter().enumerate() {
            give(fds_per_read[i % fds_per_read.len()], &mut reader, &mut waiting, &mut kept);
            while waiting.len() > MAX_PENDING_FDS {
                waiting.pop_front();
            }
            // Lines this read completes, in order.
            for _ in chunk.iter().filter(|&&b| b == b'\n') {
                match &tokens[line_no] {
                    Token::User(k) => expected.push(Delivered::Message(json!({"n": k}), None)),
                    Token::Handle(k) => {
                        if let Some(pipe) = waiting.pop_front() {
                            expected.push(Delivered::Message(json!({"h": k}), Some(pipe)));
                        }
                    }
                    Token::Accepted(k, yes) => expected.push(Delivered::Accepted(u64::from(*k), *yes)),
                    Token::Ack | Token::Nack | Token::Garbage(_) => {}
                }
                line_no += 1;
            }
            reader.buf.clone_from(&chunk);
            reader.process(chunk.len(), &mut q, &out);
            while let Ok(incoming) = rx.try_recv() {
                delivered.push(match incoming {
                    Incoming::Message { msg, handle } => {
                        let pipe = handle.as_ref().map(|fd| which(fd, &kept));
                        // Dropping the handle closes the daemon's copy.
                        Delivered::Message(msg, pipe)
                    }
                    Incoming::Accepted { ack, accepted } => Delivered::Accepted(ack, accepted),
                    Incoming::Closed => unreachable!("process never sends Closed"),
                });
            }
        }
        prop_assert_eq!(delivered, expected);
        // Fds nobody claimed are closed with the channel.
        prop_assert_eq!(reader.fds.len(), waiting.len());
        drop(reader);
        for (i, r) in kept.iter().enumerate() {
            prop_assert!(writers_gone(r), "fd of pipe {} is still open", i);
        }
    }
}

/// One write from the worker's side: bytes, with an fd or not.
#[derive(Debug, Clone)]
struct Send {
    bytes: Vec<u8>,
    with_fd: bool,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    /// Through a real socket, where the kernel decides the read boundaries:
    /// no panic (the channel ends with `Closed`), messages in order, each
    /// handle with an fd, and no fd left open at the end.
    #[test]
    fn real_socket_any_interleaving_of_fds_and_bytes(
        tokens in proptest::collection::vec(token(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        fd_at in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let bytes: Vec<u8> = tokens.iter().flat_map(Token::line).collect();
        let sends: Vec<Send> = reads(&bytes, &cuts)
            .into_iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, bytes)| Send { bytes, with_fd: fd_at[i % fd_at.len()] })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (delivered, kept) = rt.block_on(async {
            let (parent, child) = crate::channel_pair().unwrap();
            let (_sender, mut rx) = crate::open(parent).unwrap();
            let mut kept = Vec::new();
            for s in &sends {
                let iov = [std::io::IoSlice::new(&s.bytes)];
                let (r, w) = pipe();
                let raw = [w.as_raw_fd()];
                let cmsg = [ControlMessage::ScmRights(&raw)];
                let cmsgs: &[ControlMessage<'_>] = if s.with_fd { kept.push(r); &cmsg } else { &[] };
                let n = sendmsg::<()>(child.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).unwrap();
                assert_eq!(n, s.bytes.len());
                // `w` is closed here: only the copy in flight remains.
            }
            // EOF for the channel; our read side stays open for its ACKs
            // (closing it would end the channel early, on EPIPE).
            nix::sys::socket::shutdown(child.as_raw_fd(), nix::sys::socket::Shutdown::Write).unwrap();
            let mut delivered = Vec::new();
            while let Some(incoming) = rx.recv().await {
                let closed = matches!(incoming, Incoming::Closed);
                delivered.push(incoming);
                if closed {
                    break;
                }
            }
            drop(child);
            (delivered, kept)
        });
        prop_assert!(matches!(delivered.last(), Some(Incoming::Closed)), "no Closed: the task died");
        let mut handles_seen = Vec::new();
        let mut others = Vec::new();
        for d in &delivered {
            match d {
                Incoming::Message { msg, handle: Some(fd) } => {
                    which(fd, &kept);
                    handles_seen.push(msg.clone());
                }
                Incoming::Message { msg, handle: None } => others.push(Delivered::Message(msg.clone(), None)),
                Incoming::Accepted { ack, accepted } => others.push(Delivered::Accepted(*ack, *accepted)),
                Incoming::Closed => {}
            }
        }
        // Everything without an fd arrives whatever the read boundaries.
        let expected_others: Vec<Delivered> = tokens.iter().filter_map(|t| match t {
            Token::User(k) => Some(Delivered::Message(json!({"n": k}), None)),
            Token::Accepted(k, yes) => Some(Delivered::Accepted(u64::from(*k), *yes)),
            _ => None,
        }).collect();
        prop_assert_eq!(others, expected_others);
        // Handles: an in-order subset of the handle lines, at most one per fd.
        let mut handle_lines = tokens.iter().filter_map(|t| match t {
            Token::Handle(k) => Some(json!({"h": k})),
            _ => None,
        });
        for h in &handles_seen {
            prop_assert!(handle_lines.any(|l| &l == h), "handle {} out of order", h);
        }
        prop_assert!(handles_seen.len() <= kept.len());
        drop(delivered);
        for (i, r) in kept.iter().enumerate() {
            prop_assert!(writers_gone(r), "fd of pipe {} is still open", i);
        }
    }
}
