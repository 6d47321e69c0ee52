//! `@pm2/io` messages and `trigger` through the real actor.

use rpm2_proto::{ErrorCode, Event, Target};
use serde_json::{json, Value};

use super::harness::*;
use crate::link::fake::Sent;
use crate::supervisor::axm_book::Triggered;
use crate::supervisor::Call;
use crate::Gen;

type TriggerAnswer = tokio::sync::oneshot::Receiver<Result<Triggered, rpm2_proto::RpcError>>;

fn node(mut spec: rpm2_proto::AppSpec) -> rpm2_proto::AppSpec {
    spec.node = true;
    spec
}

fn monitor(data: Value) -> Value {
    json!({"type": "axm:monitor", "data": data})
}

fn action(name: &str) -> Value {
    json!({"type": "axm:action", "data": {"action_name": name, "action_type": "custom", "arity": 1}})
}

fn reply(name: &str, ret: Value) -> Value {
    json!({"type": "axm:reply", "data": {"action_name": name, "at": 1, "return": ret}})
}

fn axm(h: &Harness, pm_id: u32) -> rpm2_proto::info::Axm {
    h.actor.table.workers[&pm_id].axm.clone()
}

fn messages(h: &Harness, gen: Gen) -> Vec<Value> {
    h.link(gen)
        .sent()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn trigger(h: &mut Harness, target: &str, action: &str, params: Option<Value>) -> TriggerAnswer {
    let target: Target = target.parse().unwrap();
    h.call(|reply| Call::Trigger {
        target,
        action: action.into(),
        params,
        reply,
    })
}

#[tokio::test(start_paused = true)]
async fn metrics_actions_and_options_fill_the_worker_and_an_exit_empties_them() {
    let mut h = Harness::new();
    let id = h.start(node(fork_app("io"))).await[0];
    let run = h.serving(id);
    h.says(
        run,
        monitor(json!({"hits": {"value": 1, "historic": true}})),
    )
    .await;
    h.says(
        run,
        monitor(json!({"hits": {"value": 2, "historic": true}})),
    )
    .await;
    h.says(run, action("hello")).await;
    h.says(run, action("hello")).await;
    h.says(
        run,
        json!({"type": "axm:option:configuration", "data": {"error": true}}),
    )
    .await;
    let data = axm(&h, id);
    assert_eq!(data.axm_monitor["hits"]["value"], 2);
    assert_eq!(data.axm_actions.len(), 1);
    assert_eq!(data.axm_options["error"], true);

    // pm2: the exit empties metrics and actions, keeps the options…
    let mut restarted = h.restart(id);
    h.settle().await;
    h.exit(run, Some(0), None).await;
    let next = h.serving(id);
    assert_ne!(next, run);
    // …and a new process starts from nothing.
    assert_eq!(axm(&h, id), rpm2_proto::info::Axm::default());
    assert!(answered(&mut restarted).is_some());
    // A late message of the old process changes nothing.
    h.says(run, monitor(json!({"late": {"value": 1}}))).await;
    assert!(axm(&h, id).axm_monitor.is_empty());
}

#[tokio::test(start_paused = true)]
async fn during_a_reload_the_successor_reports() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, cluster_app("web", 1)).await;
    h.says(old, action("old-action")).await;
    let _reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    assert_ne!(new, old);
    assert!(axm(&h, id).axm_actions.is_empty());
    h.says(new, action("new-action")).await;
    h.says(old, action("stale")).await;
    h.says(old, monitor(json!({"stale": {"value": 1}}))).await;
    let data = axm(&h, id);
    assert_eq!(data.axm_actions, vec![action("new-action")["data"].clone()]);
    assert!(data.axm_monitor.is_empty());
    // The old run's exit leaves the successor's data alone.
    h.says(new, json!("ready")).await;
    h.exit(old, Some(0), None).await;
    assert_eq!(axm(&h, id).axm_actions.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_trigger_sends_the_action_and_answers_with_the_replies() {
    let mut h = Harness::new();
    let ids = h.start(node(cluster_app("api", 2))).await;
    let runs: Vec<Gen> = ids.iter().map(|&id| h.serving(id)).collect();
    for &run in &runs {
        h.says(run, json!("ready")).await;
        h.says(run, action("hello")).await;
    }
    let mut bus = h.actor.bus.subscribe();

    let mut answer = trigger(&mut h, "api", "hello", None);
    h.settle().await;
    // pm2 sends the bare name when there are no params.
    for &run in &runs {
        assert_eq!(messages(&h, run).last(), Some(&json!("hello")));
    }
    h.says(runs[1], reply("hello", json!({"n": 1}))).await;
    assert!(answer.try_recv().is_err(), "waits for every worker");
    h.says(runs[0], reply("hello", json!({"n": 0}))).await;
    let (sent, replies) = answer.try_recv().unwrap().unwrap();
    assert_eq!(sent.len(), 2);
    let got: Vec<(u32, Value)> = replies
        .iter()
        .map(|r| (r.process.pm_id, r.data["return"].clone()))
        .collect();
    assert_eq!(got, [(ids[1], json!({"n": 1})), (ids[0], json!({"n": 0}))]);
    // Replies reach the bus too (pm2 publishes them); registrations do not.
    let mut published = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        if let Event::ProcessMsg { msg_type, .. } = ev {
            published.push(msg_type);
        }
    }
    assert_eq!(
        published,
        [Some("axm:reply".to_owned()), Some("axm:reply".to_owned())]
    );

    // With params: the whole command, as pm2 sends it.
    let _answer = trigger(&mut h, &ids[0].to_string(), "hello", Some(json!("x")));
    h.settle().await;
    assert_eq!(
        messages(&h, runs[0]).last(),
        Some(&json!({"msg": "hello", "opts": "x", "id": ids[0]}))
    );
    // pm2 empties the action's output when triggered by id.
    assert_eq!(axm(&h, ids[0]).axm_actions[0]["output"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn trigger_errors_are_pm2s() {
    let mut h = Harness::new();
    let id = h.start(node(fork_app("io"))).await[0];
    let run = h.serving(id);
    h.says(run, action("hello")).await;

    let err = trigger(&mut h, &id.to_string(), "nope", None)
        .try_recv()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.message, "Action doesn't exist nope for io");
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = trigger(&mut h, "7", "hello", None)
        .try_recv()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.message, "7 id unknown");
    // By name: nobody has it, nobody is asked (the CLI says so and fails).
    let (sent, replies) = trigger(&mut h, "io", "nope", None)
        .try_recv()
        .unwrap()
        .unwrap();
    assert!(sent.is_empty() && replies.is_empty());
    assert!(messages(&h, run).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_trigger_ends_when_its_workers_exit_or_its_wait_is_over() {
    let mut h = Harness::new();
    let id = h.start(node(fork_app("io"))).await[0];
    let run = h.serving(id);
    h.says(run, action("hello")).await;
    let mut answer = trigger(&mut h, "io", "hello", None);
    h.settle().await;
    h.exit(run, Some(1), None).await;
    let (sent, replies) = answer.try_recv().unwrap().unwrap();
    assert_eq!((sent.len(), replies.len()), (1, 0));

    let run = h.serving(id);
    h.says(run, action("slow")).await;
    let mut answer = trigger(&mut h, "all", "slow", None);
    h.settle().await;
    assert!(answer.try_recv().is_err());
    h.advance(super::super::axm_book::TRIGGER_WAIT_MS).await;
    let (sent, replies) = answer.try_recv().unwrap().unwrap();
    assert_eq!((sent.len(), replies.len()), (1, 0));
    assert!(h.actor.axm_pending() == 0);
}

#[tokio::test(start_paused = true)]
async fn bad_axm_messages_are_dropped_and_touch_no_other_worker() {
    let mut h = Harness::new();
    let a = h.start(node(fork_app("a"))).await[0];
    let b = h.start(node(fork_app("b"))).await[0];
    let (ra, rb) = (h.serving(a), h.serving(b));
    h.says(rb, monitor(json!({"m": {"value": 1}}))).await;
    h.says(rb, action("hello")).await;
    let before = axm(&h, b);
    for bad in [
        monitor(json!("a string")),
        monitor(json!([1, 2, 3])),
        json!({"type": "axm:action", "data": {"no": "name"}}),
        json!({"type": "axm:action", "data": 42}),
        json!({"type": "axm:option:configuration", "data": [1]}),
        json!({"type": "axm:reply", "data": "stray"}),
        json!({"type": "axm:monitor", "data": null}),
    ] {
        h.says(ra, bad).await;
    }
    let mut huge = serde_json::Map::new();
    for i in 0..50_000 {
        huge.insert(format!("m{i}"), json!({"value": i}));
    }
    h.says(ra, monitor(Value::Object(huge))).await;
    assert_eq!(axm(&h, b), before);
    let data = axm(&h, a);
    assert!(data.axm_actions.is_empty() && data.axm_options.is_empty());
    assert!(data.axm_monitor.len() < 50_000);
    // The worker still works, and still reports what is well formed.
    h.says(ra, action("ok")).await;
    assert_eq!(axm(&h, a).axm_actions.len(), 1);
}
