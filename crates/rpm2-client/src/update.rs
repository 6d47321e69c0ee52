//! `rpm2 update` from the client's side: ask the daemon to hand itself over
//! to the binary now on disk, then wait until the new image answers under
//! the same pid.

use std::time::{Duration, Instant};

use crate::{Client, ClientError, Home, Timeouts};

/// How long the new image may take to answer after the exec.
const TAKE_OVER_WITHIN: Duration = Duration::from_secs(30);

/// A daemon updated in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub pid: u32,
    pub from_version: String,
    pub to_version: String,
    /// Processes it manages (when the old daemon could say).
    pub processes: Option<usize>,
}

/// Update the daemon of `home` in place. `Ok(None)`: no daemon runs.
///
/// # Errors
/// The daemon refused (it says why; nothing changed), or the new image did
/// not answer in time.
pub fn update_in_place(home: &Home, timeouts: Timeouts) -> Result<Option<Updated>, ClientError> {
    let mut client = match Client::connect_for_update(home, timeouts) {
        Ok(c) => c,
        Err(ClientError::Unavailable(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let pid = client.daemon_pid;
    let from_version = client.daemon_version.clone();
    let processes = client.list().ok().map(|l| l.len());
    client.update()?;
    drop(client);
    let deadline = Instant::now() + TAKE_OVER_WITHIN;
    loop {
        match Client::connect_with(home, timeouts) {
            Ok(c) if c.daemon_pid == pid => {
                if let Some(why) = c.update_refused {
                    return Err(ClientError::rejected(
                        rpm2_proto::ErrorCode::UpdateFailed,
                        format!("{why}; the daemon carries on as before (rpm2 {from_version}, pid {pid}), every process kept"),
                    ));
                }
                return Ok(Some(Updated {
                    pid,
                    from_version,
                    to_version: c.daemon_version,
                    processes,
                }));
            }
            Ok(c) => {
                return Err(ClientError::Unavailable(format!(
                    "the daemon (pid {pid}) was replaced by another one (pid {}) during the update",
                    c.daemon_pid
                )))
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
