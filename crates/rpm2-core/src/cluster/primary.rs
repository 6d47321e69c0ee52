//! The daemon as Node's cluster primary, per app: the listening sockets it
//! owns (one per `queryServer` key) and the connections waiting for a
//! worker. Routing decisions are made by the supervisor actor
//! (`cluster/route.rs`), which also knows which workers are ready.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::OwnedFd;

use rpm2_node_ipc::cluster::SockName;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::supervisor::Msg;

/// Connections accepted while no worker can take them wait here; past this
/// many the oldest is closed, so a dead app cannot eat the daemon's memory.
pub const MAX_WAITING_CONNS: usize = 8192;

/// An accepted connection on its way to a worker.
pub struct Conn {
    pub fd: OwnedFd,
    pub peer: Option<IpAddr>,
    pub key: String,
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
    SharedDgram {
        socket: OwnedFd,
    },
}

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

/// Accept connections on a TCP listener forever, handing each to the actor.
pub fn spawn_tcp_accept(
    listener: std::net::TcpListener,
    app: String,
    key: String,
    tx: UnboundedSender<Msg>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Ok(std_stream) = stream.into_std() else {
                        continue;
                    };
                    // Already non-blocking (tokio made it so); Node needs that.
                    let conn = Conn {
                        fd: OwnedFd::from(std_stream),
                        peer: Some(peer.ip()),
                        key: key.clone(),
                        refusals: 0,
                    };
                    if tx
                        .send(Msg::Conn {
                            app: app.clone(),
                            conn,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => accept_error_pause(&e).await,
            }
        }
    }))
}

/// Same for a Unix socket path.
pub fn spawn_unix_accept(
    listener: std::os::unix::net::UnixListener,
    app: String,
    key: String,
    tx: UnboundedSender<Msg>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let Ok(std_stream) = stream.into_std() else {
                        continue;
                    };
                    let conn = Conn {
                        fd: OwnedFd::from(std_stream),
                        peer: None,
                        key: key.clone(),
                        refusals: 0,
                    };
                    if tx
                        .send(Msg::Conn {
                            app: app.clone(),
                            conn,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => accept_error_pause(&e).await,
            }
        }
    }))
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
