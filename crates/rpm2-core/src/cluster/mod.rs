//! The daemon as Node's cluster primary (protocol in `rpm2-node-ipc`).

pub mod primary;
mod route;
