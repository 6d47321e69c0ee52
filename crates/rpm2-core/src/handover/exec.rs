//! Both ends of the exec: the running image prepares the snapshot and
//! replaces itself; the new image reads the snapshot back (or gives the
//! daemon back to the previous image when it cannot).

use std::ffi::{CString, OsString};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use rpm2_proto::{ErrorCode, RpcError};

use super::snapshot::{DaemonFds, Snapshot, HANDOVER_VERSION};
use crate::supervisor::handover::{HandoverStep, RunDetached};
use crate::supervisor::SupervisorHandle;

/// The hidden command that says which hand-over versions a binary reads.
pub use rpm2_client::CHECK_COMMAND;
/// Test hook: `refuse-check` makes `__handover-check` read no version;
/// `refuse` makes a new image refuse the snapshot it is given (it then
/// goes back to the previous image).
pub const TEST_ENV: &str = "RPM2_TEST_HANDOVER";

/// How long the workers may take to answer the connections already handed
/// to them, and their channels to go quiet, before the update gives up.
const QUIET_WITHIN: Duration = Duration::from_secs(5);

fn failed(message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::UpdateFailed, message)
}

/// Test hook: the version the daemon reports in its hello.
pub const VERSION_ENV: &str = "RPM2_TEST_DAEMON_VERSION";

/// The version this daemon says it runs.
#[must_use]
pub fn daemon_version() -> String {
    std::env::var(VERSION_ENV).unwrap_or_else(|_| env!("CARGO_PKG_VERSION").to_owned())
}

/// Set by a daemon that cannot be updated in place, with the reason.
static UPDATES_OFF: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// This daemon refuses `update` (`rpm2-runtime`: its owner is the
/// container, which is replaced as a whole).
pub fn refuse_updates(why: &'static str) {
    let _ = UPDATES_OFF.set(why);
}

/// What `__handover-check` prints: the snapshot versions this binary
/// reads, its version, and the digest of its daemon sources (`rpm2` starts
/// the `rpm2-daemon` beside it only when that digest is its own).
#[must_use]
pub fn check_output() -> String {
    let reads: Vec<u32> = if std::env::var(TEST_ENV).as_deref() == Ok("refuse-check") {
        Vec::new()
    } else {
        vec![HANDOVER_VERSION]
    };
    let answer = rpm2_client::CheckAnswer {
        reads,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: Some(rpm2_client::SOURCE_ID.to_owned()),
    };
    serde_json::to_string(&answer).unwrap_or_default()
}

/// The executable the daemon was started from, as it is on disk now (a
/// replaced file shows as `<path> (deleted)` in `/proc/self/exe`).
fn binary_on_disk() -> Result<PathBuf, RpcError> {
    let link = std::fs::read_link("/proc/self/exe")
        .map_err(|e| failed(format!("cannot find the daemon's executable: {e}")))?;
    let text = link.as_os_str().as_bytes();
    let path = text.strip_suffix(b" (deleted)").unwrap_or(text);
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(path)))
}

/// Ask the binary on disk whether it reads our snapshot.
async fn preflight(binary: &std::path::Path) -> Result<String, RpcError> {
    let run = tokio::process::Command::new(binary)
        .arg(CHECK_COMMAND)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| failed(format!("{} did not answer", binary.display())))?
        .map_err(|e| failed(format!("cannot run {}: {e}", binary.display())))?;
    let answer: rpm2_client::CheckAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        failed(format!(
            "{} cannot take the daemon over (it is not an rpm2 that updates in place); stop and start the daemon instead: rpm2 kill && rpm2 resurrect",
            binary.display()
        ))
    })?;
    let version = answer.version;
    if !answer.reads.contains(&HANDOVER_VERSION) {
        return Err(failed(format!(
            "rpm2 {version} at {} cannot read this daemon's state (hand-over format {HANDOVER_VERSION}); nothing changed. Stop and start the daemon instead: rpm2 kill && rpm2 resurrect",
            binary.display()
        )));
    }
    Ok(version)
}

/// What a detached task gives back, if it does in time.
async fn wait<T>(rx: Option<tokio::sync::oneshot::Receiver<T>>) -> Option<T> {
    tokio::time::timeout(QUIET_WITHIN, rx?).await.ok()?.ok()
}

/// A snapshot ready to go, with the fds it names.
pub struct Prepared {
    pub binary: PathBuf,
    pub to_version: String,
    pub snapshot: Snapshot,
    /// Open until the exec (they are the numbers in the snapshot).
    pub keep: Vec<OwnedFd>,
}

/// Steps 1–3: check the new binary, freeze, detach, write the table down.
/// An error before the detach leaves everything as it was.
///
/// # Errors
/// The new binary cannot take over, or the daemon is busy.
pub async fn prepare(sup: &SupervisorHandle) -> Result<Prepared, RpcError> {
    if let Some(why) = UPDATES_OFF.get() {
        return Err(failed(*why));
    }
    let binary = binary_on_disk()?;
    let to_version = preflight(&binary).await?;
    sup.call(|reply| crate::supervisor::Call::Handover {
        step: HandoverStep::Freeze { reply },
    })
    .await?;
    let deadline = tokio::time::Instant::now() + QUIET_WITHIN;
    loop {
        let quiet = sup
            .call(|reply| crate::supervisor::Call::Handover {
                step: HandoverStep::Quiet { reply },
            })
            .await?;
        if quiet {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = sup
                .call(|reply| crate::supervisor::Call::Handover {
                    step: HandoverStep::Thaw { reply },
                })
                .await;
            return Err(failed(
                "workers did not take the connections handed to them in time; nothing changed",
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // No way back in this image from here: a failure execs an image anyway.
    let asked = sup
        .call(|reply| crate::supervisor::Call::Handover {
            step: HandoverStep::Detach { reply },
        })
        .await?;
    let mut detached = Vec::new();
    for run in asked {
        detached.push(RunDetached {
            gen: run.gen,
            ipc: wait(run.ipc).await,
            out: wait(run.out).await,
            err: wait(run.err).await,
        });
    }
    let exported = sup
        .call(|reply| crate::supervisor::Call::Handover {
            step: HandoverStep::Snapshot { detached, reply },
        })
        .await?;
    Ok(Prepared {
        binary,
        to_version,
        snapshot: Snapshot {
            version: HANDOVER_VERSION,
            from_version: env!("CARGO_PKG_VERSION").to_owned(),
            daemon: DaemonFds {
                lock: -1,
                rpc: -1,
                previous_image: None,
            },
            table: exported.table,
            listeners: exported.listeners,
            systemd: false,
        },
        keep: exported.keep,
    })
}

fn keep_across_exec(fd: RawFd) -> nix::Result<()> {
    let flags = FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// The snapshot in a memfd, readable by the next image.
fn write_memfd(snapshot: &Snapshot) -> std::io::Result<OwnedFd> {
    let name = CString::new("rpm2-handover").unwrap_or_default();
    let fd = nix::sys::memfd::memfd_create(&name, nix::sys::memfd::MemFdCreateFlag::empty())?;
    let mut file = std::fs::File::from(fd);
    serde_json::to_writer(&mut file, snapshot)?;
    file.flush()?;
    Ok(OwnedFd::from(file))
}

fn daemon_args(memfd: RawFd, previous: Option<RawFd>, refused: Option<&str>) -> Vec<CString> {
    let mut args = vec![
        CString::new("rpm2").unwrap_or_default(),
        CString::new("__daemon").unwrap_or_default(),
        CString::new("--handover").unwrap_or_default(),
        CString::new(memfd.to_string()).unwrap_or_default(),
    ];
    if let Some(fd) = previous {
        args.push(CString::new("--previous").unwrap_or_default());
        args.push(CString::new(fd.to_string()).unwrap_or_default());
    }
    if let Some(reason) = refused {
        args.push(CString::new("--refused").unwrap_or_default());
        args.push(CString::new(reason.replace('\0', " ")).unwrap_or_default());
    }
    args
}

/// Step 4: replace this image with the new binary. Returns only if no
/// image could be executed (then the daemon cannot carry on).
pub fn exec(mut prepared: Prepared, lock: RawFd, rpc: RawFd) -> std::io::Error {
    // The previous image, to come back to: /proc/self/exe opens the file we
    // run even if it was replaced on disk.
    let previous = nix::fcntl::open(
        "/proc/self/exe",
        OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .ok();
    prepared.snapshot.daemon = DaemonFds {
        lock,
        rpc,
        previous_image: previous,
    };
    let memfd = match write_memfd(&prepared.snapshot) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut fds: Vec<RawFd> = vec![lock, rpc, memfd.as_raw_fd()];
    fds.extend(previous);
    fds.extend(prepared.keep.iter().map(AsRawFd::as_raw_fd));
    fds.extend(prepared.snapshot.listeners.iter().map(|l| l.fd));
    for fd in fds {
        if let Err(e) = keep_across_exec(fd) {
            tracing::warn!("update: fd {fd} will not cross the exec: {e}");
        }
    }
    tracing::info!(
        "update: handing over to {} (rpm2 {})",
        prepared.binary.display(),
        prepared.to_version
    );
    let args = daemon_args(memfd.as_raw_fd(), previous, None);
    let path = CString::new(prepared.binary.as_os_str().as_bytes()).unwrap_or_default();
    let err = nix::unistd::execv(&path, &args).err();
    let reason = format!("cannot execute {}: {err:?}", prepared.binary.display());
    tracing::error!("update: {reason}; carrying on with this image");
    back_to_previous(previous, memfd.as_raw_fd(), &reason);
    std::io::Error::other("no daemon image could be executed")
}

/// Execute the image that wrote the snapshot (it carries on as before).
fn back_to_previous(previous: Option<RawFd>, memfd: RawFd, reason: &str) {
    if let Some(image) = previous {
        let args = daemon_args(memfd, Some(image), Some(reason));
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let err = nix::unistd::fexecve(image, &args, &env).err();
        tracing::error!("update: cannot execute the previous image either: {err:?}");
    }
}

/// How the new image was started.
pub struct Arrival {
    pub snapshot: Snapshot,
    /// This image is the previous one, taken back because the new one
    /// could not carry on (why).
    pub refused: Option<String>,
}

/// Why the last update fell back to the previous image, if it did: told
/// to clients in the hello, so `rpm2 update` can say it failed.
static REFUSED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// See [`REFUSED`].
#[must_use]
pub fn update_refused() -> Option<String> {
    REFUSED.get().cloned()
}

/// `__daemon --handover FD [--previous FD] [--refused WHY]`: read the snapshot. A snapshot
/// this image cannot carry on with sends the daemon back to the previous
/// image; `None` then means that failed too.
#[must_use]
pub fn arrive(args: &[OsString]) -> Option<Arrival> {
    let fd: RawFd = args.get(1)?.to_str()?.parse().ok()?;
    let refused: Option<String> = args
        .iter()
        .position(|a| a == "--refused")
        .and_then(|i| Some(args.get(i + 1)?.to_string_lossy().into_owned()));
    let fallback = refused.is_some();
    let previous: Option<RawFd> = args
        .iter()
        .position(|a| a == "--previous")
        .and_then(|i| args.get(i + 1)?.to_str()?.parse().ok());
    // SAFETY: the previous image passed this fd number for us to own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = String::new();
    let read = file
        .rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<Snapshot>(&text).map_err(|e| e.to_string()));
    let refuse = !fallback && std::env::var(TEST_ENV).as_deref() == Ok("refuse");
    let problem = match &read {
        Ok(s) if s.version != HANDOVER_VERSION => Some(format!(
            "hand-over format {} is not {HANDOVER_VERSION}",
            s.version
        )),
        Ok(_) if refuse => Some(format!("{TEST_ENV}=refuse")),
        Ok(_) => None,
        Err(e) => Some(e.clone()),
    };
    match (read, problem) {
        (Ok(snapshot), None) => {
            if let Some(why) = &refused {
                let _ = REFUSED.set(why.clone());
            }
            Some(Arrival { snapshot, refused })
        }
        (Err(problem), None) | (_, Some(problem)) => {
            eprintln!("rpm2 daemon: cannot take over: {problem}");
            if fallback {
                return None;
            }
            let memfd = file.as_raw_fd();
            std::mem::forget(file);
            back_to_previous(
                previous,
                memfd,
                &format!(
                    "rpm2 {} could not take over: {problem}",
                    env!("CARGO_PKG_VERSION")
                ),
            );
            None
        }
    }
}
