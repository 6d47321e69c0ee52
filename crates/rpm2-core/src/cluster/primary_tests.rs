//! Routing without processes: fake links record each hand-off.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::*;
use crate::link::fake::{FakeLink, Sent};

const KEY: &str = "127.0.0.1:8000:4:0";

struct Setup {
    primary: Primary,
    links: HashMap<Gen, Arc<FakeLink>>,
}

fn setup(policy: Policy, workers: &[u32]) -> Setup {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut primary = Primary::new(tx);
    primary.set_app("app", policy, workers.to_vec());
    Setup {
        primary,
        links: HashMap::new(),
    }
}

impl Setup {
    /// A run of worker `pm_id` that joined the key and takes connections.
    fn run(&mut self, gen: Gen, pm_id: u32) {
        let link = FakeLink::new();
        self.primary.attach(gen, "app", pm_id, link.clone());
        self.primary.join_key(gen, KEY);
        self.primary.set_eligible(gen, true);
        self.links.insert(gen, link);
    }

    fn conn_from(&mut self, last_octet: u8) {
        self.conn_via(last_octet, None);
    }

    /// A connection from peer `10.0.0.<last_octet>` (a proxy) whose first
    /// request says the client is `forwarded`.
    fn conn_via(&mut self, last_octet: u8, forwarded: Option<&str>) {
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        self.primary.route(Conn {
            fd: Arc::new(fd),
            peer: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet))),
            forwarded: forwarded.map(Into::into),
            app: Arc::from("app"),
            key: Arc::from(KEY),
            refusals: 0,
        });
    }

    /// How many hand-offs each run got.
    fn handed(&self, gen: Gen) -> usize {
        self.links[&gen]
            .sent()
            .iter()
            .filter(|s| matches!(s, Sent::Conn(_)))
            .count()
    }

    fn waiting(&self) -> usize {
        self.primary.apps["app"].waiting.len()
    }

    /// Answer every pending hand-off of `gen`.
    fn answer_all(&mut self, gen: Gen, accepted: bool) {
        let seqs: Vec<u64> = self.primary.runs[&gen]
            .pending
            .iter()
            .map(|p| p.seq)
            .collect();
        for seq in seqs {
            self.primary.answered(gen, seq, accepted);
        }
    }
}

#[test]
fn round_robin_alternates_and_skips_draining_runs() {
    let mut s = setup(Policy::default(), &[0, 1, 2]);
    s.run(10, 0);
    s.run(11, 1);
    s.run(12, 2);
    s.primary.set_eligible(11, false); // draining
    for _ in 0..4 {
        s.conn_from(1);
    }
    assert_eq!((s.handed(10), s.handed(11), s.handed(12)), (2, 0, 2));
}

#[test]
fn busy_runs_are_skipped_and_waiting_connections_go_out_when_one_answers() {
    let mut s = setup(Policy::default(), &[0]);
    s.run(10, 0);
    for _ in 0..MAX_PENDING_CONNS + 3 {
        s.conn_from(1);
    }
    assert_eq!(s.handed(10), MAX_PENDING_CONNS);
    assert_eq!(s.waiting(), 3);
    s.answer_all(10, true);
    assert_eq!(s.handed(10), MAX_PENDING_CONNS + 3);
    assert_eq!(s.waiting(), 0);
}

#[test]
fn connections_wait_for_a_run_and_go_to_the_first_that_comes_online() {
    let mut s = setup(Policy::default(), &[0]);
    s.conn_from(1);
    s.conn_from(2);
    assert_eq!(s.waiting(), 2);
    let link = FakeLink::new();
    s.primary.attach(10, "app", 0, link.clone());
    s.primary.join_key(10, KEY);
    s.links.insert(10, link);
    assert_eq!(s.handed(10), 0, "not eligible yet");
    s.primary.set_eligible(10, true);
    assert_eq!(s.handed(10), 2);
}

#[test]
fn a_closed_channel_sends_the_connection_to_another_run() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.run(11, 1);
    s.links[&10].close();
    for _ in 0..3 {
        s.conn_from(1);
    }
    assert_eq!((s.handed(10), s.handed(11)), (0, 3));
}

#[test]
fn a_refused_connection_is_routed_again() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.run(11, 1);
    s.conn_from(1); // to 10
    s.answer_all(10, false);
    assert_eq!(s.handed(11), 1, "refused by 10, handed to 11");
}

#[test]
fn only_accepted_connections_count_as_handed_off() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.run(11, 1);
    s.conn_from(1); // to 10, refused, then to 11
    s.answer_all(10, false);
    s.answer_all(11, true);
    s.conn_from(2); // to 10 (round robin goes on)
    s.answer_all(10, true);
    assert_eq!(s.primary.handed_off(), HashMap::from([(0, 1), (1, 1)]));
    s.primary.detach(10);
    assert_eq!(s.primary.handed_off(), HashMap::from([(1, 1)]));
}

/// Runs 10, 11 and 12 of workers 0, 1 and 2 of a sticky app.
const STICKY_RUNS: [Gen; 3] = [10, 11, 12];

fn sticky_setup(sticky: Sticky) -> Setup {
    let mut s = setup(
        Policy {
            sticky,
            shared_streams: false,
        },
        &[0, 1, 2],
    );
    for (pm_id, gen) in (0..).zip(STICKY_RUNS) {
        s.run(gen, pm_id);
    }
    s
}

/// Where each of 30 clients lands, connecting twice (`connect(s, client)`):
/// always one run, and every run gets some clients.
fn sticky_homes(s: &mut Setup, connect: impl Fn(&mut Setup, u8)) -> Vec<Gen> {
    let mut home = Vec::new();
    for client in 0..30u8 {
        let before: Vec<usize> = STICKY_RUNS.iter().map(|g| s.handed(*g)).collect();
        connect(s, client);
        connect(s, client);
        let after: Vec<usize> = STICKY_RUNS.iter().map(|g| s.handed(*g)).collect();
        let got: Vec<usize> = (0..3).filter(|&i| after[i] > before[i]).collect();
        assert_eq!(got.len(), 1, "client {client} stayed on one run");
        assert_eq!(after[got[0]] - before[got[0]], 2);
        home.push(STICKY_RUNS[got[0]]);
        for g in STICKY_RUNS {
            s.answer_all(g, true);
        }
    }
    assert!(
        STICKY_RUNS.iter().all(|g| home.contains(g)),
        "clients spread: {home:?}"
    );
    home
}

#[test]
fn sticky_keeps_a_client_on_its_worker_and_moves_only_a_dead_workers_clients() {
    let mut s = sticky_setup(Sticky::Ip);
    let home = sticky_homes(&mut s, Setup::conn_from);
    // Run 11 dies: its clients move, the others stay.
    s.primary.detach(11);
    for client in 0..30u8 {
        let before: Vec<usize> = [10, 12].iter().map(|g| s.handed(*g)).collect();
        s.conn_from(client);
        let after: Vec<usize> = [10, 12].iter().map(|g| s.handed(*g)).collect();
        let went = if after[0] > before[0] { 10 } else { 12 };
        if home[usize::from(client)] != 11 {
            assert_eq!(went, home[usize::from(client)], "client {client} moved");
        }
        s.answer_all(10, true);
        s.answer_all(12, true);
    }
}

#[test]
fn sticky_queues_on_a_busy_worker_and_requeues_when_it_drains() {
    let mut s = setup(
        Policy {
            sticky: Sticky::Ip,
            shared_streams: false,
        },
        &[0, 1],
    );
    s.run(10, 0);
    s.run(11, 1);
    for _ in 0..MAX_PENDING_CONNS + 2 {
        s.conn_from(7);
    }
    let (a, b) = (s.handed(10), s.handed(11));
    let busy = if a > b { 10 } else { 11 };
    let other = if busy == 10 { 11 } else { 10 };
    assert_eq!((s.handed(busy), s.handed(other)), (MAX_PENDING_CONNS, 0));
    assert_eq!(s.primary.runs[&busy].queued.len(), 2);
    // The busy run is drained: its queue goes to the other run.
    s.primary.set_eligible(busy, false);
    assert_eq!(s.handed(other), 2);
}

#[test]
fn connections_of_a_deleted_app_are_dropped() {
    let mut s = setup(Policy::default(), &[0]);
    s.primary.remove_app("app");
    s.conn_from(1);
    assert!(s.primary.apps.is_empty());
}

#[test]
fn the_waiting_queue_is_bounded() {
    let mut s = setup(Policy::default(), &[0]);
    for _ in 0..MAX_WAITING_CONNS + 5 {
        s.conn_from(1);
    }
    assert_eq!(s.waiting(), MAX_WAITING_CONNS);
}

#[test]
fn policy_follows_env_and_sticky() {
    let mut spec = rpm2_proto::AppSpec::with_defaults(
        "a".into(),
        std::path::PathBuf::from("/x.js"),
        std::path::PathBuf::from("/"),
    );
    spec.env
        .insert(SCHED_POLICY_ENV.to_owned(), "none".to_owned());
    assert!(Policy::of(&spec).shared_streams);
    spec.sticky = Sticky::Ip;
    assert_eq!(
        Policy::of(&spec),
        Policy {
            sticky: Sticky::Ip,
            shared_streams: false
        }
    );
}

#[test]
fn sticky_forwarded_hashes_the_client_behind_one_proxy() {
    let mut s = sticky_setup(Sticky::Forwarded);
    // Every connection comes from the proxy, 10.0.0.1.
    sticky_homes(&mut s, |s, client| {
        s.conn_via(1, Some(&format!("192.0.2.{client}")));
    });
    // A forwarded address hashes as the same address connecting directly.
    let direct = sticky_hash(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0))));
    let via = client_hash(&Conn {
        fd: Arc::new(std::fs::File::open("/dev/null").unwrap().into()),
        peer: None,
        forwarded: Some("10.0.0.0".into()),
        app: Arc::from("app"),
        key: Arc::from(KEY),
        refusals: 0,
    });
    assert_eq!(direct, via);
}

#[test]
fn an_abandoned_run_takes_nothing_more_and_its_unanswered_hand_offs_go_to_others_once_gone() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.conn_from(1);
    s.conn_from(2);
    assert_eq!(s.handed(10), 2);
    s.run(11, 1);
    s.primary.abandon(10);
    s.conn_from(3);
    assert_eq!((s.handed(10), s.handed(11)), (2, 1));
    // Still its own until it is gone: it might yet answer.
    s.primary.detach(10);
    assert_eq!(s.handed(11), 3);
}

#[test]
fn a_crashed_run_loses_what_it_had_not_answered() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.conn_from(1);
    s.run(11, 1);
    s.primary.detach(10);
    assert_eq!(s.handed(11), 0);
}

#[test]
fn a_run_that_is_not_ready_takes_nothing_until_its_probe_passes() {
    let mut s = setup(Policy::default(), &[0]);
    s.run(10, 0);
    s.primary.set_ready(10, false);
    s.conn_from(1);
    assert_eq!((s.handed(10), s.waiting()), (0, 1));
    s.primary.set_ready(10, true);
    assert_eq!(s.handed(10), 1);
}

#[test]
fn a_probe_goes_to_its_run_even_when_not_ready_and_a_refusal_is_not_routed() {
    let mut s = setup(Policy::default(), &[0, 1]);
    s.run(10, 0);
    s.run(11, 1);
    s.primary.set_ready(10, false);
    let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    assert!(s.primary.hand_probe(10, 8000, fd).is_ok());
    let other: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    assert!(
        s.primary.hand_probe(10, 8001, other).is_err(),
        "not listening there"
    );
    assert_eq!(s.handed(10), 1);
    s.answer_all(10, false);
    assert_eq!(s.handed(11), 0);
}
