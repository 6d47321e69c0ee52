//! Worker health: the event-loop watchdog and the probes' bookkeeping.
//!
//! **Watchdog.** Every second the daemon sends `NODE_RPM2_PING {seq}` to
//! each live Node run whose drain preload said hello; the preload answers
//! `NODE_RPM2_PONG {seq}` from its `internalMessage` listener, so the
//! answer waits for the worker's event loop. The time from ping to pong is
//! the run's event-loop lag (`jlist`'s `event_loop_lag_ms`). One ping is in
//! flight per run: while it is unanswered the lag shown is the time since
//! it went out, and once that reaches the app's `unresponsive_timeout` the
//! worker is replaced (`WorkerEvent::Replace { hung: true }`). Measured by
//! the daemon, not by the worker: a blocked loop cannot report itself, and
//! the worker needs no timer of its own (one message each way per second).
//!
//! **Probes** (`probe.rs` runs them): per run and kind, consecutive
//! failures and whether readiness passed. Readiness gates routing
//! (`Primary::set_ready`) and the run's `Ready` event; liveness failures
//! replace the worker (`hung: false`: drained as in a reload).

use std::time::Duration;

use rpm2_proto::health::defaults::WATCHDOG_PERIOD_MS;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::actor::Actor;
use super::drain::{self, Preload};
use super::worker::{WorkerEvent, WorkerState};
use super::Msg;
use crate::Gen;

/// One run's health as the daemon knows it.
#[derive(Debug, Default)]
pub struct RunHealth {
    next_seq: u64,
    /// The unanswered ping: its number and when it went out.
    waiting: Option<(u64, Instant)>,
    /// The last ping's round trip.
    lag: Option<Duration>,
    /// Readiness and liveness probes (`probe.rs`).
    pub probes: super::probe::Probes,
}

impl RunHealth {
    /// The lag to show: the last round trip, or the wait of an unanswered
    /// ping when that is longer.
    #[must_use]
    pub fn lag(&self, now: Instant) -> Option<Duration> {
        let waited = self
            .waiting
            .map(|(_, sent)| now.saturating_duration_since(sent));
        match (self.lag, waited) {
            (Some(l), Some(w)) => Some(l.max(w)),
            (l, w) => l.or(w),
        }
    }

    /// The answer to ping `seq` came.
    pub fn pong(&mut self, seq: u64, now: Instant) {
        if let Some((waiting, sent)) = self.waiting {
            if waiting == seq {
                self.lag = Some(now.saturating_duration_since(sent));
                self.waiting = None;
            }
        }
    }

    /// Time for a ping: the number of the one to send, or, when the last
    /// is still unanswered, `Err` with how long it has been waiting.
    pub fn ping(&mut self, now: Instant) -> Result<u64, Duration> {
        if let Some((_, sent)) = self.waiting {
            return Err(now.saturating_duration_since(sent));
        }
        self.next_seq += 1;
        self.waiting = Some((self.next_seq, now));
        Ok(self.next_seq)
    }
}

/// Ping the workers' event loops every `WATCHDOG_PERIOD_MS` for as long as
/// the actor lives.
pub fn spawn_watchdog_ticks(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(WATCHDOG_PERIOD_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.send(Msg::WatchdogTick).is_err() {
                return;
            }
        }
    });
}

impl Actor {
    /// Ping every watched run; replace the workers whose serving run has
    /// left a ping unanswered for `unresponsive_timeout`.
    pub(crate) fn on_watchdog_tick(&mut self) {
        let now = Instant::now();
        let mut hung = Vec::new();
        for (&gen, run) in &mut self.table.runs {
            let Some(w) = self.table.workers.get(&run.pm_id) else {
                continue;
            };
            let Some(spec) = self.table.apps.get(&w.app).map(|a| &a.spec) else {
                continue;
            };
            let timeout = spec.unresponsive_timeout_ms;
            let live = run.phase.is_online() || run.phase == super::run::RunPhase::Starting;
            let Some(link) = run.link.as_ref().filter(|l| !l.is_closed()) else {
                continue;
            };
            if timeout == 0 || !live || run.preload != Preload::Loaded {
                continue;
            }
            match run.health.ping(now) {
                Ok(seq) => {
                    let _ = link.send(drain::ping_message(seq));
                }
                Err(waited) => {
                    let serving = w.life.state == WorkerState::Online { run: gen };
                    if serving && waited >= Duration::from_millis(timeout) {
                        hung.push((run.pm_id, gen, waited));
                    }
                }
            }
        }
        for (pm_id, gen, waited) in hung {
            let name = self
                .spec_of(pm_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let ms = waited.as_millis();
            tracing::warn!("App [{name}:{pm_id}] unresponsive for {ms} ms: replaced");
            let reason = format!("event loop unresponsive for {ms} ms");
            self.worker_event(
                pm_id,
                WorkerEvent::Replace {
                    run: gen,
                    reason,
                    hung: true,
                },
                None,
            );
        }
    }

    /// A run's preload answered a ping.
    pub(crate) fn on_pong(&mut self, gen: Gen, seq: u64) {
        if let Some(run) = self.table.runs.get_mut(&gen) {
            run.health.pong(seq, Instant::now());
        }
    }

    /// The event-loop lag of worker `pm_id`'s serving run.
    pub(crate) fn lag_of(&self, pm_id: u32) -> Option<Duration> {
        let gen = self.table.workers.get(&pm_id)?.life.serving()?;
        self.table.runs.get(&gen)?.health.lag(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_ping_in_flight_and_the_lag_grows_while_it_waits() {
        let mut h = RunHealth::default();
        let t0 = Instant::now();
        assert_eq!(h.lag(t0), None);
        assert_eq!(h.ping(t0), Ok(1));
        let t1 = t0 + Duration::from_millis(5);
        h.pong(1, t1);
        assert_eq!(h.lag(t1), Some(Duration::from_millis(5)));
        assert_eq!(h.ping(t1), Ok(2));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(h.ping(t2), Err(Duration::from_secs(2)));
        assert_eq!(h.lag(t2), Some(Duration::from_secs(2)));
        // A stale answer changes nothing.
        h.pong(1, t2);
        assert_eq!(h.ping(t2), Err(Duration::from_secs(2)));
    }
}
