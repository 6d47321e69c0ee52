//! Worker processes: how they are spawned and signalled, and the restart policy.

pub mod identity;
pub mod policy;
pub mod spawn;
pub mod tree;
