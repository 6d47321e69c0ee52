//! Types shared by the rpm2 CLI, daemon and N-API addon — defined once.
//!
//! - [`spec`]: `AppSpec`, an app after the CLI resolved its config.
//! - [`info`]: `ProcessInfo`, a worker in pm2's `jlist` shape.
//! - [`rpc`]: the versioned request/response/event enums.
//! - [`frame`]: the length-prefixed JSON framing with a size cap.
//! - [`code`]: `ErrorCode`, the one list of stable error codes.
//! - [`scale`], [`signal`], [`target`]: arguments as users type them,
//!   parsed at the edge (CLI, addon) and checked again by serde.

pub mod code;
pub mod frame;
pub mod health;
pub mod info;
mod names;
pub mod rpc;
pub mod scale;
pub mod signal;
pub mod spec;
pub mod target;
mod text;

pub use health::{Probe, ProbeCheck};
pub use info::{Monit, Pm2Env, ProcessInfo, WorkerStatus};
pub use names::file_safe_name;
pub use rpc::{
    ActionReply, ErrorCode, Event, EventProcess, Request, Response, RpcError, SpecUpdate,
    PROTOCOL_VERSION,
};
pub use scale::ScaleCount;
pub use signal::SignalName;
pub use spec::{defaults, AppSpec, ExecMode, LogTarget, WatchSpec};
pub use target::Target;
