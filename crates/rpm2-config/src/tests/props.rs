//! Property tests (issue 15): any JSON value under any option name (pm2's,
//! its aliases, camelCase, `env_*`, unknown ones) resolves or gives a
//! config error, never a panic; any dayjs format converts to a strftime
//! string chrono accepts and renders.
//! Cases: proptest's default (256), or `PROPTEST_CASES`.

use chrono::format::{Item, StrftimeItems};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;
use crate::normalize::{ALIASES, KNOWN};

/// Numbers and strings near the edges of what options parse.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        "[0-9]{1,25}(ms|s|m|h|K|M|G|B|KB)?",
        "-?[0-9]{0,4}\\.?[0-9]{0,4}(e[+-]?[0-9]{1,4})?",
        Just(String::new()),
        Just("max".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        Just("cluster".to_owned()),
        Just("fork_mode".to_owned()),
        Just("* * * * *".to_owned()),
        Just("../../etc".to_owned()),
        Just("\0".to_owned()),
        Just("'unclosed".to_owned()),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from(f64::MAX)),
        Just(Value::from(-0.5)),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An option name: pm2's, an alias, a camelCase spelling, `env_*`, or any.
fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = KNOWN.iter().map(|(k, _)| (*k).to_owned()).collect();
    let aliases: Vec<String> = ALIASES.iter().map(|(k, _)| (*k).to_owned()).collect();
    prop_oneof![
        4 => proptest::sample::select(known.clone()),
        1 => proptest::sample::select(aliases),
        1 => proptest::sample::select(known).prop_map(|k| camel(&k)),
        1 => "env_[a-z]{0,6}",
        1 => "\\PC{0,10}",
    ]
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

proptest! {
    #[test]
    fn any_value_for_any_option_is_a_spec_or_a_config_error(
        options in proptest::collection::vec((key(), json()), 1..6),
        with_script in any::<bool>(),
    ) {
        let dir = project();
        let mut app = Map::new();
        if with_script {
            app.insert("script".to_owned(), Value::String("app.js".to_owned()));
        }
        for (k, v) in options {
            app.insert(k, v);
        }
        let _ = from_raw_apps(vec![Value::Object(app)], dir.path(), "props", &opts(dir.path()));
    }

    #[test]
    fn any_top_level_value_is_apps_or_a_config_error(apps in proptest::collection::vec(json(), 0..3)) {
        let dir = project();
        let _ = from_raw_apps(apps, dir.path(), "props", &opts(dir.path()));
    }

    #[test]
    fn any_dayjs_format_gives_a_strftime_chrono_renders(
        fmt in prop_oneof!["\\PC{0,24}", "[YMDdHhmsSZAa\\[\\]% .:x-]{0,24}"],
    ) {
        let strftime = dayjs_to_strftime(&fmt);
        prop_assert!(
            !StrftimeItems::new(&strftime).any(|i| matches!(i, Item::Error)),
            "{:?} gave {:?}", fmt, strftime
        );
        // `to_string` would panic on a format error; `write!` reports it.
        let t = chrono::Local::now();
        let mut out = String::new();
        let rendered = std::fmt::Write::write_fmt(&mut out, format_args!("{}", t.format(&strftime)));
        prop_assert!(rendered.is_ok(), "{:?} gave {:?}, which chrono cannot render", fmt, strftime);
    }

    #[test]
    fn text_without_tokens_stays_as_it_is(fmt in "[^YMDdHhmsSZAa\\[%]{0,24}") {
        prop_assert_eq!(dayjs_to_strftime(&fmt), fmt);
    }
}

/// Deeply nested text (a minified file on one line) is a parse error of a
/// readable size, not a stack overflow nor the whole file quoted back.
#[test]
fn deep_nesting_on_one_line_is_a_short_parse_error() {
    let dir = project();
    let depth = 100_000;
    let text = format!("{{\"apps\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let err = from_text(&text, "deep.json", &opts(dir.path())).unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, ConfigError::Parse { .. }), "{shown}");
    assert!(shown.len() < 4096, "{} bytes", shown.len());
}
