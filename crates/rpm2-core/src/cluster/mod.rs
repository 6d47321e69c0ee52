//! The daemon as Node's cluster primary (protocol in `rpm2-node-ipc`):
//! listening sockets and accept loops (`listener`), routing and hand-offs
//! (`primary`), the client address behind a proxy (`forwarded`).

pub mod forwarded;
mod listener;
pub mod primary;

pub use listener::Conn;
pub use primary::{Policy, Primary};
