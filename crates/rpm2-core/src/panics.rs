//! Panics in the daemon: logged, and contained to what caused them.
//!
//! The release profile keeps `panic = "unwind"`, so a panic ends only the
//! task (or the `catch_unwind`) it happens in:
//! - one RPC request: `rpc/server.rs` runs its handling under
//!   `catch_unwind` and answers `INTERNAL_ERROR`; the connection and the
//!   daemon go on;
//! - one supervisor message: the actor runs each under `catch_unwind` and
//!   takes the next (see `supervisor/actor.rs` for why it goes on rather
//!   than exit);
//! - any other task (log pumps, a worker's IPC channel, reapers, accept
//!   loops): tokio ends that task alone.
//!
//! Every panic is written to the daemon log by [`install_hook`], with
//! where it happened (and a backtrace with `RUST_BACKTRACE=1`).

use std::any::Any;

/// Route panic reports to the daemon log (tracing) instead of stderr.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        // A trace only when asked for (RUST_BACKTRACE=1 in the daemon's
        // environment): a panic that repeats on every message of a bad
        // worker must not fill the log with hundreds of lines each.
        let trace = std::backtrace::Backtrace::capture();
        let trace = match trace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{trace}"),
            _ => String::new(),
        };
        tracing::error!(
            "panic in thread {} at {location}: {}; the daemon goes on{trace}",
            thread.name().unwrap_or("?"),
            payload_text(info.payload())
        );
    }));
}

/// The message a panic was raised with.
#[must_use]
pub fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Test hooks, in debug builds only: with `RPM2_DEBUG_PANIC` set in the
/// daemon's environment, `describe debug-panic:rpc` panics in the RPC
/// handler and `describe debug-panic:actor` in the supervisor actor, so
/// tests can check that either is contained. Release builds have neither.
#[cfg(debug_assertions)]
pub(crate) mod debug {
    use std::sync::OnceLock;

    use rpm2_proto::{Request, Target};

    /// Where a test asks for a panic.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Place {
        Rpc,
        Actor,
    }

    impl Place {
        fn target(self) -> &'static str {
            match self {
                Place::Rpc => "debug-panic:rpc",
                Place::Actor => "debug-panic:actor",
            }
        }
    }

    fn enabled() -> bool {
        static ENABLED: OnceLock<bool> = OnceLock::new();
        *ENABLED.get_or_init(|| std::env::var_os("RPM2_DEBUG_PANIC").is_some())
    }

    /// Panic if `targets` asks for a panic at `place`.
    pub(crate) fn maybe_panic(place: Place, targets: &[Target]) {
        if enabled()
            && targets
                .iter()
                .any(|t| matches!(t, Target::Name(n) if n == place.target()))
        {
            panic!("panic asked for by a test ({})", place.target());
        }
    }

    /// [`maybe_panic`] for a request's targets (`describe` only).
    pub(crate) fn maybe_panic_on(place: Place, req: &Request) {
        if let Request::Describe { targets } = req {
            maybe_panic(place, targets);
        }
    }
}
