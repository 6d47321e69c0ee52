//! Node.js `child_process` IPC channel and cluster protocol, spoken from Rust, so the rpm2
//! daemon can be the cluster *primary* of unmodified Node workers.
//!
//! The protocol is described in the project's `node-cluster-protocol.md` notes. Layers:
//! * [`channel_pair`] / [`open`]: the socketpair, JSON-lines framing, fd passing with the
//!   handle rules ([`ChannelSender`], [`Incoming`]; handles are pipelined, see `queue.rs`);
//! * [`cluster`]: the `NODE_CLUSTER` messages as types and builders;
//! * [`handoff`]: the per-connection `newconn` lines as bytes (the hot path);
//! * [`sockets`]: listening sockets created the way Node's primary creates them, and the
//!   accept of a connection to hand off.

mod channel;
pub mod cluster;
pub mod codec;
pub mod handoff;
mod queue;
pub mod sockets;
mod sys;

pub use channel::{
    channel_pair, child_env, open, open_into, open_resumed, prepare_child_fd, ChannelClosed,
    ChannelSender, Detached, HandleType, Incoming,
};
pub use codec::is_internal;
pub use queue::MAX_HANDLES_IN_FLIGHT;
pub use sys::{set_cloexec, set_inheritable, set_nonblocking};
