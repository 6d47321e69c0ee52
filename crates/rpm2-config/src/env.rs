//! The app's environment, composed the way pm2 does at `start`:
//! CLI shell env (minus `filter_env`) ⊕ `deploy.<name>.env` ⊕ `env` ⊕
//! `env_<name>`, then `port` → `PORT`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::show;

/// Drops shell variables as `filter_env` says: `true` drops them all,
/// a string or array drops those whose name contains any of the strings.
pub(crate) fn filter_shell_env(
    shell: &BTreeMap<String, String>,
    filter: Option<&Value>,
) -> Result<BTreeMap<String, String>, String> {
    let patterns: Vec<&str> = match filter {
        None | Some(Value::Bool(false)) => return Ok(shell.clone()),
        Some(Value::Bool(true)) => return Ok(BTreeMap::new()),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    format!(
                        "expected a boolean, a string or an array of strings, got {}",
                        show(v)
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "expected a boolean, a string or an array of strings, got {}",
                show(other)
            ))
        }
    };
    Ok(shell
        .iter()
        .filter(|(name, _)| !patterns.iter().any(|p| !p.is_empty() && name.contains(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// An `env` block as an object. pm2's schema also allows a string; we
/// accept one only if it holds a JSON object.
pub(crate) fn env_object(value: &Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("expected an object, got {}", show(value))),
        },
        _ => Err(format!("expected an object, got {}", show(value))),
    }
}

/// Environment values are strings: numbers and booleans as written,
/// objects and arrays JSON-stringified (pm2 ≥ 5.3; older versions leaked
/// `[object Object]`), `null` as `"null"` like Node's spawn.
pub(crate) fn env_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn merge_into(env: &mut BTreeMap<String, String>, block: &Map<String, Value>) {
    for (key, value) in block {
        env.insert(key.clone(), env_value(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shell() -> BTreeMap<String, String> {
        [
            ("PATH", "/bin"),
            ("SECRET_KEY", "x"),
            ("AWS_SECRET", "y"),
            ("HOME", "/h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn filter() {
        assert_eq!(filter_shell_env(&shell(), None).unwrap().len(), 4);
        assert!(filter_shell_env(&shell(), Some(&json!(true)))
            .unwrap()
            .is_empty());
        let kept = filter_shell_env(&shell(), Some(&json!("SECRET"))).unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["HOME", "PATH"]);
        let kept = filter_shell_env(&shell(), Some(&json!(["PATH", "HOME"]))).unwrap();
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["AWS_SECRET", "SECRET_KEY"]
        );
        assert!(filter_shell_env(&shell(), Some(&json!(3))).is_err());
    }

    #[test]
    fn values() {
        assert_eq!(env_value(&json!("a")), "a");
        assert_eq!(env_value(&json!(3000)), "3000");
        assert_eq!(env_value(&json!(true)), "true");
        assert_eq!(env_value(&json!({"a": 1})), r#"{"a":1}"#);
    }
}
