//! RPC between clients and the daemon (types in `rpm2-proto`).

pub mod client;
pub mod server;
