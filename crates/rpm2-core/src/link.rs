//! A worker's IPC channel as the supervisor and the cluster primary use it.
//! In the daemon it is `rpm2_node_ipc::ChannelSender`; lifecycle and routing
//! tests put a recording fake in its place, so they need no process.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rpm2_node_ipc::{ChannelClosed, ChannelSender, HandleType};
use serde_json::Value;

/// What the daemon sends to one worker.
pub trait Link: Send + Sync {
    /// One JSON message (cluster replies, `disconnect`, `'shutdown'`, user data).
    fn send(&self, msg: Value) -> Result<(), ChannelClosed>;
    /// A message with an fd the channel owns from now on (a shared socket).
    fn send_handle(
        &self,
        msg: Value,
        handle_type: HandleType,
        fd: OwnedFd,
    ) -> Result<(), ChannelClosed>;
    /// A ready-made `newconn` line with a connection the caller keeps a share of.
    fn send_handle_line(&self, line: Vec<u8>, fd: Arc<OwnedFd>) -> Result<(), ChannelClosed>;
    /// True once the channel ended (the worker closed it or exited).
    fn is_closed(&self) -> bool;
    /// Take the channel off its task, open (`rpm2 update`).
    fn detach(&self) -> Option<tokio::sync::oneshot::Receiver<rpm2_node_ipc::Detached>> {
        None
    }
}

impl Link for ChannelSender {
    fn send(&self, msg: Value) -> Result<(), ChannelClosed> {
        ChannelSender::send(self, msg)
    }

    fn send_handle(
        &self,
        msg: Value,
        handle_type: HandleType,
        fd: OwnedFd,
    ) -> Result<(), ChannelClosed> {
        ChannelSender::send_handle(self, msg, handle_type, fd)
    }

    fn send_handle_line(&self, line: Vec<u8>, fd: Arc<OwnedFd>) -> Result<(), ChannelClosed> {
        ChannelSender::send_handle_line(self, line, fd)
    }

    fn is_closed(&self) -> bool {
        ChannelSender::is_closed(self)
    }

    fn detach(&self) -> Option<tokio::sync::oneshot::Receiver<rpm2_node_ipc::Detached>> {
        ChannelSender::detach(self)
    }
}

/// A shared handle on a worker's channel.
pub type SharedLink = Arc<dyn Link>;

#[cfg(test)]
pub mod fake {
    //! A link that records what was sent, for tests without processes.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::{Arc, ChannelClosed, HandleType, Link, OwnedFd, Value};

    /// Something the daemon sent to a fake worker.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Sent {
        Message(Value),
        Handle(Value),
        /// A hand-off line (its text).
        Conn(String),
    }

    #[derive(Default)]
    pub struct FakeLink {
        pub sent: Mutex<Vec<Sent>>,
        pub closed: AtomicBool,
    }

    impl FakeLink {
        #[must_use]
        pub fn new() -> Arc<Self> {
            Arc::new(Self::default())
        }

        pub fn close(&self) {
            self.closed.store(true, Ordering::SeqCst);
        }

        #[must_use]
        pub fn sent(&self) -> Vec<Sent> {
            self.sent.lock().map(|s| s.clone()).unwrap_or_default()
        }

        fn push(&self, s: Sent) -> Result<(), ChannelClosed> {
            if self.is_closed() {
                return Err(ChannelClosed);
            }
            if let Ok(mut sent) = self.sent.lock() {
                sent.push(s);
            }
            Ok(())
        }
    }

    impl Link for FakeLink {
        fn send(&self, msg: Value) -> Result<(), ChannelClosed> {
            self.push(Sent::Message(msg))
        }
        fn send_handle(&self, msg: Value, _: HandleType, _: OwnedFd) -> Result<(), ChannelClosed> {
            self.push(Sent::Handle(msg))
        }
        fn send_handle_line(&self, line: Vec<u8>, _: Arc<OwnedFd>) -> Result<(), ChannelClosed> {
            self.push(Sent::Conn(String::from_utf8_lossy(&line).into_owned()))
        }
        fn is_closed(&self) -> bool {
            self.closed.load(Ordering::SeqCst)
        }
    }
}
