//! The daemon as Node's cluster primary, per app: the listening sockets it
//! owns (one per `queryServer` key) and the connections waiting for a
//! worker. Routing decisions are made by the supervisor actor
//! (`cluster/route.rs`), which also knows which workers are ready.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use rpm2_node_ipc::cluster::SockName;
use rpm2_node_ipc::HandleType;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::supervisor::Msg;

/// Connections accepted while no worker can take them wait here; past this
/// many the oldest is closed, so a dead app cannot eat the daemon's memory.
pub const MAX_WAITING_CONNS: usize = 8192;

/// An accepted connection on its way to a worker.
pub struct Conn {
    /// Shared with the IPC channel until the worker has it: no `dup`.
    pub fd: Arc<OwnedFd>,
    pub peer: Option<IpAddr>,
    /// The app and listener key it came in on.
    pub app: Arc<str>,
    pub key: Arc<str>,
    /// Workers that answered `accepted: false` so far.
    pub refusals: u8,
}

/// A connection handed to a worker with `newconn`, until it answers.
pub struct PendingConn {
    pub seq: u64,
    pub conn: Conn,
}

/// One listening socket of an app.
pub struct Listener {
    /// Round robin: the daemon accepts; shared (UDP): the worker does.
    pub kind: ListenerKind,
    /// The first worker's `data` (https ticket keys), echoed to every worker.
    pub data: serde_json::Value,
    /// Unix socket path to unlink when the listener goes.
    pub unix_path: Option<std::path::PathBuf>,
}

pub enum ListenerKind {
    RoundRobin {
        sockname: Option<SockName>,
        accept_task: JoinHandle<()>,
    },
    /// Every worker gets the socket and accepts on it (UDP always; TCP
    /// and Unix with `NODE_CLUSTER_SCHED_POLICY=none`). Ours stays open,
    /// so connections wait in the backlog while workers come and go.
    Shared {
        socket: OwnedFd,
        handle_type: HandleType,
    },
}

/// How an app's stream listeners share connections, as Node's
/// `cluster.schedulingPolicy`: `NODE_CLUSTER_SCHED_POLICY` from the app's
/// environment, else the daemon's (where pm2's Node primary reads it),
/// else round robin. Sticky apps always use round robin: the daemon must
/// see each connection to pick its worker.
#[must_use]
pub fn shares_stream_sockets(spec: &rpm2_proto::AppSpec) -> bool {
    if spec.sticky {
        return false;
    }
    let policy = spec
        .env
        .get(SCHED_POLICY_ENV)
        .cloned()
        .or_else(|| std::env::var(SCHED_POLICY_ENV).ok());
    policy.as_deref() == Some("none")
}

pub const SCHED_POLICY_ENV: &str = "NODE_CLUSTER_SCHED_POLICY";

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerKind::RoundRobin { accept_task, .. } = &self.kind {
            accept_task.abort();
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Cluster state of one app.
#[derive(Default)]
pub struct ClusterApp {
    pub listeners: HashMap<String, Listener>,
    /// Accepted connections no worker could take yet (oldest first).
    pub waiting: VecDeque<Conn>,
    /// Where the next round-robin pick starts.
    pub rr_cursor: usize,
}

impl ClusterApp {
    /// Close every listening socket (the app has no live worker left).
    pub fn close_all(&mut self) {
        self.listeners.clear();
        self.waiting.clear();
    }

    pub fn push_waiting(&mut self, conn: Conn) {
        if self.waiting.len() >= MAX_WAITING_CONNS {
            self.waiting.pop_front();
        }
        self.waiting.push_back(conn);
    }
}

/// Accept connections on a listening socket (TCP or Unix) forever, handing
/// each to the actor. `accept4` gives non-blocking, close-on-exec fds as
/// Node needs them, and they are never registered with our reactor: they
/// only pass through on their way to a worker.
pub fn spawn_accept(
    listener: OwnedFd,
    app: Arc<str>,
    key: Arc<str>,
    tx: UnboundedSender<Msg>,
) -> std::io::Result<JoinHandle<()>> {
    // SAFETY: the listener is an open socket we own for the AsyncFd's life.
    let listener = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = listener.readable().await else {
                return;
            };
            match guard.try_io(|l| accept(l.get_ref())) {
                Err(_would_block) => {}
                Ok(Ok((fd, peer))) => {
                    let conn = Conn {
                        fd: Arc::new(fd),
                        peer,
                        app: Arc::clone(&app),
                        key: Arc::clone(&key),
                        refusals: 0,
                    };
                    if tx.send(Msg::Conn(conn)).is_err() {
                        return;
                    }
                }
                Ok(Err(e)) => accept_error_pause(&e).await,
            }
        }
    }))
}

/// One `accept4`, with the peer's IP when it has one (TCP).
fn accept(listener: &OwnedFd) -> std::io::Result<(OwnedFd, Option<IpAddr>)> {
    // SAFETY: sockaddr_storage is plain data, large enough for any address.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>())
        .unwrap_or(libc::socklen_t::MAX);
    // SAFETY: accept4 on our listening fd, writing into `addr`.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::addr_of_mut!(addr).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let peer = match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin: &libc::sockaddr_in = unsafe { &*std::ptr::addr_of!(addr).cast() };
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*std::ptr::addr_of!(addr).cast() };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    };
    Ok((fd, peer))
}

/// Out of fds (or similar): wait a little instead of spinning.
async fn accept_error_pause(e: &std::io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// Stable hash of a client address, for sticky routing.
#[must_use]
pub fn sticky_hash(ip: Option<IpAddr>) -> u64 {
    use std::hash::{Hash, Hasher};
    // DefaultHasher with fixed keys: stable within and across runs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.hash(&mut h),
            None => v6.hash(&mut h),
        },
        Some(IpAddr::V4(v4)) => v4.hash(&mut h),
        None => 0u8.hash(&mut h),
    }
    h.finish()
}
