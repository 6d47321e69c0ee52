//! The writer's queue: Node's handle rules (spec §2.3, steps 3-4), with
//! handles pipelined where that is safe.
//!
//! Three stages:
//! * `wire`: bytes committed to the stream, in order, possibly partly written already;
//! * `in_flight`: handles sent (or being sent), kept until the worker's ACK/NACK, in order;
//! * `held`: messages that may not go yet; they wait, in order.
//!
//! Node's own sender keeps one handle in flight. The receiver does not need
//! that: it matches each `NODE_HANDLE` line with the fd of the read that
//! brought it, and a Unix stream read never goes past a segment that
//! carried fds (`child_process.js`: "SCM_RIGHTS messages don't get
//! coalesced"). So several handles may be in flight as long as each line
//! goes out whole in the `sendmsg` that carries its fd. If a handle line
//! ever needs a second `sendmsg` (a full socket buffer), its tail could
//! share a read with the next handle's segment; from then on we wait for
//! every ACK before sending another handle, as Node does. Plain messages
//! still wait for all ACKs, so a re-sent (NACKed) handle never lands after
//! a message that was sent after it.
//!
//! ACK/NACK replies we generate ourselves bypass `held` (as in Node), otherwise two processes
//! that both have a handle in flight would wait on each other forever.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::sys;

/// How many times a NACKed handle is sent again before it is dropped.
pub const MAX_HANDLE_RETRANSMISSIONS: u8 = 3;

/// Handles sent ahead of their ACKs: a busy worker then takes several
/// connections per turn of its event loop instead of one.
pub const MAX_HANDLES_IN_FLIGHT: usize = 8;

/// Our own ACK/NACK lines waiting to be written. A worker reads its channel
/// all the time, so a few at most wait; more means it sends `NODE_HANDLE`
/// lines (each answered) and does not read: further answers are dropped,
/// not kept in memory.
pub const MAX_CONTROL_IN_WIRE: usize = 1024;

/// A message waiting to be written: one full line, plus the fd that goes with it.
#[derive(Debug)]
pub struct Outgoing {
    pub line: Vec<u8>,
    /// Shared so the caller may keep the fd too (the primary keeps each
    /// connection until the worker accepts it) without a `dup`.
    pub handle: Option<Arc<OwnedFd>>,
}

#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    off: usize,
    /// Attached to the first `sendmsg` of this chunk only.
    fd: Option<Arc<OwnedFd>>,
    /// This chunk is a handle line (its fd may be gone already).
    handle: bool,
    /// This chunk is one of our ACK/NACK lines.
    control: bool,
}

#[derive(Debug)]
struct InFlight {
    line: Vec<u8>,
    fd: Arc<OwnedFd>,
    resends: u8,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct SendQueue {
    wire: VecDeque<Chunk>,
    held: VecDeque<Outgoing>,
    in_flight: VecDeque<InFlight>,
    /// A handle line is in `wire`, not fully written yet.
    handle_in_wire: bool,
    /// A handle line took more than one `sendmsg` (or was NACKed): no more
    /// handles until every one in flight is acknowledged.
    strict: bool,
    /// ACK/NACK lines in `wire`.
    control_in_wire: usize,
}

impl SendQueue {
    /// Queues a message, obeying the handle rules.
    pub fn submit(&mut self, out: Outgoing) {
        if self.held.is_empty() && self.may_commit(&out) {
            self.commit(out);
        } else {
            self.held.push_back(out);
        }
    }

    fn may_commit(&self, out: &Outgoing) -> bool {
        if out.handle.is_some() {
            !self.handle_in_wire && !self.strict && self.in_flight.len() < MAX_HANDLES_IN_FLIGHT
        } else {
            self.in_flight.is_empty()
        }
    }

    /// Queues one of our own ACK/NACK lines (never held). Returns false,
    /// queueing nothing, when `MAX_CONTROL_IN_WIRE` already wait (the
    /// worker does not read its channel).
    pub fn push_control(&mut self, line: &[u8]) -> bool {
        if self.control_in_wire >= MAX_CONTROL_IN_WIRE {
            return false;
        }
        self.control_in_wire += 1;
        self.wire.push_back(Chunk {
            bytes: line.to_vec(),
            off: 0,
            fd: None,
            handle: false,
            control: true,
        });
        true
    }

    fn commit(&mut self, out: Outgoing) {
        let fd = out.handle;
        let handle = fd.is_some();
        if let Some(fd) = &fd {
            self.in_flight.push_back(InFlight {
                line: out.line.clone(),
                fd: Arc::clone(fd),
                resends: 0,
            });
            self.handle_in_wire = true;
        }
        self.wire.push_back(Chunk {
            bytes: out.line,
            off: 0,
            fd,
            handle,
            control: false,
        });
    }

    fn release_held(&mut self) {
        while let Some(next) = self.held.front() {
            if !self.may_commit(next) {
                break;
            }
            if let Some(out) = self.held.pop_front() {
                self.commit(out);
            }
        }
    }

    /// The worker received the oldest handle in flight.
    pub fn on_ack(&mut self) {
        if self.in_flight.pop_front().is_none() {
            tracing::debug!("node ipc: NODE_HANDLE_ACK with no handle in flight");
        }
        if self.in_flight.is_empty() {
            self.strict = false;
        }
        self.release_held();
    }

    /// The worker got the oldest handle's line without its fd: send it again.
    pub fn on_nack(&mut self) {
        match self.in_flight.front_mut() {
            Some(f) if f.resends < MAX_HANDLE_RETRANSMISSIONS => {
                f.resends += 1;
                let chunk = Chunk {
                    bytes: f.line.clone(),
                    off: 0,
                    fd: Some(Arc::clone(&f.fd)),
                    handle: true,
                    control: false,
                };
                self.wire.push_back(chunk);
                self.handle_in_wire = true;
                // Something went wrong on this stream: play it safe.
                self.strict = true;
            }
            Some(f) => {
                tracing::warn!(
                    line = %String::from_utf8_lossy(&f.line).trim_end(),
                    "node ipc: handle not received after {MAX_HANDLE_RETRANSMISSIONS} re-sends, dropping it"
                );
                self.in_flight.pop_front();
                if self.in_flight.is_empty() {
                    self.strict = false;
                }
                self.release_held();
            }
            None => {
                tracing::debug!("node ipc: NODE_HANDLE_NACK with no handle in flight");
                self.release_held();
            }
        }
    }

    pub fn wants_write(&self) -> bool {
        !self.wire.is_empty()
    }

    pub fn is_drained(&self) -> bool {
        self.wire.is_empty() && self.held.is_empty()
    }

    /// Writes as much as the socket takes. A handle line goes out in the
    /// `sendmsg` that carries its fd; if that takes more than one call, the
    /// queue turns strict (see the module docs).
    pub fn write_to(&mut self, sock: RawFd) -> io::Result<()> {
        while let Some(chunk) = self.wire.front_mut() {
            let pass = chunk.fd.as_ref().map(|f| f.as_raw_fd());
            let n = sys::send_with_fd(sock, &chunk.bytes[chunk.off..], pass)?;
            chunk.fd = None;
            chunk.off += n;
            if chunk.off < chunk.bytes.len() {
                if chunk.handle {
                    self.strict = true;
                }
                continue;
            }
            let (was_handle, was_control) = (chunk.handle, chunk.control);
            self.wire.pop_front();
            if was_control {
                self.control_in_wire -= 1;
            }
            if was_handle {
                self.handle_in_wire = false;
                self.release_held();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn out(s: &str, fd: bool) -> Outgoing {
        let handle = fd.then(|| Arc::new(OwnedFd::from(UnixStream::pair().unwrap().0)));
        Outgoing {
            line: format!("{s}\n").into_bytes(),
            handle,
        }
    }

    /// Pretend everything in `wire` was written whole; return what it was.
    fn flush(q: &mut SendQueue) -> Vec<(String, bool)> {
        let mut sent = Vec::new();
        while let Some(c) = q.wire.pop_front() {
            if c.control {
                q.control_in_wire -= 1;
            }
            sent.push((
                String::from_utf8_lossy(&c.bytes).trim().to_string(),
                c.fd.is_some(),
            ));
            if c.handle {
                q.handle_in_wire = false;
                q.release_held();
            }
        }
        sent
    }

    #[test]
    fn answers_the_worker_does_not_read_are_capped() {
        let mut q = SendQueue::default();
        for _ in 0..MAX_CONTROL_IN_WIRE {
            assert!(q.push_control(b"NACK\n"));
        }
        assert!(!q.push_control(b"NACK\n"));
        assert_eq!(q.wire.len(), MAX_CONTROL_IN_WIRE);
        // Once the worker reads them, answers are queued again.
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 5 * MAX_CONTROL_IN_WIRE];
            std::io::Read::read_exact(&mut theirs, &mut got).unwrap();
            got
        });
        q.write_to(ours.as_raw_fd()).unwrap();
        assert_eq!(q.control_in_wire, 0);
        assert!(reader.join().unwrap().chunks(5).all(|c| c == b"NACK\n"));
        assert!(q.push_control(b"NACK\n"));
    }

    #[test]
    fn plain_messages_wait_for_every_ack() {
        let mut q = SendQueue::default();
        q.submit(out("a", false));
        q.submit(out("h1", true));
        q.submit(out("b", false));
        q.submit(out("h2", true));
        q.submit(out("c", false));
        q.push_control(b"ACK\n");
        assert_eq!(
            flush(&mut q),
            [
                ("a".into(), false),
                ("h1".into(), true),
                ("ACK".into(), false)
            ]
        );
        q.on_ack();
        assert_eq!(flush(&mut q), [("b".into(), false), ("h2".into(), true)]);
        q.on_ack();
        assert_eq!(flush(&mut q), [("c".into(), false)]);
        assert!(q.is_drained());
    }

    #[test]
    fn handles_are_pipelined_one_line_at_a_time() {
        let mut q = SendQueue::default();
        for i in 0..MAX_HANDLES_IN_FLIGHT + 2 {
            q.submit(out(&format!("h{i}"), true));
        }
        // Only one handle line in the wire at a time…
        assert_eq!(q.wire.len(), 1);
        // …but once written whole, the next goes without waiting for ACKs.
        let sent = flush(&mut q);
        assert_eq!(sent.len(), MAX_HANDLES_IN_FLIGHT);
        assert!(sent.iter().all(|(_, fd)| *fd));
        assert_eq!(q.in_flight.len(), MAX_HANDLES_IN_FLIGHT);
        q.on_ack();
        q.on_ack();
        assert_eq!(flush(&mut q).len(), 2);
    }

    #[test]
    fn a_handle_split_over_two_writes_makes_the_queue_strict() {
        let mut q = SendQueue::default();
        q.submit(out("h1", true));
        q.strict = true; // as write_to does on a partial handle write
        let _ = flush(&mut q);
        q.submit(out("h2", true));
        assert!(q.wire.is_empty(), "h2 must wait for h1's ACK");
        q.on_ack();
        assert_eq!(flush(&mut q), [("h2".into(), true)]);
    }

    #[test]
    fn nack_resends_three_times_then_drops() {
        let mut q = SendQueue::default();
        q.submit(out("h", true));
        q.submit(out("after", false));
        let _ = flush(&mut q);
        for _ in 0..MAX_HANDLE_RETRANSMISSIONS {
            q.on_nack();
            assert_eq!(flush(&mut q), [("h".into(), true)]);
        }
        q.on_nack();
        assert_eq!(flush(&mut q), [("after".into(), false)]);
        assert!(q.in_flight.is_empty());
    }
}
