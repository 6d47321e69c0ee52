//! Metrics and health over HTTP, off by default: `/metrics` (Prometheus /
//! OpenMetrics text), `/healthz` and `/readyz` (Kubernetes probes), served
//! on the daemon's own runtime at the address `RPM2_METRICS_ADDR` (read at
//! start, wins) or `rpm2 set rpm2:metrics_addr` (applied live) gives.
//!
//! - [`settings`]: which address, applied at start and on `ReloadSettings`;
//!   a bad or busy address is logged and the daemon goes on without it.
//! - `server`: the listener and hyper's HTTP/1 connections; one snapshot
//!   of the table per request, taken through the supervisor's calls.
//! - `exposition`: the metric families and the readiness rule, pure
//!   functions of that snapshot.

mod exposition;
mod server;
pub mod settings;

pub use settings::apply;
