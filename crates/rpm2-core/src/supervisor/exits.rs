//! The last exit of each worker, kept for `rpm2-runtime`'s exit code: it
//! leaves with 0 when every app ended cleanly, else with the code of the
//! first worker (in time) whose last exit was a failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::signal::Signal;

/// How one run of a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastExit {
    pub app: String,
    pub pm_id: u32,
    pub code: Option<i32>,
    pub signal: Option<&'static str>,
    /// rpm2 asked it to end (stop, reload, shutdown).
    pub expected: bool,
    /// Order of the exits in the daemon's life.
    seq: u64,
}

impl LastExit {
    /// The process exit code this end stands for, `None` when clean:
    /// code 0; or a signal rpm2 sent to stop it, other than SIGKILL (which
    /// means it outlived `kill_timeout`). A code is itself; a signal is
    /// 128 + its number, as shells report it.
    #[must_use]
    pub fn failure_code(&self) -> Option<i32> {
        match (self.code, self.signal) {
            (Some(0), _) => None,
            (Some(code), _) => Some(code),
            (None, Some(name)) => {
                let signal = name.parse::<Signal>().ok();
                if self.expected && signal != Some(Signal::SIGKILL) {
                    None
                } else {
                    Some(128 + signal.map_or(0, |s| s as i32))
                }
            }
            // Neither code nor signal: the wait itself failed.
            (None, None) => Some(1),
        }
    }
}

#[derive(Default)]
struct Book {
    by_worker: BTreeMap<u32, LastExit>,
    next_seq: u64,
}

/// Shared by the actor, which writes it, and the runtime, which reads it.
#[derive(Clone, Default)]
pub struct ExitBook(Arc<Mutex<Book>>);

impl ExitBook {
    /// A run of worker `pm_id` ended (replacing its previous exit).
    pub fn record(
        &self,
        app: &str,
        pm_id: u32,
        code: Option<i32>,
        signal: Option<&'static str>,
        expected: bool,
    ) {
        let mut book = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        book.next_seq += 1;
        let seq = book.next_seq;
        book.by_worker.insert(
            pm_id,
            LastExit {
                app: app.to_owned(),
                pm_id,
                code,
                signal,
                expected,
                seq,
            },
        );
    }

    /// The earliest worker whose last exit failed, with its exit code.
    #[must_use]
    pub fn first_failure(&self) -> Option<(LastExit, i32)> {
        let book = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        book.by_worker
            .values()
            .filter_map(|e| Some((e.clone(), e.failure_code()?)))
            .min_by_key(|(e, _)| e.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_ends_are_code_zero_and_stop_signals_rpm2_sent() {
        let book = ExitBook::default();
        book.record("a", 0, Some(0), None, false);
        book.record("b", 1, None, Some("SIGINT"), true);
        book.record("c", 2, Some(0), None, true);
        assert_eq!(book.first_failure(), None);
    }

    #[test]
    fn the_first_failure_in_time_wins_and_a_later_clean_run_clears_a_worker() {
        let book = ExitBook::default();
        book.record("a", 0, Some(2), None, false);
        book.record("b", 1, Some(3), None, false);
        book.record("c", 2, None, Some("SIGKILL"), true);
        assert_eq!(
            book.first_failure().map(|(e, c)| (e.app, c)),
            Some(("a".into(), 2))
        );
        // Worker 0 restarted and then stopped cleanly: b is now the first.
        book.record("a", 0, None, Some("SIGINT"), true);
        assert_eq!(
            book.first_failure().map(|(e, c)| (e.app, c)),
            Some(("b".into(), 3))
        );
        book.record("b", 1, Some(0), None, true);
        // Killed after kill_timeout: 128 + 9.
        assert_eq!(book.first_failure().map(|(_, c)| c), Some(137));
    }

    #[test]
    fn a_signal_nobody_sent_is_a_failure() {
        let book = ExitBook::default();
        book.record("a", 0, None, Some("SIGSEGV"), false);
        assert_eq!(book.first_failure().map(|(_, c)| c), Some(139));
    }
}
