//! Property test (issue 15): whatever its workers say on their channels,
//! in whatever order with exits, reloads, triggers and time passing, the
//! real actor never panics and still answers. Messages are drawn near the
//! shapes it parses (cluster, drain preload, `@pm2/io`) and at random.
//! `queryServer` asks only for port 0 on 127.0.0.1 (or UDP), so the test
//! binds nothing another test could want.

use proptest::prelude::*;
use rpm2_proto::Target;
use serde_json::{json, Map, Value};

use super::harness::*;
use crate::supervisor::Call;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "\\PC{0,8}",
                    Just("value".to_owned()),
                    Just("action_name".to_owned())
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A number as a worker might send one: small, huge, negative or not one.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..4).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!("1")),
        Just(Value::Null),
    ]
}

fn cluster_message() -> impl Strategy<Value = Value> {
    let act = prop_oneof![
        Just("online"),
        Just("listening"),
        Just("queryServer"),
        Just("close"),
        Just("exitedAfterDisconnect"),
        Just("other"),
    ];
    let address_type = prop_oneof![
        Just(json!(4)),
        Just(json!(6)),
        Just(json!("udp4")),
        Just(json!(9)),
        Just(Value::Null),
    ];
    (
        act,
        number(),
        proptest::option::of(number()),
        proptest::option::of(any::<bool>()),
        address_type,
        number(),
        json_value(),
    )
        .prop_map(|(act, seq, ack, accepted, address_type, backlog, data)| {
            let mut m = Map::new();
            m.insert("cmd".into(), json!("NODE_CLUSTER"));
            m.insert("act".into(), json!(act));
            m.insert("seq".into(), seq);
            if let Some(ack) = ack {
                m.insert("ack".into(), ack);
            }
            if let Some(accepted) = accepted {
                m.insert("accepted".into(), json!(accepted));
            }
            m.insert("address".into(), json!("127.0.0.1"));
            m.insert("port".into(), json!(0));
            m.insert("addressType".into(), address_type);
            m.insert("backlog".into(), backlog);
            m.insert("data".into(), data);
            m.insert("key".into(), json!("127.0.0.1:0:4:undefined"));
            Value::Object(m)
        })
}

fn preload_message() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::option::of("\\PC{0,8}")
            .prop_map(|e| json!({"cmd": "NODE_RPM2_HELLO", "error": e})),
        number().prop_map(|n| json!({"cmd": "NODE_RPM2_STATS", "inflight": n})),
        Just(json!({"cmd": "NODE_RPM2_DRAINED"})),
    ]
}

fn axm_message() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("axm:monitor"),
        Just("axm:action"),
        Just("axm:option:configuration"),
        Just("axm:option:setPID"),
        Just("axm:reply"),
        Just("process:msg"),
        Just("process:exception"),
        Just("human:event"),
    ];
    (kind, json_value()).prop_map(|(kind, data)| json!({"type": kind, "data": data}))
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => cluster_message(),
        1 => preload_message(),
        2 => axm_message(),
        1 => json_value(),
        1 => Just(json!("ready")),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Worker `n` (of the table's runs, in order) says something.
    Says(usize, Value),
    /// Its process exits.
    Exits(usize),
    Reload(u32),
    Trigger(String),
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0usize..4, message()).prop_map(|(n, m)| Step::Says(n, m)),
        1 => (0usize..4).prop_map(Step::Exits),
        1 => (0u32..3).prop_map(Step::Reload),
        1 => prop_oneof![Just("km:heapdump".to_owned()), "\\PC{0,8}"].prop_map(Step::Trigger),
        1 => (0u64..5000).prop_map(Step::Advance),
    ]
}

async fn play(steps: Vec<Step>) {
    let mut h = Harness::new();
    let mut fork = fork_app("solo");
    fork.node = true;
    h.start(fork).await;
    h.start(cluster_app("duo", 2)).await;
    for step in steps {
        let runs: Vec<crate::Gen> = h.actor.table.runs.keys().copied().collect();
        let pick = |n: usize| (!runs.is_empty()).then(|| runs[n % runs.len()]);
        match step {
            Step::Says(n, msg) => {
                if let Some(gen) = pick(n) {
                    h.says(gen, msg).await;
                }
            }
            Step::Exits(n) => {
                if let Some(gen) = pick(n) {
                    h.exit(gen, Some(1), None).await;
                }
            }
            Step::Reload(pm_id) => drop(h.reload(pm_id)),
            Step::Trigger(action) => drop(h.call(|reply| Call::Trigger {
                target: Target::All,
                action,
                params: None,
                reply,
            })),
            Step::Advance(ms) => h.advance(ms).await,
        }
    }
    // Still the owner of a coherent table: it lists every worker.
    let mut info = h.call(|reply| Call::Info { ids: None, reply });
    h.settle().await;
    let listed = info.try_recv().expect("an answer").expect("a list");
    assert_eq!(listed.len(), 3);
}

/// `PROPTEST_CASES` when set, else `default` (fewer than proptest's 256:
/// each case runs a tokio runtime).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn whatever_workers_say_the_actor_goes_on(steps in proptest::collection::vec(step(), 0..24)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(play(steps));
    }
}
