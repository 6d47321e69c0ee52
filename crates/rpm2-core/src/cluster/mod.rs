//! The daemon as Node's cluster primary (protocol in `rpm2-node-ipc`):
//! listening sockets and accept loops (`listener`), routing and hand-offs
//! (`primary`).

pub mod listener;
pub mod primary;

pub use listener::Conn;
pub use primary::{Policy, Primary};
