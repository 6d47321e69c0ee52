//! rpm2's daemon: the supervisor that owns the process table, the Node
//! cluster primary and the RPC server. The home layout and the client are
//! in `rpm2-client`.
//! Shared wire types live in `rpm2-proto`; config loading in `rpm2-config`;
//! log files in `rpm2-logs`; Node's IPC channel in `rpm2-node-ipc`.

pub mod cluster;
pub mod daemon;
pub mod handover;
pub mod link;
pub mod log_time;
pub mod metrics;
pub mod metrics_http;
pub mod panics;
pub mod paths;
pub mod rotation;
pub mod rpc;
pub mod runtime;
pub mod supervisor;
pub mod systemd;
pub mod watch_ignore;
pub mod worker;

pub use paths::Home;

/// Generation number of a run (one OS process of a worker), unique for the
/// daemon's life: late events about a replaced process cannot touch its
/// successor.
pub type Gen = u64;
