//! Node IPC channel (placeholder).
