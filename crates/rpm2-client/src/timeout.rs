//! How long a client waits for the daemon: every wait (connect, hello,
//! each reply) has a bound, chosen per request kind, so a stopped or hung
//! daemon is reported instead of hanging the caller. Event streams
//! (`logs --follow`, the bus) wait for events without a bound: an idle app
//! is not a hung daemon.

use std::path::Path;
use std::time::Duration;

use rpm2_proto::Request;

/// The environment variable that overrides every bound, in milliseconds.
pub const TIMEOUT_ENV: &str = "RPM2_TIMEOUT_MS";

/// Connecting and the hello exchange.
const CONNECT: Duration = Duration::from_secs(10);
/// Reads: `list`, `describe`, `ping`, `save`, `flush`, signals.
const SHORT: Duration = Duration::from_secs(10);
/// Actions that wait for apps: at least this…
const LONG: Duration = Duration::from_secs(120);
/// …plus, for a start, each worker's listen and kill timeouts.
const PER_WORKER_SLACK: Duration = Duration::from_secs(1);

/// The bounds of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// One bound for everything (`RPM2_TIMEOUT_MS`, `--timeout`).
    pub fixed: Option<Duration>,
}

impl Timeouts {
    /// The defaults, or `RPM2_TIMEOUT_MS` when it is set to a number.
    #[must_use]
    pub fn from_env() -> Self {
        let fixed = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        Self { fixed }
    }

    /// Connecting and saying hello.
    #[must_use]
    pub fn connect(self) -> Duration {
        self.fixed.unwrap_or(CONNECT)
    }

    /// Waiting for the answer to `req`.
    #[must_use]
    pub fn reply(self, req: &Request) -> Duration {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        match req {
            Request::Start { apps, .. } | Request::StartOrReload { apps } => {
                // Workers start one app after another in the worst case.
                let per_app = apps.iter().map(|a| {
                    let each = Duration::from_millis(
                        a.listen_timeout_ms.saturating_add(a.kill_timeout_ms),
                    ) + PER_WORKER_SLACK;
                    each.saturating_mul(a.instances.max(1))
                });
                per_app.fold(LONG, Duration::saturating_add)
            }
            Request::Stop { .. }
            | Request::Restart { .. }
            | Request::Reload { .. }
            | Request::Delete { .. }
            | Request::Scale { .. }
            | Request::Resurrect
            | Request::Kill
            | Request::Update
            | Request::Trigger { .. } => LONG,
            Request::Hello { .. } => CONNECT,
            Request::Ping
            | Request::List
            | Request::Notices
            | Request::Describe { .. }
            | Request::SendSignal { .. }
            | Request::SendData { .. }
            | Request::Reset { .. }
            | Request::ToggleWatch { .. }
            | Request::Flush { .. }
            | Request::ReloadLogs
            | Request::ReloadSettings
            | Request::Save { .. }
            | Request::Subscribe => SHORT,
        }
    }
}

/// "10 s", "1.5 s", "250 ms": a bound as messages print it.
#[must_use]
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The pid written in the daemon's pid file, if any.
#[must_use]
pub fn pid_from_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is stopped by a signal (state `T` in `/proc/<pid>/stat`).
#[must_use]
pub fn is_stopped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "T")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_short_and_actions_long() {
        let t = Timeouts::default();
        assert_eq!(t.reply(&Request::List), SHORT);
        assert_eq!(t.reply(&Request::Kill), LONG);
        let fixed = Timeouts {
            fixed: Some(Duration::from_millis(300)),
        };
        assert_eq!(fixed.reply(&Request::Kill), Duration::from_millis(300));
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
        assert_eq!(human(Duration::from_secs(10)), "10 s");
    }

    #[test]
    fn a_start_waits_for_every_worker() {
        let mut app = rpm2_proto::AppSpec::with_defaults("a".into(), "a.js".into(), "/".into());
        app.instances = 4;
        let req = Request::Start {
            apps: vec![app.clone()],
            only_new: false,
            force: false,
            stopped: Vec::new(),
        };
        let each =
            Duration::from_millis(app.listen_timeout_ms + app.kill_timeout_ms) + PER_WORKER_SLACK;
        assert_eq!(Timeouts::default().reply(&req), LONG + each * 4);
    }
}
