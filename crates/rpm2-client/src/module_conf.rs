//! pm2's module configuration: `module_conf.json` in the home, what
//! `set`/`unset`/`multiset`/`get` edit (`rpm2 set pm2-logrotate:max_size 10M`).
//!
//! A key is `app.key` or `app:key` (more levels allowed: `a.b.c`); its first
//! part names the app the values are for. The daemon merges an app's values
//! into its environment when the app starts, and when it is restarted or
//! reloaded by name (which `set` does), as pm2 does.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_json::{Map, Value};

/// What can go wrong with the store or a key.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is not a JSON object: {why}")]
    Malformed { path: String, why: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("invalid key {0:?}: {1}")]
    BadKey(String, &'static str),
}

/// The whole store; a missing file is an empty one (pm2 creates it as `{}`).
pub fn load(path: &Path) -> Result<Map<String, Value>, ConfError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(source) => {
            return Err(ConfError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfError::Malformed {
            path: path.display().to_string(),
            why: "not an object".into(),
        }),
        Err(e) => Err(ConfError::Malformed {
            path: path.display().to_string(),
            why: e.to_string(),
        }),
    }
}

/// Write the store as pm2 does (JSON, 4-space indent), through a temporary
/// file so a crash never leaves half of it.
pub fn save(path: &Path, conf: &Map<String, Value>) -> Result<(), ConfError> {
    let failed = |source| ConfError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut text = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    serde::Serialize::serialize(conf, &mut ser).map_err(|e| failed(io::Error::other(e)))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, &text).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })
}

/// pm2's key split: on `.` if the key has one, else on `:`; a part may be
/// double-quoted to hold the separator (`app."a.b"`).
pub fn split_key(key: &str) -> Result<Vec<String>, ConfError> {
    if key.is_empty() {
        return Err(ConfError::BadKey(key.into(), "it is empty"));
    }
    let sep = if key.contains('.') {
        '.'
    } else if key.contains(':') {
        ':'
    } else {
        return Ok(vec![key.to_owned()]);
    };
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    if quoted {
        return Err(ConfError::BadKey(key.into(), "a quote is not closed"));
    }
    if parts.iter().any(String::is_empty) {
        return Err(ConfError::BadKey(key.into(), "a part is empty"));
    }
    // pm2 refuses these (they would reach Object.prototype in Node).
    if parts
        .iter()
        .any(|p| matches!(p.as_str(), "__proto__" | "constructor" | "prototype"))
    {
        return Err(ConfError::BadKey(key.into(), "a part is a reserved word"));
    }
    Ok(parts)
}

/// `key`'s enclosing levels and its last part.
fn levels_and_last(key: &str) -> Result<(Vec<String>, String), ConfError> {
    let mut levels = split_key(key)?;
    let last = levels.pop().expect("split_key gives one part or more");
    Ok((levels, last))
}

/// Set `key` (levels created as needed; a level that is not an object is
/// replaced by one, as pm2 does).
pub fn set(conf: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), ConfError> {
    let (levels, last) = levels_and_last(key)?;
    let mut node = conf;
    for part in &levels {
        let slot = node
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        node = slot.as_object_mut().expect("made an object above");
    }
    node.insert(last, value);
    Ok(())
}

/// Remove `key`; `all` empties the store. Whether something was removed.
pub fn unset(conf: &mut Map<String, Value>, key: &str) -> Result<bool, ConfError> {
    if key == "all" {
        let had = !conf.is_empty();
        conf.clear();
        return Ok(had);
    }
    let (levels, last) = levels_and_last(key)?;
    let mut node = conf;
    for part in &levels {
        match node.get_mut(part).and_then(Value::as_object_mut) {
            Some(next) => node = next,
            None => return Ok(false),
        }
    }
    Ok(node.shift_remove(&last).is_some())
}

/// The value at `key`, if there is one.
pub fn get<'a>(conf: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Value>, ConfError> {
    let parts = split_key(key)?;
    let mut node: Option<&Value> = None;
    let mut map = conf;
    for part in &parts {
        let Some(v) = map.get(part) else {
            return Ok(None);
        };
        node = Some(v);
        match v.as_object() {
            Some(m) => map = m,
            None => map = empty(),
        }
    }
    Ok(node)
}

fn empty() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

/// What pm2 adds to the environment of app `app`: each of its values (as
/// text: strings as they are, anything else as JSON) and, under the app's
/// own name, all of them as one JSON object. Nothing when it has none.
#[must_use]
pub fn app_env(conf: &Map<String, Value>, app: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(Value::Object(values)) = conf.get(app) else {
        // pm2 gives every app its configuration entry, empty when none.
        env.insert(app.to_owned(), "{}".to_owned());
        return env;
    };
    for (k, v) in values {
        env.insert(k.clone(), text(v));
    }
    env.insert(app.to_owned(), Value::Object(values.clone()).to_string());
    env
}

/// A value as `set` prints it and the environment gets it.
#[must_use]
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn keys_split_like_pm2() {
        assert_eq!(
            split_key("echo.config_var").unwrap(),
            ["echo", "config_var"]
        );
        assert_eq!(
            split_key("pm2-logrotate:max_size").unwrap(),
            ["pm2-logrotate", "max_size"]
        );
        // A dot wins over a colon; quotes keep a separator inside a part.
        assert_eq!(split_key("a:b.c").unwrap(), ["a:b", "c"]);
        assert_eq!(split_key(r#"app."x.y".z"#).unwrap(), ["app", "x.y", "z"]);
        assert_eq!(split_key("plain").unwrap(), ["plain"]);
        for bad in [
            "",
            "a..b",
            "a.",
            ":b",
            r#"a."b"#,
            "a.__proto__",
            "constructor:x",
        ] {
            assert!(split_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn set_get_unset() {
        let mut c = Map::new();
        set(&mut c, "echo.config_var", json!("false")).unwrap();
        set(&mut c, "echo:probes", json!("true")).unwrap();
        set(&mut c, "pm2-logrotate:max_size", json!("10M")).unwrap();
        assert_eq!(
            Value::Object(c.clone()),
            json!({"echo": {"config_var": "false", "probes": "true"},
                   "pm2-logrotate": {"max_size": "10M"}})
        );
        assert_eq!(get(&c, "echo.probes").unwrap(), Some(&json!("true")));
        assert_eq!(get(&c, "echo.nope").unwrap(), None);
        assert_eq!(get(&c, "echo.probes.deeper").unwrap(), None);
        assert!(unset(&mut c, "echo:probes").unwrap());
        assert!(!unset(&mut c, "echo:probes").unwrap());
        assert!(!unset(&mut c, "missing.key").unwrap());
        assert!(unset(&mut c, "all").unwrap());
        assert!(c.is_empty());
    }

    #[test]
    fn a_scalar_level_becomes_an_object() {
        let mut c = map(json!({"app": "scalar"}));
        set(&mut c, "app.key", json!("v")).unwrap();
        assert_eq!(Value::Object(c), json!({"app": {"key": "v"}}));
    }

    #[test]
    fn app_env_gives_each_value_and_the_whole() {
        let c = map(json!({"echo": {"config_var": "false", "n": 3, "o": {"a": 1}}}));
        let env = app_env(&c, "echo");
        assert_eq!(env["config_var"], "false");
        assert_eq!(env["n"], "3");
        assert_eq!(env["o"], r#"{"a":1}"#);
        assert_eq!(env["echo"], r#"{"config_var":"false","n":3,"o":{"a":1}}"#);
        assert_eq!(
            app_env(&c, "other"),
            BTreeMap::from([("other".to_owned(), "{}".to_owned())])
        );
    }

    #[test]
    fn the_store_round_trips_and_a_malformed_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("module_conf.json");
        assert!(load(&path).unwrap().is_empty(), "missing: empty");
        let mut c = Map::new();
        set(&mut c, "a.b", json!("1")).unwrap();
        save(&path, &c).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\n    \"a\": {\n        \"b\": \"1\"\n    }\n}");
        assert_eq!(load(&path).unwrap(), c);
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(load(&path), Err(ConfError::Malformed { .. })));
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(load(&path), Err(ConfError::Malformed { .. })));
    }
}
