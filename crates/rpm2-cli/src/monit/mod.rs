//! `rpm2 monit`: pm2's terminal dashboard (process list with CPU and
//! memory sparklines, the selected app's log tail, its metadata and
//! `@pm2/io` metrics), with keys to restart, reload or stop it.
//!
//! - [`model`]: the dashboard's state, fed by lists and bus events.
//! - [`history`]: recent CPU/memory samples and their sparklines.
//! - [`input`]: keys to actions, actions to state changes (pure).
//! - [`render`], [`panels`]: drawing the state with ratatui (pure).
//! - [`feed`]: the threads that talk to the daemon (list once a second,
//!   the bus, actions), so the screen never waits on it.
//! - [`run`]: the terminal (restored on exit and on panic) and the loop.

mod feed;
mod history;
mod input;
mod model;
mod panels;
mod render;
mod run;

pub use run::monit;

#[cfg(test)]
mod render_tests;
