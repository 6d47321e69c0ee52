//! The watchdog and the health transitions: a hung worker is replaced
//! (cluster: its successor first), a run whose readiness never passed
//! fails the reload it was for.

use nix::sys::signal::Signal;
use rpm2_proto::{AppSpec, WorkerStatus};
use serde_json::json;

use super::harness::*;
use crate::link::fake::Sent;
use crate::supervisor::worker::{WorkerEvent, WorkerState};
use crate::supervisor::Msg;
use crate::Gen;

fn node_app(mut spec: AppSpec, timeout_ms: u64) -> AppSpec {
    spec.node = true;
    spec.interpreter = Some(std::path::PathBuf::from("/usr/bin/node"));
    spec.unresponsive_timeout_ms = timeout_ms;
    spec
}

fn pings(h: &Harness, gen: Gen) -> Vec<u64> {
    h.link(gen)
        .sent()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Message(m) if m["cmd"] == "NODE_RPM2_PING" => m["seq"].as_u64(),
            _ => None,
        })
        .collect()
}

async fn hello(h: &mut Harness, gen: Gen) {
    h.says(gen, json!({"cmd": "NODE_RPM2_HELLO", "version": 1}))
        .await;
}

async fn tick(h: &mut Harness) {
    h.actor.handle(Msg::WatchdogTick);
    h.settle().await;
}

#[tokio::test(start_paused = true)]
async fn a_cluster_worker_that_stops_answering_is_replaced_successor_first() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, node_app(cluster_app("web", 1), 1500)).await;
    hello(&mut h, old).await;
    tick(&mut h).await;
    assert_eq!(pings(&h, old), [1]);
    h.advance(3).await;
    h.says(old, json!({"cmd": "NODE_RPM2_PONG", "seq": 1}))
        .await;
    let lag = h.actor.infos(Some(&[id]))[0].pm2_env.event_loop_lag_ms;
    assert_eq!(lag, Some(3));
    // Ping 2 is never answered: one ping in flight, the lag grows.
    tick(&mut h).await;
    h.advance(1000).await;
    tick(&mut h).await;
    assert_eq!(pings(&h, old), [1, 2]);
    assert_eq!(h.spawns(), 1, "not yet: 1000 ms < 1500 ms");
    h.advance(600).await;
    tick(&mut h).await;
    assert_eq!(h.spawns(), 2);
    let new = h.newest_run();
    assert_eq!(h.state(id), WorkerState::Launching { run: new });
    assert_eq!(
        h.signals_to(h.pid(old)),
        [Signal::SIGKILL],
        "no drain: it is hung"
    );
    assert_eq!(h.restarts(id), (1, 0));
    let info = &h.actor.infos(Some(&[id]))[0];
    assert_eq!(
        info.pm2_env.restart_reason.as_deref(),
        Some("event loop unresponsive for 1600 ms")
    );
    // Its exit is expected; the successor is the worker's.
    h.exit(old, None, Some(9)).await;
    assert_eq!(h.state(id), WorkerState::Launching { run: new });
    h.says(new, json!("ready")).await;
    assert_eq!(h.state(id), WorkerState::Online { run: new });
    assert_eq!(h.restarts(id), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_hung_fork_worker_is_killed_then_started_again() {
    let mut h = Harness::new();
    let id = h.start(node_app(fork_app("f"), 1000)).await[0];
    let old = h.serving(id);
    hello(&mut h, old).await;
    tick(&mut h).await;
    h.advance(1000).await;
    tick(&mut h).await;
    assert_eq!(h.signals_to(h.pid(old)), [Signal::SIGKILL]);
    assert_eq!(h.spawns(), 1, "the port is its own: it goes first");
    h.exit(old, None, Some(9)).await;
    assert_eq!(h.spawns(), 2);
    assert_eq!(h.status(id), WorkerStatus::Online);
    assert_eq!(h.restarts(id), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn no_ping_without_a_preload_hello_or_with_a_zero_timeout() {
    let mut h = Harness::new();
    let (_, quiet) = ready_cluster_worker(&mut h, node_app(cluster_app("a", 1), 1000)).await;
    let (_, off) = ready_cluster_worker(&mut h, node_app(cluster_app("b", 1), 0)).await;
    hello(&mut h, off).await;
    for _ in 0..3 {
        tick(&mut h).await;
        h.advance(1000).await;
    }
    assert!(pings(&h, quiet).is_empty() && pings(&h, off).is_empty());
    assert_eq!(h.spawns(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_liveness_reloads_a_cluster_worker_which_serves_until_the_successor_is_ready() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, node_app(cluster_app("l", 1), 0)).await;
    h.actor.worker_event(
        id,
        WorkerEvent::Replace {
            run: old,
            reason: "liveness probe failed 3 times".into(),
            hung: false,
        },
        None,
    );
    h.settle().await;
    let new = h.newest_run();
    assert_eq!(
        h.state(id),
        WorkerState::Reloading {
            run: old,
            successor: new
        }
    );
    assert!(h.signals_to(h.pid(old)).is_empty());
    h.says(new, json!("ready")).await;
    assert_eq!(h.state(id), WorkerState::Online { run: new });
    assert_eq!(h.restarts(id), (1, 0));
    // A second report about the old run changes nothing.
    h.actor.worker_event(
        id,
        WorkerEvent::Replace {
            run: old,
            reason: "late".into(),
            hung: true,
        },
        None,
    );
    assert_eq!(h.state(id), WorkerState::Online { run: new });
}

#[tokio::test(start_paused = true)]
async fn a_successor_whose_readiness_never_passed_fails_the_reload_and_the_old_run_serves() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, node_app(cluster_app("r", 1), 0)).await;
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    h.actor.worker_event(
        id,
        WorkerEvent::RunNotReady {
            run: new,
            reason: "readiness probe did not pass".into(),
        },
        None,
    );
    h.settle().await;
    assert_eq!(h.state(id), WorkerState::Online { run: old });
    let err = answered(&mut reloaded).unwrap().unwrap_err();
    assert!(
        err.message.contains("readiness probe did not pass"),
        "{err:?}"
    );
    assert!(
        err.message.contains("the old process keeps serving"),
        "{err:?}"
    );
    assert!(h.phase(new).exit_expected(), "the successor is stopped");
}

#[tokio::test(start_paused = true)]
async fn with_a_readiness_probe_listening_is_not_ready_and_listen_timeout_fails_the_reload() {
    use crate::supervisor::run::RunPhase;
    use rpm2_proto::health::{Probe, ProbeCheck};
    let mut h = Harness::new();
    let mut spec = node_app(cluster_app("g", 1), 0);
    spec.wait_ready = false;
    // The fake worker never asks to listen, so this never passes.
    spec.readiness_probe = Some(Probe::new(ProbeCheck::TcpSocket { port: 8000 }));
    let id = h.start(spec).await[0];
    let old = h.serving(id);
    online_and_listening(&mut h, old).await;
    assert_eq!(h.status(id), WorkerStatus::Online);
    assert_eq!(h.phase(old), RunPhase::Online, "listening does not count");
    h.advance(3000).await;
    assert_eq!(h.phase(old), RunPhase::Online, "nor does listen_timeout");
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    online_and_listening(&mut h, new).await;
    h.advance(3000).await;
    assert_eq!(h.state(id), WorkerState::Online { run: old });
    let err = answered(&mut reloaded).unwrap().unwrap_err();
    assert!(
        err.message.contains(
            "the readiness probe did not pass within listen_timeout (3000 ms): the worker does not listen on port 8000"
        ),
        "{err:?}"
    );
}

async fn online_and_listening(h: &mut Harness, run: Gen) {
    h.says(
        run,
        json!({"cmd": "NODE_CLUSTER", "act": "online", "seq": 0}),
    )
    .await;
    h.says(
        run,
        json!({"cmd": "NODE_CLUSTER", "act": "listening", "seq": 1, "addressType": 4, "port": 8000, "address": null}),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn with_autorestart_false_a_hung_worker_is_only_killed() {
    let mut h = Harness::new();
    let mut spec = node_app(fork_app("once"), 1000);
    spec.autorestart = false;
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    hello(&mut h, run).await;
    tick(&mut h).await;
    h.advance(1000).await;
    tick(&mut h).await;
    assert_eq!(h.signals_to(h.pid(run)), [Signal::SIGKILL]);
    h.exit(run, None, Some(9)).await;
    assert_eq!(h.status(id), WorkerStatus::Stopped);
    assert_eq!(h.spawns(), 1);
}
