//! Logs (being written).
