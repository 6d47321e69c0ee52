//! Health settings of an app: the event-loop watchdog's timeout and the
//! readiness and liveness probes, in Kubernetes' vocabulary
//! (`http_get`, `tcp_socket`, `exec`, `period_ms`, `timeout_ms`,
//! `failure_threshold`, `initial_delay_ms`).

use serde::{Deserialize, Serialize};

/// Defaults of the health settings.
pub mod defaults {
    /// A Node worker whose event loop has not answered for this long is
    /// replaced (0 turns the watchdog off).
    pub const UNRESPONSIVE_TIMEOUT_MS: u64 = 30_000;
    /// How often the daemon pings a worker's event loop.
    pub const WATCHDOG_PERIOD_MS: u64 = 1_000;
    /// Kubernetes' probe defaults.
    pub const PROBE_PERIOD_MS: u64 = 10_000;
    pub const PROBE_TIMEOUT_MS: u64 = 1_000;
    pub const PROBE_FAILURE_THRESHOLD: u32 = 3;
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeCheck {
    /// `GET path` answered with `status` (any 2xx or 3xx when `None`).
    /// `port` (the config's, else the app's `PORT`): fork mode connects to
    /// `127.0.0.1:port`; cluster mode hands the request to the worker's own
    /// server listening on that port.
    HttpGet {
        path: String,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// Fork mode: a TCP connection to `127.0.0.1:port` is accepted.
    /// Cluster mode: the worker listens on `port` (the daemon owns the
    /// socket, so a connect would always succeed).
    TcpSocket { port: u16 },
    /// `command` (argv, run in the app's cwd with its env and
    /// `RPM2_PROBE_PID`) exits with 0.
    Exec { command: Vec<String> },
}

/// One probe of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub check: ProbeCheck,
    pub period_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failures that count (liveness: replace; readiness: out
    /// of routing until it passes again).
    pub failure_threshold: u32,
    pub initial_delay_ms: u64,
}

impl Probe {
    #[must_use]
    pub fn new(check: ProbeCheck) -> Self {
        Self {
            check,
            period_ms: defaults::PROBE_PERIOD_MS,
            timeout_ms: defaults::PROBE_TIMEOUT_MS,
            failure_threshold: defaults::PROBE_FAILURE_THRESHOLD,
            initial_delay_ms: 0,
        }
    }
}

pub(crate) fn default_unresponsive_timeout() -> u64 {
    defaults::UNRESPONSIVE_TIMEOUT_MS
}
