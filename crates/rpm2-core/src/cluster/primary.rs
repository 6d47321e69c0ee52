//! The daemon as Node's cluster primary: it owns every app's listening
//! sockets, the routing policies (round robin, sticky, shared socket) and
//! the per-run connection state (hand-offs waiting for an answer, queued
//! ones, message numbers). The supervisor only tells it which runs exist and
//! which may take connections; accepted connections reach it through a
//! channel the daemon's loop reads, so it knows nothing of the supervisor.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rpm2_node_ipc::cluster::{self, QueryServer};
use rpm2_node_ipc::{sockets, HandleType};
use rpm2_proto::spec::Sticky;
use tokio::sync::mpsc::UnboundedSender;

use super::listener::{open_listener, Conn, Listener, ListenerKind, SCHED_POLICY_ENV};
use crate::link::SharedLink;
use crate::Gen;

/// Connections accepted while no worker can take them wait here; past this
/// many the oldest is closed, so a dead app cannot eat the daemon's memory.
pub const MAX_WAITING_CONNS: usize = 8192;

/// Connections handed to one worker ahead of its answers: with several in
/// flight a busy worker takes a few per turn of its event loop (the IPC
/// channel pipelines the handles, see `rpm2-node-ipc`'s queue).
const MAX_PENDING_CONNS: usize = rpm2_node_ipc::MAX_HANDLES_IN_FLIGHT;

/// A connection refused by this many workers in a row is closed.
const MAX_REFUSALS: u8 = 8;

/// How an app's connections are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Pick the worker by a hash of the client (peer or forwarded) address.
    pub sticky: Sticky,
    /// `NODE_CLUSTER_SCHED_POLICY=none`: workers accept on a shared socket.
    pub shared_streams: bool,
}

impl Policy {
    /// Node's `cluster.schedulingPolicy`: `NODE_CLUSTER_SCHED_POLICY` from
    /// the app's environment, else the daemon's (where pm2's Node primary
    /// reads it), else round robin. Sticky apps always use round robin: the
    /// daemon must see each connection to pick its worker.
    #[must_use]
    pub fn of(spec: &rpm2_proto::AppSpec) -> Self {
        let policy = spec
            .env
            .get(SCHED_POLICY_ENV)
            .cloned()
            .or_else(|| std::env::var(SCHED_POLICY_ENV).ok());
        Self {
            sticky: spec.sticky,
            shared_streams: !spec.sticky.is_on() && policy.as_deref() == Some("none"),
        }
    }
}

/// A connection handed to a worker with `newconn`, until it answers.
struct PendingConn {
    seq: u64,
    conn: Conn,
    /// The daemon's own health probe for this run: never routed elsewhere.
    probe: bool,
}

/// One app's ports and routing state.
#[derive(Default)]
struct AppPorts {
    policy: Policy,
    /// Shared with the accept loops: peek at request heads (`forwarded`).
    peek: Arc<AtomicBool>,
    listeners: HashMap<String, Listener>,
    /// Accepted connections no worker could take yet (oldest first).
    waiting: VecDeque<Conn>,
    /// Where the next round-robin pick starts (an index into `eligible`).
    rr_cursor: usize,
    /// The app's workers by id, in order: the sticky slots.
    workers: Vec<u32>,
    /// Runs that may get connections, in (worker id, run) order.
    eligible: Vec<(u32, Gen)>,
}

/// One cluster run as the primary sees it.
struct RunPorts {
    app: Arc<str>,
    pm_id: u32,
    link: SharedLink,
    /// It takes new connections: `routable` (the supervisor's word) and
    /// `ready` (its readiness probe passes, or it has none).
    eligible: bool,
    routable: bool,
    ready: bool,
    /// Listener keys this run has joined.
    keys: BTreeSet<String>,
    /// Handed over with `newconn`, waiting for `accepted`.
    pending: VecDeque<PendingConn>,
    /// Waiting for this run in particular (sticky mode).
    queued: VecDeque<Conn>,
    /// Our cluster message counter towards this worker.
    next_seq: u64,
    /// Connections this run accepted (the metrics' hand-off counter).
    handed_off: u64,
    /// Killed while hung: what it left unanswered goes to others at detach.
    abandoned: bool,
}

impl RunPorts {
    fn can_take(&self, key: &str) -> bool {
        self.eligible && self.keys.contains(key) && !self.link.is_closed()
    }

    fn has_room(&self) -> bool {
        self.pending.len() < MAX_PENDING_CONNS
    }
}

/// The cluster primary of every app.
pub struct Primary {
    apps: HashMap<Arc<str>, AppPorts>,
    runs: HashMap<Gen, RunPorts>,
    /// Given to accept loops; the daemon's loop reads the other end and
    /// calls [`Primary::route`].
    conn_tx: UnboundedSender<Conn>,
}

impl Primary {
    #[must_use]
    pub fn new(conn_tx: UnboundedSender<Conn>) -> Self {
        Self {
            apps: HashMap::new(),
            runs: HashMap::new(),
            conn_tx,
        }
    }

    /// An app's policy and its workers' ids (the sticky slots), set when it
    /// is registered, its spec changes, or it gains or loses a worker.
    pub fn set_app(&mut self, app: &str, policy: Policy, workers: Vec<u32>) {
        let ports = self.apps.entry(Arc::from(app)).or_default();
        ports.policy = policy;
        ports
            .peek
            .store(policy.sticky == Sticky::Forwarded, Ordering::Relaxed);
        ports.workers = workers;
    }

    /// The app has no live worker left: close its ports and drop what waits.
    pub fn close_app(&mut self, app: &str) {
        if let Some(ports) = self.apps.get_mut(app) {
            ports.listeners.clear();
            ports.waiting.clear();
        }
    }

    /// The app was deleted.
    pub fn remove_app(&mut self, app: &str) {
        self.apps.remove(app);
    }

    /// True while the app holds a listening socket.
    #[must_use]
    pub fn is_listening(&self, app: &str) -> bool {
        self.apps.get(app).is_some_and(|a| !a.listeners.is_empty())
    }

    /// A cluster run with an IPC channel was spawned.
    pub fn attach(&mut self, gen: Gen, app: &str, pm_id: u32, link: SharedLink) {
        let app: Arc<str> = self
            .apps
            .get_key_value(app)
            .map_or_else(|| Arc::from(app), |(k, _)| Arc::clone(k));
        self.runs.insert(
            gen,
            RunPorts {
                app,
                pm_id,
                link,
                eligible: false,
                routable: false,
                ready: true,
                keys: BTreeSet::new(),
                pending: VecDeque::new(),
                queued: VecDeque::new(),
                next_seq: 0,
                handed_off: 0,
                abandoned: false,
            },
        );
    }

    /// Whether a run may get new connections (online and not draining).
    /// A run that stops taking them gives its queued ones to the others.
    pub fn set_eligible(&mut self, gen: Gen, eligible: bool) {
        if let Some(run) = self.runs.get_mut(&gen) {
            run.routable = eligible;
            self.update_eligible(gen);
        }
    }

    /// Whether a run's readiness probe passes (runs of apps without one
    /// are ready): one that is not takes no connections.
    pub fn set_ready(&mut self, gen: Gen, ready: bool) {
        if let Some(run) = self.runs.get_mut(&gen) {
            run.ready = ready;
            self.update_eligible(gen);
        }
    }

    fn update_eligible(&mut self, gen: Gen) {
        let Some(run) = self.runs.get_mut(&gen) else {
            return;
        };
        let eligible = run.routable && run.ready;
        if run.eligible == eligible {
            return;
        }
        run.eligible = eligible;
        let (app, pm_id) = (Arc::clone(&run.app), run.pm_id);
        let queued = std::mem::take(&mut run.queued);
        let Some(ports) = self.apps.get_mut(&app) else {
            return;
        };
        if eligible {
            let at = ports
                .eligible
                .binary_search(&(pm_id, gen))
                .unwrap_or_else(|i| i);
            ports.eligible.insert(at, (pm_id, gen));
            self.drain_waiting(&app);
        } else {
            ports.eligible.retain(|&(_, g)| g != gen);
            for conn in queued {
                self.route(conn);
            }
        }
    }

    /// A run is gone: a connection handed over but unanswered is dropped
    /// (the worker may have read from it), unless the run was abandoned;
    /// queued ones go to the others.
    pub fn detach(&mut self, gen: Gen) {
        self.set_eligible(gen, false);
        if let Some(run) = self.runs.remove(&gen) {
            if run.abandoned {
                for pending in run.pending.into_iter().filter(|p| !p.probe) {
                    self.route(pending.conn);
                }
            }
        }
    }

    /// A hung run is being killed (SIGKILL, no drain): no new connections
    /// from now on, and the ones it has not answered go to other runs once
    /// it is gone. Node answers `newconn` before it reads the connection,
    /// and a killed process runs no more code, so no other reader can
    /// have touched them.
    pub fn abandon(&mut self, gen: Gen) {
        self.set_eligible(gen, false);
        if let Some(run) = self.runs.get_mut(&gen) {
            run.abandoned = true;
        }
    }

    /// The message number for the next message to a run.
    fn next_seq(&mut self, gen: Gen) -> u64 {
        self.runs.get_mut(&gen).map_or(0, |r| {
            r.next_seq += 1;
            r.next_seq
        })
    }

    /// `server.listen()` in a worker: create the app's listener for this key
    /// once, answer with its address (round robin) or the socket (shared).
    pub fn query_server(&mut self, gen: Gen, q: &QueryServer) {
        let Some(run) = self.runs.get_mut(&gen) else {
            tracing::debug!("queryServer from run {gen}, which has no channel here");
            return;
        };
        let app_name = Arc::clone(&run.app);
        let link = Arc::clone(&run.link);
        let key = q.key();
        let Some(ports) = self.apps.get_mut(&app_name) else {
            return;
        };
        let shared = ports.policy.shared_streams;
        if let Some(l) = ports.listeners.get(&key) {
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
            match open_listener(
                q,
                &app_name,
                &key,
                shared,
                &ports.peek,
                self.conn_tx.clone(),
            ) {
                Ok(listener) => {
                    ports.listeners.insert(key.clone(), listener);
                }
                Err(e) => {
                    tracing::warn!("App [{app_name}] cannot listen on {key}: {e}");
                    let _ = link.send(cluster::reply_error(
                        q.seq,
                        &key,
                        sockets::errno_of(&e),
                        q.data.clone(),
                        0,
                    ));
                    return;
                }
            }
        }
        let listener = &ports.listeners[&key];
        match &listener.kind {
            ListenerKind::RoundRobin { sockname, .. } => {
                let _ = link.send(cluster::reply_round_robin(
                    q.seq,
                    &key,
                    listener.data.clone(),
                    sockname.clone(),
                    0,
                ));
                if let Some(run) = self.runs.get_mut(&gen) {
                    run.keys.insert(key);
                }
            }
            ListenerKind::Shared {
                socket,
                handle_type,
            } => {
                // Out of fds: the worker's listen() fails instead of hanging.
                let _ = match socket.as_fd().try_clone_to_owned() {
                    Ok(fd) => link.send_handle(
                        cluster::reply_shared(q.seq, &key, listener.data.clone(), 0),
                        *handle_type,
                        fd,
                    ),
                    Err(e) => link.send(cluster::reply_error(
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

    /// Connections accepted by each worker's live runs (`/metrics`); a
    /// run's count goes with it, as a process's counters do.
    #[must_use]
    pub fn handed_off(&self) -> HashMap<u32, u64> {
        let mut by_worker = HashMap::new();
        for run in self.runs.values() {
            *by_worker.entry(run.pm_id).or_insert(0) += run.handed_off;
        }
        by_worker
    }

    /// A run joins `key` as `query_server` would, without a socket (tests).
    #[cfg(test)]
    fn join_key(&mut self, gen: Gen, key: &str) {
        if let Some(run) = self.runs.get_mut(&gen) {
            run.keys.insert(key.to_owned());
        }
    }

    /// Whether the run may get new connections now (tests).
    #[cfg(test)]
    pub(crate) fn is_eligible(&self, gen: Gen) -> bool {
        self.runs.get(&gen).is_some_and(|r| r.eligible)
    }

    /// The worker closed its server for `key`.
    pub fn closed_key(&mut self, gen: Gen, key: &str) {
        if let Some(run) = self.runs.get_mut(&gen) {
            run.keys.remove(key);
        }
    }

    /// A new connection: give it to one of its app's workers, or keep it waiting.
    pub fn route(&mut self, conn: Conn) {
        if let Err(conn) = self.try_route(conn) {
            if let Some(ports) = self.apps.get_mut(&conn.app) {
                if ports.waiting.len() >= MAX_WAITING_CONNS {
                    ports.waiting.pop_front();
                }
                ports.waiting.push_back(conn);
            }
        }
    }

    /// Give `conn` to a run that can take it now (sticky: queue it on its
    /// run), or hand it back. A connection of a deleted app is dropped.
    fn try_route(&mut self, conn: Conn) -> Result<(), Conn> {
        let Some(ports) = self.apps.get_mut(&conn.app) else {
            return Ok(());
        };
        if ports.policy.sticky.is_on() {
            let Some(gen) = sticky_pick(ports, &self.runs, &conn) else {
                return Err(conn);
            };
            let has_room = self.runs.get(&gen).is_some_and(RunPorts::has_room);
            if has_room {
                self.hand_over(gen, conn);
            } else if let Some(run) = self.runs.get_mut(&gen) {
                run.queued.push_back(conn);
            }
            return Ok(());
        }
        let n = ports.eligible.len();
        let start = ports.rr_cursor;
        let pick = (0..n).map(|i| (start + i) % n).find(|&i| {
            self.runs
                .get(&ports.eligible[i].1)
                .is_some_and(|r| r.can_take(&conn.key) && r.has_room())
        });
        let Some(pos) = pick else {
            return Err(conn);
        };
        ports.rr_cursor = pos + 1;
        let gen = ports.eligible[pos].1;
        self.hand_over(gen, conn);
        Ok(())
    }

    /// Send `newconn` with the connection; keep our share until it answers.
    /// A channel that ended just now sends the connection back to routing.
    fn hand_over(&mut self, gen: Gen, conn: Conn) {
        let seq = self.next_seq(gen);
        let Some(run) = self.runs.get_mut(&gen) else {
            return self.route(conn);
        };
        let sent = run
            .link
            .send_handle_line(
                rpm2_node_ipc::handoff::newconn_line(&conn.key, seq),
                Arc::clone(&conn.fd),
            )
            .is_ok();
        if sent {
            run.pending.push_back(PendingConn {
                seq,
                conn,
                probe: false,
            });
        } else {
            // Its channel is closed: it takes nothing more (no loop).
            self.set_eligible(gen, false);
            self.route(conn);
        }
    }

    /// The listener key of `port` that run `gen` has joined.
    fn key_on(&self, gen: Gen, port: u16) -> Option<&String> {
        let port = port.to_string();
        self.runs.get(&gen)?.keys.iter().find(|key| {
            // `${address}:${port}:${addressType}:${fd}`; the address may hold colons.
            key.rsplit(':').nth(2) == Some(port.as_str())
        })
    }

    /// The worker answered a `newconn`.
    pub fn answered(&mut self, gen: Gen, ack: u64, accepted: bool) {
        let Some(run) = self.runs.get_mut(&gen) else {
            return;
        };
        let Some(pos) = run.pending.iter().position(|p| p.seq == ack) else {
            tracing::debug!("answer to an unknown newconn {ack} from run {gen}");
            return;
        };
        let Some(pending) = run.pending.remove(pos) else {
            return;
        };
        // The daemon's own probes are no clients' connections.
        run.handed_off += u64::from(accepted && !pending.probe);
        let next = run.queued.pop_front();
        let app = Arc::clone(&pending.conn.app);
        if !accepted && !pending.probe {
            let mut conn = pending.conn;
            conn.refusals += 1;
            if conn.refusals < MAX_REFUSALS {
                self.route(conn);
            }
        }
        // Accepted: dropping `pending` closes our share; the worker has its own.
        match next {
            Some(conn) => self.hand_over(gen, conn),
            None => self.drain_waiting(&app),
        }
    }

    /// Hand waiting connections to whichever runs are free now, oldest
    /// first; stop at the first one nobody can take.
    fn drain_waiting(&mut self, app: &str) {
        loop {
            let Some(conn) = self.apps.get_mut(app).and_then(|a| a.waiting.pop_front()) else {
                return;
            };
            if let Err(conn) = self.try_route(conn) {
                if let Some(a) = self.apps.get_mut(app) {
                    a.waiting.push_front(conn);
                }
                return;
            }
        }
    }
}

/// Sticky routing: the client's hash picks one of the app's workers (all
/// of them, live or not), so a worker that dies moves only its own clients;
/// while it is away they go to a live run by the same hash.
fn sticky_pick(ports: &AppPorts, runs: &HashMap<Gen, RunPorts>, conn: &Conn) -> Option<Gen> {
    let live: Vec<(u32, Gen)> = ports
        .eligible
        .iter()
        .copied()
        .filter(|(_, g)| runs.get(g).is_some_and(|r| r.can_take(&conn.key)))
        .collect();
    if live.is_empty() {
        return None;
    }
    let hash = client_hash(conn);
    let own = (!ports.workers.is_empty())
        .then(|| ports.workers[slot(hash, ports.workers.len())])
        .and_then(|pm_id| live.iter().find(|(id, _)| *id == pm_id));
    Some(own.map_or_else(|| live[slot(hash, live.len())].1, |(_, g)| *g))
}

/// `hash mod len` as an index (`len` > 0).
fn slot(hash: u64, len: usize) -> usize {
    usize::try_from(hash % u64::try_from(len).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// The sticky hash of a connection: its forwarded client address (hashed as
/// the same address connecting directly would be), else its peer address.
fn client_hash(conn: &Conn) -> u64 {
    match conn.forwarded.as_deref() {
        None => sticky_hash(conn.peer),
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => sticky_hash(Some(ip)),
            Err(_) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                text.hash(&mut h);
                h.finish()
            }
        },
    }
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

#[path = "primary_handover.rs"]
mod handover;
// Health probes and hung runs (`supervisor/probe.rs`, `health.rs`).
#[path = "primary_health.rs"]
mod health;

#[cfg(test)]
#[path = "primary_tests.rs"]
mod tests;
