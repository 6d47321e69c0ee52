//! What happens when a worker exits on its own: restart (after which delay),
//! stop, or give up (`errored`). Pure functions over plain numbers so the
//! rules are unit-tested without processes or clocks.

use rpm2_proto::{defaults, AppSpec};

/// Counters that survive a worker's restarts (pm2's `pm2_env` fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartCounters {
    /// `restart_time`: every restart after the first start, counted when
    /// the restart happens (after `restart_delay`, as pm2 does): the
    /// worker's machine counts it, not [`decide`].
    pub restart_time: u32,
    /// `unstable_restarts`: consecutive runs shorter than `min_uptime`.
    pub unstable_restarts: u32,
    /// `prev_restart_delay`: the last exponential back-off delay (0 = none yet).
    pub prev_restart_delay: u64,
}

/// The decision for an exit nobody asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDecision {
    /// `autorestart: false` or an exit code in `stop_exit_codes`.
    Stop,
    /// Too many unstable restarts in a row (`restart overlimit`).
    Errored,
    /// Start again after `delay_ms` (status `waiting restart` meanwhile when > 0).
    Restart { delay_ms: u64 },
}

/// Decide what to do after an unrequested exit, updating `counters`.
/// `uptime_ms` is how long the process that just exited ran.
#[must_use]
pub fn decide(
    spec: &AppSpec,
    counters: &mut RestartCounters,
    exit_code: Option<i32>,
    uptime_ms: u64,
) -> ExitDecision {
    if !spec.autorestart || exit_code.is_some_and(|c| spec.stop_exit_codes.contains(&c)) {
        return ExitDecision::Stop;
    }
    if uptime_ms < spec.min_uptime_ms {
        // `unstable_restarts` counts restarts made, like `restart_time`:
        // the short run that ends the loop is not one, so the log, the
        // table's ↺ and `describe` give one number. pm2's limit holds:
        // `max_restarts` short runs in a row, then `errored`.
        if counters.unstable_restarts.saturating_add(1) >= spec.max_restarts {
            return ExitDecision::Errored;
        }
        counters.unstable_restarts += 1;
    } else {
        // pm2 stops counting after a time window, which lets a crash loop run
        // forever (#2584); counting consecutive short runs does not.
        counters.unstable_restarts = 0;
    }
    let delay_ms = match spec.exp_backoff_restart_delay_ms {
        Some(base) => {
            if uptime_ms > defaults::EXP_BACKOFF_RESET_MS {
                counters.prev_restart_delay = 0;
            }
            let next = if counters.prev_restart_delay == 0 {
                base
            } else {
                counters.prev_restart_delay.saturating_mul(3) / 2
            };
            counters.prev_restart_delay = next.min(defaults::EXP_BACKOFF_CAP_MS);
            counters.prev_restart_delay
        }
        None => spec.restart_delay_ms,
    };
    ExitDecision::Restart { delay_ms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> AppSpec {
        AppSpec::with_defaults("t".into(), PathBuf::from("/bin/true"), PathBuf::from("/"))
    }

    #[test]
    fn crash_loop_ends_errored_after_max_restarts() {
        let s = spec();
        let mut c = RestartCounters::default();
        for i in 1..s.max_restarts {
            assert_eq!(
                decide(&s, &mut c, Some(1), 10),
                ExitDecision::Restart { delay_ms: 0 }
            );
            assert_eq!(c.unstable_restarts, i);
        }
        assert_eq!(decide(&s, &mut c, Some(1), 10), ExitDecision::Errored);
        assert_eq!(c.unstable_restarts, s.max_restarts - 1);
    }

    #[test]
    fn a_stable_run_resets_the_unstable_count() {
        let s = spec();
        let mut c = RestartCounters::default();
        let _ = decide(&s, &mut c, Some(1), 10);
        let _ = decide(&s, &mut c, Some(1), 10);
        assert_eq!(c.unstable_restarts, 2);
        let _ = decide(&s, &mut c, Some(1), 5_000);
        assert_eq!(c.unstable_restarts, 0);
        // Counted by the worker when it restarts, not here.
        assert_eq!(c.restart_time, 0);
    }

    #[test]
    fn stop_exit_codes_and_no_autorestart_stop() {
        let mut s = spec();
        s.stop_exit_codes = vec![0, 3];
        let mut c = RestartCounters::default();
        assert_eq!(decide(&s, &mut c, Some(3), 10), ExitDecision::Stop);
        assert_eq!(
            decide(&s, &mut c, None, 10),
            ExitDecision::Restart { delay_ms: 0 }
        );
        s.autorestart = false;
        assert_eq!(decide(&s, &mut c, Some(1), 10), ExitDecision::Stop);
    }

    #[test]
    fn restart_delay_is_used() {
        let mut s = spec();
        s.restart_delay_ms = 250;
        let mut c = RestartCounters::default();
        assert_eq!(
            decide(&s, &mut c, Some(1), 5000),
            ExitDecision::Restart { delay_ms: 250 }
        );
    }

    #[test]
    fn exponential_backoff_grows_caps_and_resets() {
        let mut s = spec();
        s.exp_backoff_restart_delay_ms = Some(100);
        s.max_restarts = 1000;
        let mut c = RestartCounters::default();
        let mut delays = Vec::new();
        for _ in 0..20 {
            if let ExitDecision::Restart { delay_ms } = decide(&s, &mut c, Some(1), 10) {
                delays.push(delay_ms);
            }
        }
        assert_eq!(&delays[..4], &[100, 150, 225, 337]);
        assert_eq!(*delays.last().unwrap(), defaults::EXP_BACKOFF_CAP_MS);
        // A run longer than 30 s starts the back-off again from its base.
        assert_eq!(
            decide(&s, &mut c, Some(1), 31_000),
            ExitDecision::Restart { delay_ms: 100 }
        );
    }
}
