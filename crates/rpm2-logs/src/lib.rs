//! Worker logs: the daemon side (pumps from a worker's pipes into log files
//! and onto the event bus) and the CLI side (`tail_lines` for `rpm2 logs`).
//!
//! Design constraints, all from pm2 users' experience with pm2's own logger:
//!
//! * The daemon relays every byte every app writes, so the hot path must be
//!   cheap: large reads paced to a few dozen a second for chatty apps (see
//!   `fd_pump.rs`), no per-line work in raw mode, and one `write(2)` per
//!   batch of queued reads rather than one per line.
//! * A slow disk must never stall a worker (a full pipe blocks the app's
//!   `console.log`), so pumps hand buffers to a per-file writer task through
//!   an unbounded queue; the writer coalesces whatever piled up.
//! * Several workers may share one file (`merge_logs`, `log_file`), so
//!   formatted modes only ever write whole lines, keeping the file readable.
//! * Rotation is built in (`rotate`): a writer renames its file at a line
//!   end once it reaches the configured size, and gzip and retention run
//!   on a background thread.
//! * `logrotate` renames files; `reopen_all` (pm2's `reloadLogs`, SIGUSR2)
//!   makes every writer open its path again.
//! * Files are opened with `O_NOFOLLOW` and created 0640 (`safe_open`): a
//!   symbolic link planted at a log path is refused, never followed.
//! * A subscriber that reads slowly costs a bounded number of bytes
//!   (`bus`): what does not fit is dropped and reported to it.

pub mod bus;
mod fd_pump;
mod pump;
pub mod rotate;
pub mod safe_open;
mod tail;
mod writer;

pub use fd_pump::{spawn_fd_pump, spawn_fd_pump_resumed, DetachedPump, PumpControl};
pub use pump::{spawn_pump, LogFormat, PumpCarry, PumpConfig, StreamKind};
pub use rotate::RotatePolicy;
pub use tail::tail_lines;
pub use writer::{FileWriter, LogRegistry};
