//! The listening sockets the primary owns (one per `queryServer` key of an
//! app) and the accept loops that feed connections to it.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rpm2_node_ipc::cluster::{AddressType, QueryServer, SockName};
use rpm2_node_ipc::{sockets, HandleType};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// An accepted connection on its way to a worker.
pub struct Conn {
    /// Shared with the IPC channel until the worker has it: no `dup`.
    pub fd: Arc<OwnedFd>,
    pub peer: Option<IpAddr>,
    /// `sticky: 'forwarded'`: the client address its first request carries.
    pub forwarded: Option<Box<str>>,
    /// The app and listener key it came in on.
    pub app: Arc<str>,
    pub key: Arc<str>,
    /// Workers that answered `accepted: false` so far.
    pub refusals: u8,
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
        /// Our own copy of the socket: the accept loop owns another, so the
        /// loop can stop (`rpm2 update`) while the port stays open.
        socket: OwnedFd,
        /// `None` while accepting is paused.
        accept_task: Option<JoinHandle<()>>,
    },
    /// Every worker gets the socket and accepts on it (UDP always; TCP
    /// and Unix with `NODE_CLUSTER_SCHED_POLICY=none`). Ours stays open,
    /// so connections wait in the backlog while workers come and go.
    Shared {
        socket: OwnedFd,
        handle_type: HandleType,
    },
}

/// Node's variable for its scheduling policy (`none`: shared sockets).
pub const SCHED_POLICY_ENV: &str = "NODE_CLUSTER_SCHED_POLICY";

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerKind::RoundRobin {
            accept_task: Some(task),
            ..
        } = &self.kind
        {
            task.abort();
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Accept connections on a listening socket (TCP or Unix) forever, handing
/// each to the actor. `accept4` gives non-blocking, close-on-exec fds as
/// Node needs them, and they are never registered with our reactor: they
/// only pass through on their way to a worker. While `peek` is set (a
/// `sticky: 'forwarded'` app) each connection first goes through a small
/// task of its own that peeks at its request head (bounded), so the accept
/// loop never waits for a client.
pub fn spawn_accept(
    listener: OwnedFd,
    app: Arc<str>,
    key: Arc<str>,
    peek: Arc<AtomicBool>,
    tx: UnboundedSender<Conn>,
) -> std::io::Result<JoinHandle<()>> {
    // SAFETY: the listener is an open socket we own for the AsyncFd's life.
    let listener = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = listener.readable().await else {
                return;
            };
            match guard.try_io(|l| sockets::accept_connection(l.get_ref())) {
                Err(_would_block) => {}
                Ok(Ok((fd, peer))) => {
                    let mut conn = Conn {
                        fd: Arc::new(fd),
                        peer,
                        forwarded: None,
                        app: Arc::clone(&app),
                        key: Arc::clone(&key),
                        refusals: 0,
                    };
                    if peek.load(Ordering::Relaxed) {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            conn.forwarded = super::forwarded::peek_client(&conn.fd).await;
                            let _ = tx.send(conn);
                        });
                    } else if tx.send(conn).is_err() {
                        return;
                    }
                }
                Ok(Err(e)) => accept_error_pause(&e).await,
            }
        }
    }))
}

/// Out of fds (or similar): wait a little instead of spinning.
async fn accept_error_pause(e: &std::io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// Bind what the worker asked for: listen and accept here (round robin), or
/// only bind and let the workers listen on it (`shared`, as Node does).
pub fn open_listener(
    q: &QueryServer,
    app: &str,
    key: &str,
    shared: bool,
    peek: &Arc<AtomicBool>,
    tx: UnboundedSender<Conn>,
) -> std::io::Result<Listener> {
    let backlog = q.backlog_or_default();
    let port = u16::try_from(q.port.max(0)).unwrap_or(0);
    let unix_path = (q.address_type == AddressType::Unix)
        .then(|| std::path::PathBuf::from(q.address.clone().unwrap_or_default()));
    if shared && !q.address_type.is_udp() {
        let socket = match &unix_path {
            Some(path) => sockets::bind_unix_socket(path)?,
            None => sockets::bind_tcp_socket(q.address.as_deref(), port, q.flags)?,
        };
        return Ok(Listener {
            kind: ListenerKind::Shared {
                socket,
                handle_type: HandleType::NetNative,
            },
            data: q.data.clone(),
            unix_path,
        });
    }
    let accept = |l: OwnedFd| spawn_accept(l, app.into(), key.into(), Arc::clone(peek), tx);
    match q.address_type {
        AddressType::Udp4 | AddressType::Udp6 => {
            let sock = sockets::bind_udp(
                q.address.as_deref(),
                port,
                q.address_type == AddressType::Udp6,
                q.flags,
            )?;
            Ok(Listener {
                kind: ListenerKind::Shared {
                    socket: OwnedFd::from(sock),
                    handle_type: HandleType::DgramNative,
                },
                data: q.data.clone(),
                unix_path: None,
            })
        }
        AddressType::Unix => {
            let path = unix_path.unwrap_or_default();
            let l = OwnedFd::from(sockets::bind_unix(&path, backlog)?);
            let task = accept(l.try_clone()?)?;
            Ok(Listener {
                kind: ListenerKind::RoundRobin {
                    sockname: None,
                    socket: l,
                    accept_task: Some(task),
                },
                data: q.data.clone(),
                unix_path: Some(path),
            })
        }
        AddressType::Tcp4 | AddressType::Tcp6 => {
            let l = sockets::bind_tcp(q.address.as_deref(), port, q.flags, backlog)?;
            let sockname = SockName::from_addr(l.local_addr()?);
            let l = OwnedFd::from(l);
            let task = accept(l.try_clone()?)?;
            Ok(Listener {
                kind: ListenerKind::RoundRobin {
                    sockname: Some(sockname),
                    socket: l,
                    accept_task: Some(task),
                },
                data: q.data.clone(),
                unix_path: None,
            })
        }
    }
}
