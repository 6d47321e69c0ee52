//! The RPC server (types in `rpm2-proto`; the client is `rpm2-client`).

pub mod server;
