//! The writer's queue: Node's "one handle in flight" rule (spec §2.3, step 3-4).
//!
//! Three stages:
//! * `wire`: bytes committed to the stream, in order, possibly partly written already;
//! * `in_flight`: the last handle sent, kept until the worker's ACK/NACK (for re-sending);
//! * `held`: messages submitted while a handle is in flight; they wait, in order, for the ACK.
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

/// A message waiting to be written: one full line, plus the fd that goes with it.
#[derive(Debug)]
pub struct Outgoing {
    pub line: Vec<u8>,
    pub handle: Option<OwnedFd>,
}

#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    off: usize,
    /// Attached to the first `sendmsg` of this chunk only.
    fd: Option<Arc<OwnedFd>>,
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
    in_flight: Option<InFlight>,
}

impl SendQueue {
    /// Queues a message, obeying the one-handle-in-flight rule.
    pub fn submit(&mut self, out: Outgoing) {
        if self.in_flight.is_some() {
            self.held.push_back(out);
        } else {
            self.commit(out);
        }
    }

    /// Queues one of our own `NODE_HANDLE_ACK`/`NACK` lines, never held back.
    pub fn push_control(&mut self, line: &[u8]) {
        self.wire.push_back(Chunk {
            bytes: line.to_vec(),
            off: 0,
            fd: None,
        });
    }

    fn commit(&mut self, out: Outgoing) {
        let fd = out.handle.map(Arc::new);
        if let Some(fd) = &fd {
            self.in_flight = Some(InFlight {
                line: out.line.clone(),
                fd: Arc::clone(fd),
                resends: 0,
            });
        }
        self.wire.push_back(Chunk {
            bytes: out.line,
            off: 0,
            fd,
        });
    }

    /// Moves held messages to the wire until the next handle (or the end).
    fn release_held(&mut self) {
        while self.in_flight.is_none() {
            match self.held.pop_front() {
                Some(out) => self.commit(out),
                None => break,
            }
        }
    }

    /// The worker received the handle: our copy can be closed (once written) and the held
    /// messages move on.
    pub fn on_ack(&mut self) {
        if self.in_flight.take().is_none() {
            tracing::debug!("node ipc: NODE_HANDLE_ACK with no handle in flight");
        }
        self.release_held();
    }

    /// The worker got the line without its fd: send it again, up to 3 times, then drop it.
    pub fn on_nack(&mut self) {
        match &mut self.in_flight {
            Some(f) if f.resends < MAX_HANDLE_RETRANSMISSIONS => {
                f.resends += 1;
                let chunk = Chunk {
                    bytes: f.line.clone(),
                    off: 0,
                    fd: Some(Arc::clone(&f.fd)),
                };
                self.wire.push_back(chunk);
            }
            Some(f) => {
                tracing::warn!(
                    line = %String::from_utf8_lossy(&f.line).trim_end(),
                    "node ipc: handle not received after {MAX_HANDLE_RETRANSMISSIONS} re-sends, dropping it"
                );
                self.in_flight = None;
                self.release_held();
            }
            None => {
                tracing::debug!("node ipc: NODE_HANDLE_NACK with no handle in flight");
                self.release_held();
            }
        }
    }

    /// True when there are bytes to write now.
    pub fn wants_write(&self) -> bool {
        !self.wire.is_empty()
    }

    /// True when nothing is left to write or waiting to be written (a handle may still be
    /// waiting for its ACK; its bytes are already in the kernel).
    pub fn is_drained(&self) -> bool {
        self.wire.is_empty() && self.held.is_empty()
    }

    /// Writes as much as the socket takes. Returns `Err(WouldBlock)` when it is full. A chunk
    /// with an fd is sent in one `sendmsg` with it; if only part of it goes, the rest follows
    /// without the fd (the kernel already attached it to the first segment).
    pub fn write_to(&mut self, sock: RawFd) -> io::Result<()> {
        while let Some(chunk) = self.wire.front_mut() {
            let pass = chunk.fd.as_ref().map(|f| f.as_raw_fd());
            let n = sys::send_with_fd(sock, &chunk.bytes[chunk.off..], pass)?;
            chunk.fd = None;
            chunk.off += n;
            if chunk.off >= chunk.bytes.len() {
                self.wire.pop_front();
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
        let handle = fd.then(|| OwnedFd::from(UnixStream::pair().unwrap().0));
        Outgoing {
            line: format!("{s}\n").into_bytes(),
            handle,
        }
    }

    fn wire(q: &SendQueue) -> Vec<(String, bool)> {
        q.wire
            .iter()
            .map(|c| {
                (
                    String::from_utf8_lossy(&c.bytes).trim().to_string(),
                    c.fd.is_some(),
                )
            })
            .collect()
    }

    #[test]
    fn holds_everything_behind_a_handle_until_ack() {
        let mut q = SendQueue::default();
        q.submit(out("a", false));
        q.submit(out("h1", true));
        q.submit(out("b", false));
        q.submit(out("h2", true));
        q.submit(out("c", false));
        q.push_control(b"ACK\n");
        assert_eq!(
            wire(&q),
            [
                ("a".into(), false),
                ("h1".into(), true),
                ("ACK".into(), false)
            ]
        );
        q.wire.clear();
        q.on_ack();
        assert_eq!(wire(&q), [("b".into(), false), ("h2".into(), true)]);
        q.wire.clear();
        q.on_ack();
        assert_eq!(wire(&q), [("c".into(), false)]);
        q.wire.clear();
        assert!(q.is_drained());
    }

    #[test]
    fn nack_resends_three_times_then_drops() {
        let mut q = SendQueue::default();
        q.submit(out("h", true));
        q.submit(out("after", false));
        q.wire.clear();
        for _ in 0..MAX_HANDLE_RETRANSMISSIONS {
            q.on_nack();
            assert_eq!(wire(&q), [("h".into(), true)]);
            q.wire.clear();
        }
        q.on_nack();
        assert_eq!(wire(&q), [("after".into(), false)]);
        assert!(q.in_flight.is_none());
    }
}
