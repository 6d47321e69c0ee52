//! The primary's part of `rpm2 update`: stop accepting (the sockets stay
//! open, so clients wait in the kernel's backlog), wait until no connection
//! is on its way to a worker, then describe the sockets and each run's
//! routing for the next image, which rebuilds them.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use rpm2_node_ipc::cluster::SockName;
use rpm2_node_ipc::HandleType;

use super::Primary;
use crate::cluster::listener::{spawn_accept, Listener, ListenerKind};
use crate::handover::snapshot::{ClusterRunSnap, ListenerKindSnap, ListenerSnap};
use crate::link::SharedLink;
use crate::Gen;

impl Primary {
    /// Stop every accept loop; connections wait in the listen backlogs.
    pub fn pause_accepting(&mut self) {
        for ports in self.apps.values_mut() {
            for listener in ports.listeners.values_mut() {
                if let ListenerKind::RoundRobin { accept_task, .. } = &mut listener.kind {
                    if let Some(task) = accept_task.take() {
                        task.abort();
                    }
                }
            }
        }
    }

    /// Accept again (an update that could not go ahead).
    pub fn resume_accepting(&mut self) {
        let tx = self.conn_tx.clone();
        for (app, ports) in &mut self.apps {
            for (key, listener) in &mut ports.listeners {
                if let ListenerKind::RoundRobin {
                    socket,
                    accept_task,
                    ..
                } = &mut listener.kind
                {
                    if accept_task.is_some() {
                        continue;
                    }
                    let started = socket.try_clone().and_then(|fd| {
                        spawn_accept(
                            fd,
                            Arc::clone(app),
                            Arc::from(key.as_str()),
                            Arc::clone(&ports.peek),
                            tx.clone(),
                        )
                    });
                    match started {
                        Ok(task) => *accept_task = Some(task),
                        Err(e) => tracing::error!("App [{app}]: cannot accept on {key} again: {e}"),
                    }
                }
            }
        }
    }

    /// No connection is waiting for a worker or for a worker's answer.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.apps.values().all(|a| a.waiting.is_empty())
            && self
                .runs
                .values()
                .all(|r| r.pending.is_empty() && r.queued.is_empty())
    }

    /// Every listening socket, by app key and listener key; the fd numbers
    /// are this image's (kept open across the exec).
    #[must_use]
    pub fn export_listeners(&self) -> Vec<ListenerSnap> {
        let mut out = Vec::new();
        for (app, ports) in &self.apps {
            for (key, l) in &ports.listeners {
                let (fd, kind) = match &l.kind {
                    ListenerKind::RoundRobin { socket, .. } => {
                        (socket.as_raw_fd(), ListenerKindSnap::RoundRobin)
                    }
                    ListenerKind::Shared {
                        socket,
                        handle_type: HandleType::NetNative,
                    } => (socket.as_raw_fd(), ListenerKindSnap::SharedStream),
                    ListenerKind::Shared {
                        socket,
                        handle_type: HandleType::DgramNative,
                    } => (socket.as_raw_fd(), ListenerKindSnap::SharedDgram),
                };
                out.push(ListenerSnap {
                    app: app.to_string(),
                    key: key.clone(),
                    fd,
                    kind,
                    data: l.data.clone(),
                    unix_path: l.unix_path.clone(),
                });
            }
        }
        out
    }

    /// A cluster run's routing, for the next image.
    #[must_use]
    pub fn export_run(&self, gen: Gen) -> Option<ClusterRunSnap> {
        self.runs.get(&gen).map(|r| ClusterRunSnap {
            eligible: r.eligible,
            keys: r.keys.iter().cloned().collect(),
            next_seq: r.next_seq,
            handed_off: r.handed_off,
        })
    }

    /// A socket the previous image listened on; accepting starts at once.
    ///
    /// # Errors
    /// When the accept loop cannot start (the fd is not a socket).
    pub fn import_listener(&mut self, snap: ListenerSnap, socket: OwnedFd) -> std::io::Result<()> {
        let tx = self.conn_tx.clone();
        let app: Arc<str> = Arc::from(snap.app.as_str());
        let ports = self.apps.entry(Arc::clone(&app)).or_default();
        let kind = match snap.kind {
            ListenerKindSnap::RoundRobin => {
                let sockname = match &snap.unix_path {
                    Some(_) => None,
                    None => Some(SockName::from_addr(local_addr(&socket)?)),
                };
                let task = spawn_accept(
                    socket.try_clone()?,
                    Arc::clone(&app),
                    Arc::from(snap.key.as_str()),
                    Arc::clone(&ports.peek),
                    tx,
                )?;
                ListenerKind::RoundRobin {
                    sockname,
                    socket,
                    accept_task: Some(task),
                }
            }
            ListenerKindSnap::SharedStream => ListenerKind::Shared {
                socket,
                handle_type: HandleType::NetNative,
            },
            ListenerKindSnap::SharedDgram => ListenerKind::Shared {
                socket,
                handle_type: HandleType::DgramNative,
            },
        };
        ports.listeners.insert(
            snap.key,
            Listener {
                kind,
                data: snap.data,
                unix_path: snap.unix_path,
            },
        );
        Ok(())
    }

    /// A cluster run the previous image routed to.
    pub fn import_run(
        &mut self,
        gen: Gen,
        app: &str,
        pm_id: u32,
        link: SharedLink,
        snap: ClusterRunSnap,
    ) {
        self.attach(gen, app, pm_id, link);
        if let Some(run) = self.runs.get_mut(&gen) {
            run.keys = snap.keys.into_iter().collect();
            run.next_seq = snap.next_seq;
            run.handed_off = snap.handed_off;
        }
        if snap.eligible {
            self.set_eligible(gen, true);
        }
    }
}

/// The address a listening TCP socket is bound to.
fn local_addr(socket: &OwnedFd) -> std::io::Result<std::net::SocketAddr> {
    use nix::sys::socket::{getsockname, SockaddrStorage};
    let addr: SockaddrStorage = getsockname(socket.as_raw_fd()).map_err(std::io::Error::from)?;
    if let Some(v4) = addr.as_sockaddr_in() {
        return Ok(std::net::SocketAddr::V4((*v4).into()));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Ok(std::net::SocketAddr::V6((*v6).into()));
    }
    Err(std::io::Error::other("not an inet socket"))
}
