//! What one daemon image hands the next (`rpm2 update`): the process table
//! and the numbers of the descriptors it keeps open across `execve`. Plain
//! data, versioned as a whole: an image refuses a version it does not know.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rpm2_logs::PumpCarry;
use rpm2_proto::AppSpec;
use serde::{Deserialize, Serialize};

/// The hand-over format this image writes and reads. Bump it whenever a
/// field changes meaning; an image that reads an unknown version gives the
/// daemon back to the image that wrote it.
pub const HANDOVER_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// The rpm2 version of the image that wrote it.
    pub from_version: String,
    /// The fds the daemon itself holds.
    pub daemon: DaemonFds,
    pub table: TableSnap,
    pub listeners: Vec<ListenerSnap>,
    /// The daemon runs under the unit `rpm2 startup` wrote (it stops its
    /// apps without saving them).
    #[serde(default)]
    pub systemd: bool,
}

/// The daemon's own descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub struct DaemonFds {
    /// The pid file, locked (`flock` belongs to the open file, so the lock
    /// survives the exec).
    pub lock: i32,
    /// The RPC socket, listening.
    pub rpc: i32,
    /// The image that wrote this snapshot (`/proc/self/exe` opened), to go
    /// back to if the new image cannot carry on.
    pub previous_image: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TableSnap {
    /// The daemon's instance id: its runs' process markers start with it.
    pub instance: String,
    pub next_id: u64,
    pub next_cluster_id: u32,
    pub apps: Vec<AppSnap>,
    pub workers: Vec<WorkerSnap>,
    pub runs: Vec<RunSnap>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AppSnap {
    pub key: String,
    pub spec: AppSpec,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerSnap {
    pub pm_id: u32,
    pub app: String,
    pub instance: u32,
    pub created_at: u64,
    pub unique_id: String,
    pub env: BTreeMap<String, String>,
    pub out_log: Option<PathBuf>,
    pub err_log: Option<PathBuf>,
    pub combined_log: Option<PathBuf>,
    pub pid_path: PathBuf,
    pub log_error: Option<String>,
    pub axm: rpm2_proto::info::Axm,
    pub restart_time: u32,
    pub unstable_restarts: u32,
    pub prev_restart_delay: u64,
    pub pm_uptime: u64,
    pub exit_code: Option<i32>,
    /// Why rpm2 last replaced it (watchdog, probe).
    #[serde(default)]
    pub restart_reason: Option<String>,
    pub state: WorkerStateSnap,
}

/// The settled states a hand-over allows (a start, stop or reload in
/// progress makes `update` wait, then refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerStateSnap {
    Stopped,
    Errored,
    Online {
        run: u64,
    },
    /// A crash restart is due in this many ms.
    WaitingRestart {
        due_in_ms: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunSnap {
    pub gen: u64,
    pub pm_id: u32,
    pub pid: u32,
    /// How long it has run (its `Instant` does not cross the exec).
    pub uptime_ms: u64,
    /// Ready to serve (`listening`/`ready`), or only online.
    pub ready: bool,
    pub preload: PreloadSnap,
    pub inflight: Option<u32>,
    pub ipc: Option<ChannelSnap>,
    pub stdout: Option<PipeSnap>,
    pub stderr: Option<PipeSnap>,
    /// The cluster primary's view of it, for a cluster run.
    pub cluster: Option<ClusterRunSnap>,
    /// Reaped during the hand-over: (code, signal), for the next image to
    /// act on as on any exit.
    pub exited: Option<(Option<i32>, Option<i32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreloadSnap {
    Absent,
    Expected,
    Loaded,
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChannelSnap {
    pub fd: i32,
    /// The start of a line the worker had not finished writing.
    pub leftover: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PipeSnap {
    pub fd: i32,
    pub carry: PumpCarry,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterRunSnap {
    pub eligible: bool,
    pub keys: Vec<String>,
    pub next_seq: u64,
    /// Connections it took so far (the metrics' counter).
    #[serde(default)]
    pub handed_off: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ListenerSnap {
    pub app: String,
    pub key: String,
    pub fd: i32,
    pub kind: ListenerKindSnap,
    pub data: serde_json::Value,
    pub unix_path: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ListenerKindSnap {
    /// The daemon accepts (its address is read back from the socket).
    RoundRobin,
    SharedStream,
    SharedDgram,
}
