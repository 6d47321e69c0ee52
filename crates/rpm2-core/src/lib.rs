//! rpm2 core.
