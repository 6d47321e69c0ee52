//! Draining with the preload, and the fallback without it.

use nix::sys::signal::Signal;
use rpm2_node_ipc::Incoming;
use rpm2_proto::AppSpec;
use serde_json::json;

use super::harness::*;
use crate::link::fake::Sent;
use crate::supervisor::run::{DrainStep, RunPhase};
use crate::supervisor::Msg;
use crate::Gen;

/// A Node app run by an interpreter: it gets the drain preload.
fn node_app(mut spec: AppSpec) -> AppSpec {
    spec.node = true;
    spec.interpreter = Some(std::path::PathBuf::from("/usr/bin/node"));
    spec
}

fn drain_messages(h: &Harness, gen: Gen) -> Vec<serde_json::Value> {
    h.link(gen)
        .sent()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Message(m) if m["cmd"] == "NODE_RPM2_DRAIN" => Some(m),
            _ => None,
        })
        .collect()
}

fn sent_disconnect(h: &Harness, gen: Gen) -> bool {
    h.link(gen)
        .sent()
        .iter()
        .any(|s| matches!(s, Sent::Message(m) if m["act"] == "disconnect"))
}

#[tokio::test(start_paused = true)]
async fn reload_with_the_preload_drains_then_disconnects_then_interrupts() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, node_app(cluster_app("web", 1))).await;
    assert!(h.os.lock().unwrap().preloaded.contains(&old));
    h.says(old, json!({"cmd": "NODE_RPM2_HELLO", "version": 1}))
        .await;
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    h.says(new, json!("ready")).await;
    assert_eq!(
        h.phase(old),
        RunPhase::Draining {
            step: DrainStep::Preload
        }
    );
    assert_eq!(
        drain_messages(&h, old),
        [json!({"cmd": "NODE_RPM2_DRAIN", "linger": 800})]
    );
    // No blind grace: it waits for the worker's word.
    h.advance(500).await;
    assert!(!sent_disconnect(&h, old));
    h.says(old, json!({"cmd": "NODE_RPM2_DRAINED", "inflight": 0}))
        .await;
    assert!(sent_disconnect(&h, old));
    assert!(h.signals_to(h.pid(old)).is_empty());
    h.actor.handle(Msg::Ipc {
        gen: old,
        incoming: Incoming::Closed,
    });
    h.settle().await;
    assert_eq!(h.signals_to(h.pid(old)), vec![Signal::SIGINT]);
    h.exit(old, Some(0), None).await;
    assert_eq!(answered(&mut reloaded), Some(Ok(())));
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_never_ends_is_interrupted_at_kill_timeout() {
    let mut h = Harness::new();
    let (id, run) = ready_cluster_worker(&mut h, node_app(cluster_app("ws", 1))).await;
    h.says(run, json!({"cmd": "NODE_RPM2_HELLO"})).await;
    let pid = h.pid(run);
    let _stopped = h.stop(id);
    h.settle().await;
    h.advance(1_599).await;
    assert!(h.signals_to(pid).is_empty(), "an upgraded connection stays");
    h.advance(1).await;
    assert_eq!(h.signals_to(pid), vec![Signal::SIGINT]);
}

#[tokio::test(start_paused = true)]
async fn fork_stop_with_the_preload_interrupts_once_drained() {
    let mut h = Harness::new();
    let id = h.start(node_app(fork_app("api"))).await[0];
    let run = h.serving(id);
    h.says(run, json!({"cmd": "NODE_RPM2_HELLO", "version": 1}))
        .await;
    let pid = h.pid(run);
    let mut stopped = h.stop(id);
    h.settle().await;
    assert_eq!(drain_messages(&h, run).len(), 1);
    assert!(
        h.signals_to(pid).is_empty(),
        "in-flight requests finish first"
    );
    h.says(run, json!({"cmd": "NODE_RPM2_DRAINED"})).await;
    assert_eq!(h.signals_to(pid), vec![Signal::SIGINT]);
    assert!(!sent_disconnect(&h, run));
    h.exit(run, None, Some(2)).await;
    assert_eq!(answered(&mut stopped), Some(Ok(())));
}

#[tokio::test(start_paused = true)]
async fn without_a_hello_or_with_a_failed_preload_the_old_drain_is_used() {
    for hello in [
        None,
        Some(json!({"cmd": "NODE_RPM2_HELLO", "error": "boom"})),
    ] {
        let mut h = Harness::new();
        let (id, run) = ready_cluster_worker(&mut h, node_app(cluster_app("web", 1))).await;
        if let Some(msg) = hello {
            h.says(run, msg).await;
        }
        let _stopped = h.stop(id);
        h.settle().await;
        assert!(drain_messages(&h, run).is_empty());
        assert_eq!(
            h.phase(run),
            RunPhase::Draining {
                step: DrainStep::Grace
            }
        );
        h.advance(100).await;
        assert!(sent_disconnect(&h, run));
    }
}

#[tokio::test(start_paused = true)]
async fn in_flight_requests_show_in_the_worker_info_and_drain_false_opts_out() {
    let mut h = Harness::new();
    let (id, run) = ready_cluster_worker(&mut h, node_app(cluster_app("web", 1))).await;
    assert_eq!(
        h.actor.infos(Some(&[id]))[0].pm2_env.inflight_requests,
        None
    );
    h.says(run, json!({"cmd": "NODE_RPM2_STATS", "inflight": 3}))
        .await;
    let info = &h.actor.infos(Some(&[id]))[0];
    assert_eq!(info.pm2_env.inflight_requests, Some(3));
    assert!(info.pm2_env.drain);

    let mut spec = node_app(cluster_app("plain", 1));
    spec.drain = false;
    let (other, run) = ready_cluster_worker(&mut h, spec).await;
    assert!(!h.os.lock().unwrap().preloaded.contains(&run));
    assert!(!h.actor.infos(Some(&[other]))[0].pm2_env.drain);
}
