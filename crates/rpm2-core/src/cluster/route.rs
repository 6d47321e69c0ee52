//! The primary's side of Node's cluster protocol, as actor handlers:
//! `queryServer` (create or join a listener), `listening`, `close`,
//! `exitedAfterDisconnect`, and handing each accepted connection to a worker
//! (`newconn`), round robin or sticky by client IP.

use std::os::fd::{AsFd, OwnedFd};

use rpm2_node_ipc::cluster::{self, AddressType, QueryServer, SockName, WorkerMessage};
use rpm2_node_ipc::{sockets, HandleType};

use super::primary::{
    shares_stream_sockets, spawn_accept, sticky_hash, Conn, Listener, ListenerKind, PendingConn,
    SCHED_POLICY_ENV,
};
use crate::supervisor::actor::Actor;
use crate::supervisor::state::Gen;

/// Connections handed to one worker ahead of its answers: with several in
/// flight a busy worker takes a few per turn of its event loop (the IPC
/// channel pipelines the handles, see `rpm2-node-ipc`'s queue).
const MAX_PENDING_CONNS: usize = rpm2_node_ipc::MAX_HANDLES_IN_FLIGHT;

/// Can this run take one more connection now?
fn has_room(run: &crate::supervisor::state::Run) -> bool {
    run.pending_conns.len() < MAX_PENDING_CONNS
}

/// A connection refused by this many workers in a row is closed.
const MAX_REFUSALS: u8 = 8;

impl Actor {
    pub(crate) fn on_cluster_message(&mut self, gen: Gen, msg: WorkerMessage) {
        match msg {
            WorkerMessage::Online => {
                // With wait_ready only `ready` (or listen_timeout) counts.
                if !self.spec_of_run(gen).is_some_and(|s| s.wait_ready) {
                    self.run_online(gen);
                }
            }
            WorkerMessage::QueryServer(q) => self.query_server(gen, &q),
            WorkerMessage::Listening(_) => {
                let wait_ready = self.spec_of_run(gen).is_some_and(|s| s.wait_ready);
                if !wait_ready {
                    self.run_ready(gen);
                }
            }
            WorkerMessage::Close { key } => {
                if let Some(run) = self.table.runs.get_mut(&gen) {
                    run.keys.remove(&key);
                }
            }
            WorkerMessage::ExitedAfterDisconnect { seq } => {
                if let Some(run) = self.table.runs.get_mut(&gen) {
                    // It leaves on purpose: not a crash.
                    run.stop_requested = true;
                    if let Some(ch) = &run.channel {
                        let _ = ch.send(cluster::ack(seq, 0));
                    }
                }
            }
            WorkerMessage::Reply { ack, accepted } => {
                self.newconn_answered(gen, ack, accepted.unwrap_or(false))
            }
            WorkerMessage::Unknown => {}
        }
    }

    fn spec_of_run(&self, gen: Gen) -> Option<&rpm2_proto::AppSpec> {
        self.spec_of(self.table.runs.get(&gen)?.pm_id)
    }

    fn app_of_run(&self, gen: Gen) -> Option<String> {
        let run = self.table.runs.get(&gen)?;
        self.table.workers.get(&run.pm_id).map(|w| w.app.clone())
    }

    /// `server.listen()` in a worker: create the app's listener for this key
    /// once, answer with its address (round robin) or the socket (UDP).
    fn query_server(&mut self, gen: Gen, q: &QueryServer) {
        let Some(app_name) = self.app_of_run(gen) else {
            return;
        };
        let key = q.key();
        let tx = self.tx.clone();
        let Some(app) = self.table.apps.get_mut(&app_name) else {
            return;
        };
        let shared = shares_stream_sockets(&app.spec);
        if let Some(l) = app.cluster.listeners.get(&key) {
            let is_stream_shared = matches!(
                l.kind,
                ListenerKind::Shared {
                    handle_type: HandleType::NetNative,
                    ..
                }
            );
            if is_stream_shared != shared && !q.address_type.is_udp() {
                // The port stays open across reloads, so its policy does too.
                tracing::warn!(
                    "App [{app_name}]: {SCHED_POLICY_ENV} changed; {key} keeps its policy until the app is stopped"
                );
            }
        } else {
            match open_listener(q, &app_name, &key, shared, tx) {
                Ok(listener) => {
                    app.cluster.listeners.insert(key.clone(), listener);
                }
                Err(e) => {
                    tracing::warn!("App [{app_name}] cannot listen on {key}: {e}");
                    if let Some(ch) = self.table.runs.get(&gen).and_then(|r| r.channel.as_ref()) {
                        let _ = ch.send(cluster::reply_error(
                            q.seq,
                            &key,
                            sockets::errno_of(&e),
                            q.data.clone(),
                            0,
                        ));
                    }
                    return;
                }
            }
        }
        let listener = &app.cluster.listeners[&key];
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        let Some(ch) = run.channel.as_ref() else {
            return;
        };
        match &listener.kind {
            ListenerKind::RoundRobin { sockname, .. } => {
                let _ = ch.send(cluster::reply_round_robin(
                    q.seq,
                    &key,
                    listener.data.clone(),
                    sockname.clone(),
                    0,
                ));
                run.keys.insert(key);
            }
            ListenerKind::Shared {
                socket,
                handle_type,
            } => {
                // Out of fds: the worker's listen() fails instead of hanging.
                let _ = match socket.as_fd().try_clone_to_owned() {
                    Ok(fd) => ch.send_handle(
                        cluster::reply_shared(q.seq, &key, listener.data.clone(), 0),
                        *handle_type,
                        fd,
                    ),
                    Err(e) => ch.send(cluster::reply_error(
                        q.seq,
                        &key,
                        sockets::errno_of(&e),
                        q.data.clone(),
                        0,
                    )),
                };
            }
        }
        self.drain_waiting(&app_name);
    }

    /// A new connection: give it to one of its app's workers, or keep it waiting.
    pub(crate) fn route(&mut self, conn: Conn) {
        if let Err(conn) = self.try_route(conn) {
            if let Some(a) = self.table.apps.get_mut(&*conn.app) {
                a.cluster.push_waiting(conn);
            }
        }
    }

    /// Give `conn` to a worker that can take it now (sticky: queue it on its
    /// worker), or hand it back. A connection of a deleted app is dropped.
    fn try_route(&mut self, conn: Conn) -> Result<(), Conn> {
        let app = std::sync::Arc::clone(&conn.app);
        let app = &*app;
        let Some(sticky) = self.table.apps.get(app).map(|a| a.spec.sticky) else {
            return Ok(());
        };
        let eligible = self.eligible_runs(app, &conn.key);
        if eligible.is_empty() {
            return Err(conn);
        }
        if sticky {
            let gen = self.sticky_pick(app, &eligible, conn.peer);
            if self.table.runs.get(&gen).is_some_and(has_room) {
                self.hand_over(gen, conn);
            } else if let Some(r) = self.table.runs.get_mut(&gen) {
                r.queued_conns.push_back(conn);
            }
            return Ok(());
        }
        let start = self.table.apps.get(app).map_or(0, |a| a.cluster.rr_cursor);
        let free = (0..eligible.len())
            .map(|i| (start + i) % eligible.len())
            .find(|&i| self.table.runs.get(&eligible[i]).is_some_and(has_room));
        let Some(pos) = free else {
            return Err(conn);
        };
        if let Some(a) = self.table.apps.get_mut(app) {
            a.cluster.rr_cursor = pos + 1;
        }
        self.hand_over(eligible[pos], conn);
        Ok(())
    }

    /// Sticky routing: the client's hash picks one of the app's workers (all
    /// of them, live or not), so a worker that dies moves only its own
    /// clients; while it is away they go to a live worker by the same hash.
    fn sticky_pick(&self, app: &str, eligible: &[Gen], peer: Option<std::net::IpAddr>) -> Gen {
        let hash = sticky_hash(peer);
        let workers = self.table.workers_of(app);
        #[allow(clippy::cast_possible_truncation)]
        let slot = workers[(hash % workers.len() as u64) as usize];
        let own = self.table.workers.get(&slot).and_then(|w| w.run);
        match own {
            Some(gen) if eligible.contains(&gen) => gen,
            #[allow(clippy::cast_possible_truncation)]
            _ => eligible[(hash % eligible.len() as u64) as usize],
        }
    }

    /// Runs that may get a new connection for `key`, in pm_id order: the
    /// serving run of each worker, online, not being stopped, holding the key.
    fn eligible_runs(&self, app: &str, key: &str) -> Vec<Gen> {
        self.table
            .workers
            .values()
            .filter(|w| w.app == app)
            .filter_map(|w| w.run)
            .filter(|g| {
                self.table.runs.get(g).is_some_and(|r| {
                    r.online
                        && !r.stop_requested
                        && r.keys.contains(key)
                        && r.channel.as_ref().is_some_and(|c| !c.is_closed())
                })
            })
            .collect()
    }

    /// Send `newconn` with the connection; keep our copy until it answers.
    /// A channel that ended just now sends the connection back to routing.
    fn hand_over(&mut self, gen: Gen, conn: Conn) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return self.route(conn);
        };
        let seq = next_seq(run);
        // accept4 made it non-blocking; we keep our share until the answer.
        let sent = run.channel.as_ref().is_some_and(|ch| {
            ch.send_handle_line(
                rpm2_node_ipc::handoff::newconn_line(&conn.key, seq),
                std::sync::Arc::clone(&conn.fd),
            )
            .is_ok()
        });
        if sent {
            run.pending_conns.push_back(PendingConn { seq, conn });
        } else {
            // No longer eligible (its channel is closed): no loop.
            self.route(conn);
        }
    }

    pub(crate) fn newconn_answered(&mut self, gen: Gen, ack: u64, accepted: bool) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        let Some(pos) = run.pending_conns.iter().position(|p| p.seq == ack) else {
            return;
        };
        let Some(pending) = run.pending_conns.remove(pos) else {
            return;
        };
        let next = run.queued_conns.pop_front();
        let app = std::sync::Arc::clone(&pending.conn.app);
        if !accepted {
            let mut conn = pending.conn;
            conn.refusals += 1;
            if conn.refusals < MAX_REFUSALS {
                self.route(conn);
            }
        }
        // Accepted: dropping `pending` closes our copy; the worker has its own.
        match next {
            Some(conn) => self.hand_over(gen, conn),
            None => self.drain_waiting(&app),
        }
    }

    /// Hand waiting connections to whichever workers are free now, oldest
    /// first; stop at the first one nobody can take.
    pub(crate) fn drain_waiting(&mut self, app: &str) {
        loop {
            let Some(conn) = self
                .table
                .apps
                .get_mut(app)
                .and_then(|a| a.cluster.waiting.pop_front())
            else {
                return;
            };
            if let Err(conn) = self.try_route(conn) {
                if let Some(a) = self.table.apps.get_mut(app) {
                    a.cluster.waiting.push_front(conn);
                }
                return;
            }
        }
    }

    /// A run is gone: its queued connections go to the others; one handed
    /// over but unanswered is dropped (the worker may have read from it).
    pub(crate) fn forget_run_connections(&mut self, run: &mut crate::supervisor::state::Run) {
        run.pending_conns.clear();
        for conn in std::mem::take(&mut run.queued_conns) {
            self.route(conn);
        }
    }
}

fn next_seq(run: &mut crate::supervisor::state::Run) -> u64 {
    run.next_seq += 1;
    run.next_seq
}

/// Bind what the worker asked for: listen and accept here (round robin), or
/// only bind and let the workers listen on it (`shared`, as Node does).
fn open_listener(
    q: &QueryServer,
    app: &str,
    key: &str,
    shared: bool,
    tx: tokio::sync::mpsc::UnboundedSender<crate::supervisor::Msg>,
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
            let l = sockets::bind_unix(&path, backlog)?;
            let task = spawn_accept(OwnedFd::from(l), app.into(), key.into(), tx)?;
            Ok(Listener {
                kind: ListenerKind::RoundRobin {
                    sockname: None,
                    accept_task: task,
                },
                data: q.data.clone(),
                unix_path: Some(path),
            })
        }
        AddressType::Tcp4 | AddressType::Tcp6 => {
            let l = sockets::bind_tcp(q.address.as_deref(), port, q.flags, backlog)?;
            let sockname = SockName::from_addr(l.local_addr()?);
            let task = spawn_accept(OwnedFd::from(l), app.into(), key.into(), tx)?;
            Ok(Listener {
                kind: ListenerKind::RoundRobin {
                    sockname: Some(sockname),
                    accept_task: task,
                },
                data: q.data.clone(),
                unix_path: None,
            })
        }
    }
}
