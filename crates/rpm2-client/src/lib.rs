//! rpm2's client side, shared by the CLI and the addon (which must not
//! link the daemon):
//!
//! - [`home`]: the `RPM2_HOME` layout (the daemon uses it too).
//! - [`conn`]: the blocking connection: hello, framing, event streams.
//! - [`module_conf`]: pm2's `module_conf.json` (`set`/`get`); typed
//!   sections in it: [`logrotate`], [`daemon_settings`] (`rpm2:*`).
//! - [`pidfile`]: the daemon found through its pid file (socket lost).
//! - [`api`]: typed calls, one per request (`list()`, `stop(targets)`, …).
//! - [`spawn`]: connect, starting the daemon (`rpm2 __daemon`) if needed.
//! - [`plan`] (feature `plan`): start planning from config files, scripts,
//!   app objects and names of known apps.
//! - [`targets`]: `/regex/` and script-path words turned into targets.
//! - [`pm2_dump`] (feature `plan`): pm2's `dump.pm2` read for
//!   `resurrect --from`.
//! - [`timeout`]: the bound of each wait (`RPM2_TIMEOUT_MS`).
//! - [`error`]: `ClientError`, each variant with its `ErrorCode`.

pub mod api;
pub mod conn;
pub mod daemon_settings;
pub mod error;
pub mod home;
pub mod logrotate;
pub mod module_conf;
pub mod pidfile;
#[cfg(feature = "plan")]
pub mod plan;
#[cfg(feature = "plan")]
pub mod pm2_dump;
pub mod spawn;
pub mod targets;
pub mod timeout;
pub mod update;

pub use api::{Saved, Triggered, UpdateEnv};
pub use conn::{Client, Events};
pub use error::ClientError;
pub use home::Home;
#[cfg(feature = "plan")]
pub use plan::{StartPlan, StartTarget, Started};
pub use spawn::{
    connect_or_spawn, connect_or_spawn_with, daemon_executable, CheckAnswer, CHECK_COMMAND,
    DAEMON_EXECUTABLE, DAEMON_SUBCOMMAND, SOURCE_ID,
};
pub use timeout::{Timeouts, TIMEOUT_ENV};
pub use update::{update_in_place, Updated};
