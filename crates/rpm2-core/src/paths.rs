//! The `RPM2_HOME` layout lives in `rpm2-client` (clients find the socket
//! there too); the daemon's file-name rule is `rpm2-proto`'s (the config
//! loader uses it too).

pub use rpm2_client::Home;
pub use rpm2_proto::file_safe_name;
