//! `rpm2 update`: the running daemon hands itself over to the binary now on
//! disk without stopping a worker. It re-executes itself in place, so it
//! keeps its pid and its workers stay its children; the process table goes
//! to the new image in a memfd, and the descriptors it needs (the pid-file
//! lock, the RPC socket, listening sockets, each worker's IPC channel and
//! pipes) stay open across `execve`.
//!
//! The steps (see `supervisor::handover` for the actor's side):
//! 1. the new binary is asked which hand-over versions it reads; an old or
//!    broken binary is refused and nothing changes;
//! 2. freeze: no start, stop or reload; accepting pauses (clients wait in
//!    the kernel's backlog) until no connection is on its way to a worker;
//! 3. detach every channel and pipe from its task, write the snapshot;
//! 4. exec. The new image rebuilds the table and carries on. If it cannot
//!    read the snapshot, it execs the previous image (kept open as an fd)
//!    with the same snapshot, which then carries on as before.

mod exec;
pub mod snapshot;

pub use exec::{
    arrive, check_output, daemon_version, exec, prepare, refuse_updates, update_refused, Arrival,
    Prepared, CHECK_COMMAND, TEST_ENV, VERSION_ENV,
};
