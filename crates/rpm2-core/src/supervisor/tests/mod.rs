//! Lifecycle tests without processes: the real actor with a fake spawner
//! (`FakeOs`, `FakeLink`) and paused tokio time, so each runs in
//! milliseconds. The test plays the worker: it sends exits and IPC messages
//! as a process would, and reads what the daemon did from the fake's log.
//! `harness` has the fakes; `lifecycle` and `drain` the scenarios.

mod axm;
mod cron_props;
mod drain;
mod harness;
mod health;
mod ipc_props;
mod lifecycle;
mod names;
