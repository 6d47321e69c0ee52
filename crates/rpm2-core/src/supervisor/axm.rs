//! `@pm2/io` messages (pm2's `axm:*`): how a worker's message is sorted,
//! and how its metrics, actions and options are kept in the worker's
//! `Axm` (jlist's `axm_monitor`, `axm_actions`, `axm_options`).
//!
//! Pure data; the actor's side (which run reports, triggers) is
//! `axm_book.rs`.
//! An app is untrusted here: whatever it sends, the daemon keeps at most a
//! few budgets' worth of bytes per worker, so one app can neither bloat
//! `jlist` past its frame limit nor touch another worker's data.

use rpm2_proto::info::Axm;
use serde_json::{Map, Value};

/// Largest metric, option or action name kept (bytes).
pub(crate) const NAME_MAX: usize = 256;
/// What `axm_monitor` may hold per worker (approximate JSON bytes):
/// `@pm2/io`'s default metrics take about 1.5 KiB, a metric ~100 bytes.
pub(crate) const MONITOR_BYTES: usize = 64 * 1024;
/// What `axm_actions` may hold per worker (its 5 built-in actions: ~400 bytes).
pub(crate) const ACTIONS_BYTES: usize = 16 * 1024;
/// What `axm_options` may hold per worker (`@pm2/io` sends ~700 bytes).
pub(crate) const OPTIONS_BYTES: usize = 16 * 1024;

/// pm2's sorting of a message from a worker: an object whose `type` and
/// `data` are both set (JS truthy) is an event named `type` carrying
/// `data`; anything else is a raw `process:msg`. Returns `(type, data)`
/// taken out of `msg`, or `msg` back untouched.
pub(crate) fn split_typed(msg: Value) -> Result<(String, Value), Value> {
    let Value::Object(mut o) = msg else {
        return Err(msg);
    };
    let typed = o
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        && o.get("data").is_some_and(truthy);
    if !typed {
        return Err(Value::Object(o));
    }
    let (Some(Value::String(kind)), Some(data)) = (o.remove("type"), o.remove("data")) else {
        unreachable!("checked above");
    };
    Ok((kind, data))
}

/// JavaScript's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The typed messages `@pm2/io` sends that the daemon acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `axm:monitor`: metric name → `{value, unit?, type?, historic?}`,
    /// merged into `axm_monitor` (sent every second or so).
    Monitor,
    /// `axm:action`: one action registered (`io.action`).
    Action,
    /// `axm:option:configuration`: options merged into `axm_options`.
    Options,
    /// `axm:option:setPID`: an old agent's message; pm2 neither keeps
    /// nor publishes it.
    SetPid,
    /// `axm:reply`: an action's answer; published, and it answers a
    /// `trigger`.
    Reply,
    /// Any other type (`process:exception`, `human:event`, the app's own):
    /// published on the bus as is.
    Other,
}

impl Kind {
    #[must_use]
    pub(crate) fn of(kind: &str) -> Self {
        match kind {
            "axm:monitor" => Self::Monitor,
            "axm:action" => Self::Action,
            "axm:option:configuration" => Self::Options,
            "axm:option:setPID" => Self::SetPid,
            "axm:reply" => Self::Reply,
            _ => Self::Other,
        }
    }

    /// pm2 republishes every typed message on its bus except these four.
    #[must_use]
    pub(crate) fn published(self) -> bool {
        matches!(self, Self::Reply | Self::Other)
    }

    /// The message's name, for logs.
    fn name(self) -> &'static str {
        match self {
            Self::Monitor => "axm:monitor",
            Self::Action => "axm:action",
            Self::Options => "axm:option:configuration",
            Self::SetPid => "axm:option:setPID",
            Self::Reply => "axm:reply",
            Self::Other => "message",
        }
    }
}

/// Why (part of) an `axm:*` message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("{kind}: data is {found}, not an object")]
    NotAnObject {
        kind: &'static str,
        found: &'static str,
    },
    #[error("axm:action without a string action_name")]
    NoActionName,
    #[error("{kind}: a name longer than {NAME_MAX} bytes")]
    NameTooLong { kind: &'static str },
    #[error("{kind}: more than the {budget} bytes kept per process")]
    Full { kind: &'static str, budget: usize },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Approximate bytes of each `Axm` section, kept beside it so a message
/// costs in proportion to its own size, not to what is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub monitor: usize,
    pub actions: usize,
    pub options: usize,
}

/// Store what a `Monitor`, `Action` or `Options` message says in `axm`.
/// Entries that fit are kept even when others are refused; the first
/// problem is returned (for the log).
pub(crate) fn apply(
    axm: &mut Axm,
    sizes: &mut Sizes,
    kind: Kind,
    data: Value,
) -> Result<(), Malformed> {
    let name = kind.name();
    let not_object = |data: &Value| Malformed::NotAnObject {
        kind: name,
        found: type_name(data),
    };
    match kind {
        Kind::Monitor => match data {
            Value::Object(map) => merge(
                &mut axm.axm_monitor,
                &mut sizes.monitor,
                map,
                name,
                MONITOR_BYTES,
            ),
            other => Err(not_object(&other)),
        },
        Kind::Options => match data {
            // pm2 also renames the app when `data.name` is set; rpm2 keeps
            // the name it was given (names key the app table).
            Value::Object(map) => merge(
                &mut axm.axm_options,
                &mut sizes.options,
                map,
                name,
                OPTIONS_BYTES,
            ),
            other => Err(not_object(&other)),
        },
        Kind::Action => {
            let Value::Object(action) = data else {
                return Err(not_object(&data));
            };
            let action_name = match action.get("action_name") {
                Some(Value::String(s)) if !s.is_empty() => s,
                _ => return Err(Malformed::NoActionName),
            };
            if action_name.len() > NAME_MAX {
                return Err(Malformed::NameTooLong { kind: name });
            }
            // pm2 keeps the first registration of a name.
            if find_action(&axm.axm_actions, action_name).is_some() {
                return Ok(());
            }
            let size = map_len(&action);
            if sizes.actions + size > ACTIONS_BYTES {
                return Err(Malformed::Full {
                    kind: name,
                    budget: ACTIONS_BYTES,
                });
            }
            sizes.actions += size;
            axm.axm_actions.push(Value::Object(action));
            Ok(())
        }
        Kind::SetPid | Kind::Reply | Kind::Other => Ok(()),
    }
}

/// `Object.assign(stored, incoming)` within `budget` bytes.
fn merge(
    stored: &mut Map<String, Value>,
    size: &mut usize,
    incoming: Map<String, Value>,
    kind: &'static str,
    budget: usize,
) -> Result<(), Malformed> {
    let mut problem = None;
    for (key, value) in incoming {
        if key.len() > NAME_MAX {
            problem.get_or_insert(Malformed::NameTooLong { kind });
            continue;
        }
        let new = entry_len(&key, &value);
        let old = stored.get(&key).map_or(0, |v| entry_len(&key, v));
        let total = (*size - old.min(*size)) + new;
        if total > budget {
            problem.get_or_insert(Malformed::Full { kind, budget });
            continue;
        }
        *size = total;
        stored.insert(key, value);
    }
    problem.map_or(Ok(()), Err)
}

/// The registered action called `name`.
pub(crate) fn find_action<'a>(actions: &'a [Value], name: &str) -> Option<&'a Value> {
    actions
        .iter()
        .find(|a| a.get("action_name").and_then(Value::as_str) == Some(name))
}

/// pm2's `msgProcess` empties an action's `output` when it is triggered
/// by id (so jlist shows `output: []` from then on).
pub(crate) fn clear_output(actions: &mut [Value], name: &str) {
    for a in actions {
        if a.get("action_name").and_then(Value::as_str) == Some(name) {
            if let Value::Object(o) = a {
                o.insert("output".into(), Value::Array(Vec::new()));
            }
        }
    }
}

/// After a process exits: pm2 empties the actions and metrics (the next
/// process registers its own) and keeps the options.
pub(crate) fn clear_after_exit(axm: &mut Axm, sizes: &mut Sizes) {
    axm.axm_actions.clear();
    axm.axm_monitor.clear();
    sizes.actions = 0;
    sizes.monitor = 0;
}

fn entry_len(key: &str, value: &Value) -> usize {
    key.len() + 4 + json_len(value)
}

fn map_len(map: &Map<String, Value>) -> usize {
    2 + map.iter().map(|(k, v)| entry_len(k, v)).sum::<usize>()
}

/// About as many bytes as the JSON text of `v` (escapes not counted;
/// numbers as 8). serde_json's parser limits nesting to 128 levels, so
/// the recursion is bounded.
fn json_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| json_len(x) + 1).sum::<usize>(),
        Value::Object(o) => map_len(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn typed_messages_need_a_type_and_truthy_data() {
        let (kind, data) = split_typed(json!({"type": "axm:monitor", "data": {"a": 1}})).unwrap();
        assert_eq!(kind, "axm:monitor");
        assert_eq!(data, json!({"a": 1}));
        // pm2: `msg.data && msg.type`; else a raw process:msg.
        for raw in [
            json!("ready"),
            json!({"type": "axm:monitor"}),
            json!({"type": "axm:monitor", "data": null}),
            json!({"type": "axm:monitor", "data": 0}),
            json!({"type": "axm:monitor", "data": ""}),
            json!({"type": "axm:monitor", "data": false}),
            json!({"type": "", "data": {}}),
            json!({"type": 7, "data": {}}),
            json!([1, 2]),
        ] {
            assert_eq!(split_typed(raw.clone()), Err(raw));
        }
    }

    #[test]
    fn kinds_and_what_is_published() {
        assert_eq!(Kind::of("axm:monitor"), Kind::Monitor);
        assert_eq!(Kind::of("axm:action"), Kind::Action);
        assert_eq!(Kind::of("axm:option:configuration"), Kind::Options);
        assert_eq!(Kind::of("axm:option:setPID"), Kind::SetPid);
        assert_eq!(Kind::of("axm:reply"), Kind::Reply);
        assert_eq!(Kind::of("process:exception"), Kind::Other);
        assert_eq!(Kind::of("human:event"), Kind::Other);
        let published: Vec<bool> = [
            Kind::Monitor,
            Kind::Action,
            Kind::Options,
            Kind::SetPid,
            Kind::Reply,
            Kind::Other,
        ]
        .iter()
        .map(|k| k.published())
        .collect();
        assert_eq!(published, [false, false, false, false, true, true]);
    }

    #[test]
    fn metrics_merge_like_object_assign() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        let first = json!({"hits": {"value": 1, "historic": true}, "Heap Size": {"value": "7.5", "unit": "MiB"}});
        apply(&mut axm, &mut sizes, Kind::Monitor, first).unwrap();
        apply(
            &mut axm,
            &mut sizes,
            Kind::Monitor,
            json!({"hits": {"value": 2, "historic": true}}),
        )
        .unwrap();
        assert_eq!(
            axm.axm_monitor["hits"],
            json!({"value": 2, "historic": true})
        );
        assert_eq!(axm.axm_monitor["Heap Size"]["unit"], "MiB");
        // Insertion order is kept (describe lists metrics in it).
        let keys: Vec<&str> = axm.axm_monitor.keys().map(String::as_str).collect();
        assert_eq!(keys, ["hits", "Heap Size"]);
        assert_eq!(sizes.monitor, map_len(&axm.axm_monitor) - 2);
    }

    #[test]
    fn non_objects_are_refused_and_change_nothing() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        for (kind, data) in [
            (Kind::Monitor, json!("abc")),
            (Kind::Monitor, json!([1, 2])),
            (Kind::Options, json!(12)),
            (Kind::Action, json!(true)),
        ] {
            let err = apply(&mut axm, &mut sizes, kind, data).unwrap_err();
            assert!(matches!(err, Malformed::NotAnObject { .. }), "{err}");
        }
        assert_eq!(axm, Axm::default());
        assert_eq!(sizes, Sizes::default());
        assert_eq!(
            apply(&mut axm, &mut sizes, Kind::Monitor, json!("x"))
                .unwrap_err()
                .to_string(),
            "axm:monitor: data is a string, not an object"
        );
    }

    #[test]
    fn actions_need_a_name_and_register_once() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        for bad in [
            json!({}),
            json!({"action_name": 3}),
            json!({"action_name": ""}),
            json!({"action_name": null}),
        ] {
            assert_eq!(
                apply(&mut axm, &mut sizes, Kind::Action, bad),
                Err(Malformed::NoActionName)
            );
        }
        let long = "x".repeat(NAME_MAX + 1);
        assert!(matches!(
            apply(
                &mut axm,
                &mut sizes,
                Kind::Action,
                json!({"action_name": long})
            ),
            Err(Malformed::NameTooLong { .. })
        ));
        let hello = json!({"action_name": "hello", "action_type": "custom", "arity": 1});
        apply(&mut axm, &mut sizes, Kind::Action, hello.clone()).unwrap();
        apply(
            &mut axm,
            &mut sizes,
            Kind::Action,
            json!({"action_name": "hello", "arity": 2}),
        )
        .unwrap();
        assert_eq!(axm.axm_actions, vec![hello]);
        assert!(find_action(&axm.axm_actions, "hello").is_some());
        assert!(find_action(&axm.axm_actions, "nope").is_none());
        clear_output(&mut axm.axm_actions, "hello");
        assert_eq!(axm.axm_actions[0]["output"], json!([]));
    }

    #[test]
    fn budgets_cap_what_one_worker_keeps() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        // A huge metrics map: what fits is kept, the rest refused.
        let mut huge = Map::new();
        for i in 0..100_000 {
            huge.insert(format!("metric {i}"), json!({"value": i, "historic": true}));
        }
        let err = apply(&mut axm, &mut sizes, Kind::Monitor, Value::Object(huge)).unwrap_err();
        assert!(matches!(err, Malformed::Full { .. }));
        assert!(sizes.monitor <= MONITOR_BYTES);
        assert!(json_len(&Value::Object(axm.axm_monitor.clone())) <= MONITOR_BYTES + 2);
        let kept = axm.axm_monitor.len();
        assert!(kept > 100, "{kept} metrics kept");
        // Known metrics still update once full.
        apply(
            &mut axm,
            &mut sizes,
            Kind::Monitor,
            json!({"metric 0": {"value": 5, "historic": true}}),
        )
        .unwrap();
        assert_eq!(axm.axm_monitor["metric 0"]["value"], 5);
        assert_eq!(axm.axm_monitor.len(), kept);
        // One value larger than the whole budget.
        let big = json!({"blob": {"value": "v".repeat(MONITOR_BYTES)}});
        assert!(apply(&mut axm, &mut sizes, Kind::Monitor, big).is_err());
        assert!(!axm.axm_monitor.contains_key("blob"));
        // A huge action list.
        let mut registered = 0;
        for i in 0..10_000 {
            let a = json!({"action_name": format!("action {i}"), "arity": 1});
            if apply(&mut axm, &mut sizes, Kind::Action, a).is_ok() {
                registered += 1;
            }
        }
        assert!(registered > 50 && registered < 10_000, "{registered}");
        assert!(sizes.actions <= ACTIONS_BYTES);
        // Options likewise, and long keys are refused.
        let opts = json!({"k".repeat(NAME_MAX + 1): 1, "ok": 2});
        assert!(matches!(
            apply(&mut axm, &mut sizes, Kind::Options, opts),
            Err(Malformed::NameTooLong { .. })
        ));
        assert_eq!(axm.axm_options, obj(json!({"ok": 2})));
    }

    #[test]
    fn an_exit_keeps_only_the_options() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        apply(
            &mut axm,
            &mut sizes,
            Kind::Monitor,
            json!({"a": {"value": 1}}),
        )
        .unwrap();
        apply(
            &mut axm,
            &mut sizes,
            Kind::Action,
            json!({"action_name": "x"}),
        )
        .unwrap();
        apply(&mut axm, &mut sizes, Kind::Options, json!({"error": true})).unwrap();
        clear_after_exit(&mut axm, &mut sizes);
        assert!(axm.axm_monitor.is_empty() && axm.axm_actions.is_empty());
        assert_eq!(axm.axm_options, obj(json!({"error": true})));
        assert_eq!((sizes.monitor, sizes.actions), (0, 0));
        assert!(sizes.options > 0);
    }

    #[test]
    fn other_kinds_store_nothing() {
        let mut axm = Axm::default();
        let mut sizes = Sizes::default();
        for kind in [Kind::SetPid, Kind::Reply, Kind::Other] {
            apply(&mut axm, &mut sizes, kind, json!({"a": 1})).unwrap();
        }
        assert_eq!(axm, Axm::default());
    }
}
