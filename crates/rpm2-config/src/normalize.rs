//! Option names: pm2's schema, its aliases and camelCase spellings, and the
//! simple type checks.
//!
//! pm2 silently drops keys that are not in `lib/API/schema.json`; we keep
//! the same set of accepted keys but warn about the rest, since a typo such
//! as `instance: 4` otherwise goes unnoticed.

use serde_json::{Map, Value};

use crate::error::{show, ConfigError};

/// What an option's value must look like. Options whose rules go beyond a
/// JSON type (instances, watch, sizes, …) are `Special`: checked where
/// they are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Bool,
    Num,
    StrOrNum,
    Obj,
    Arr,
    /// Accepted for compatibility, value not interpreted.
    Any,
    Special,
}

/// pm2 7's per-app options (schema.json plus keys handled in code:
/// `autostart`, `stop_exit_codes`, `namespace`), and rpm2's `sticky`,
/// `drain` and health options.
pub(crate) const KNOWN: &[(&str, Kind)] = &[
    ("script", Kind::Str),
    ("name", Kind::Str),
    ("name_prefix", Kind::Str),
    ("namespace", Kind::Str),
    ("cwd", Kind::Str),
    ("args", Kind::Special),
    ("exec_interpreter", Kind::Str),
    ("node_args", Kind::Special),
    ("exec_mode", Kind::Special),
    ("instances", Kind::Special),
    ("env", Kind::Special),
    ("filter_env", Kind::Special),
    ("append_env_to_name", Kind::Bool),
    ("port", Kind::StrOrNum),
    ("instance_var", Kind::Str),
    ("increment_var", Kind::Str),
    ("out_file", Kind::Str),
    ("error_file", Kind::Str),
    ("log_file", Kind::Special),
    ("pid_file", Kind::Str),
    ("merge_logs", Kind::Bool),
    ("log_date_format", Kind::Str),
    ("time", Kind::Bool),
    ("log_type", Kind::Str),
    ("disable_logs", Kind::Bool),
    ("watch", Kind::Special),
    ("ignore_watch", Kind::Special),
    ("watch_delay", Kind::Num),
    ("watch_options", Kind::Obj),
    ("min_uptime", Kind::Special),
    ("max_restarts", Kind::Num),
    ("restart_delay", Kind::Num),
    ("exp_backoff_restart_delay", Kind::Num),
    ("autorestart", Kind::Bool),
    ("autostart", Kind::Bool),
    ("stop_exit_codes", Kind::Special),
    ("max_memory_restart", Kind::Special),
    ("cron_restart", Kind::Special),
    ("kill_timeout", Kind::Num),
    ("kill_retry_time", Kind::Num),
    ("shutdown_with_message", Kind::Bool),
    ("treekill", Kind::Bool),
    ("wait_ready", Kind::Bool),
    ("listen_timeout", Kind::Num),
    ("sticky", Kind::Special),
    ("drain", Kind::Bool),
    ("unresponsive_timeout", Kind::Num),
    ("readiness_probe", Kind::Special),
    ("liveness_probe", Kind::Special),
    ("source_map_support", Kind::Bool),
    ("disable_source_map_support", Kind::Bool),
    ("uid", Kind::StrOrNum),
    ("gid", Kind::StrOrNum),
    ("username", Kind::Str),
    ("vizion", Kind::Bool),
    ("pmx", Kind::Bool),
    ("automation", Kind::Bool),
    ("trace", Kind::Bool),
    ("disable_trace", Kind::Bool),
    ("v8", Kind::Bool),
    ("event_loop_inspector", Kind::Bool),
    ("deep_monitoring", Kind::Bool),
    ("io", Kind::Obj),
    ("force", Kind::Bool),
    ("execute_command", Kind::Bool),
    ("post_update", Kind::Arr),
    ("windowsHide", Kind::Bool),
    ("install_url", Kind::Str),
    ("write", Kind::Bool),
    // CLI-only in pm2 (`--ext`), harmless in a file.
    ("ext", Kind::Any),
];

/// pm2's aliases, mapped to the name pm2 stores in `pm2_env`.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("exec", "script"),
    ("cmd", "script"),
    ("command", "script"),
    ("interpreter", "exec_interpreter"),
    ("interpreter_args", "node_args"),
    ("interpreterArgs", "node_args"),
    ("out", "out_file"),
    ("output", "out_file"),
    ("out_log", "out_file"),
    ("error", "error_file"),
    ("err", "error_file"),
    ("err_file", "error_file"),
    ("err_log", "error_file"),
    ("log", "log_file"),
    ("pid", "pid_file"),
    ("combine_logs", "merge_logs"),
    ("cron", "cron_restart"),
    ("user", "uid"),
];

pub(crate) fn kind_of(key: &str) -> Option<Kind> {
    if key.starts_with("env_") {
        return Some(Kind::Special);
    }
    KNOWN.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

fn direct(key: &str) -> Option<String> {
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == key) {
        return Some((*to).to_owned());
    }
    kind_of(key).map(|_| key.to_owned())
}

/// pm2's name for `key`, or `None` when pm2 would drop it.
pub(crate) fn canonical_key(key: &str) -> Option<String> {
    direct(key).or_else(|| {
        let snake = camel_to_snake(key);
        (snake != key).then(|| direct(&snake)).flatten()
    })
}

/// `killTimeout` → `kill_timeout`, as pm2 accepts camelCase everywhere.
fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The name used for an app in messages before it is resolved: `name`,
/// else the script's basename without extension, else its position.
pub(crate) fn display_name(map: &Map<String, Value>, index: usize) -> String {
    if let Some(name) = map.get("name").and_then(Value::as_str) {
        return name.to_owned();
    }
    if let Some(script) = map.get("script").and_then(Value::as_str) {
        if script.contains(char::is_whitespace) {
            return script.to_owned();
        }
        if let Some(stem) = std::path::Path::new(script).file_stem() {
            return stem.to_string_lossy().into_owned();
        }
    }
    format!("#{}", index + 1)
}

/// Renames the keys of one app object to pm2's names. Unknown keys become
/// warnings and are dropped; `null` values count as absent (YAML `~`).
/// When an alias and the canonical name are both present, the canonical
/// spelling wins.
pub(crate) fn normalize_keys(
    object: Map<String, Value>,
    unknown: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut canonical_written = std::collections::HashSet::new();
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        let Some(name) = canonical_key(&key) else {
            unknown.push(key);
            continue;
        };
        let is_canonical = name == key;
        if is_canonical {
            canonical_written.insert(name.clone());
            out.insert(name, value);
        } else if !canonical_written.contains(&name) {
            out.insert(name, value);
        }
    }
    out
}

/// Checks (and coerces, like pm2's validator) the options with a plain
/// type: numeric strings become numbers, `"true"`/`"false"` booleans.
pub(crate) fn check_simple_types(
    map: &mut Map<String, Value>,
    origin: &str,
    app: &str,
) -> Result<(), ConfigError> {
    for (key, value) in map.iter_mut() {
        let Some(kind) = kind_of(key) else { continue };
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::Bool => {
                if let Some(b) = value.as_str().and_then(|s| s.parse::<bool>().ok()) {
                    *value = Value::Bool(b);
                }
                value.is_boolean()
            }
            Kind::Num => {
                if let Some(n) = value.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
                    if let Some(n) = serde_json::Number::from_f64(n) {
                        *value = json_number(n);
                    }
                }
                value.is_number()
            }
            Kind::StrOrNum => value.is_string() || value.is_number(),
            Kind::Obj => value.is_object(),
            Kind::Arr => value.is_array(),
            Kind::Any | Kind::Special => true,
        };
        if !ok {
            let expected = match kind {
                Kind::Str => "a string",
                Kind::Bool => "a boolean",
                Kind::Num => "a number",
                Kind::StrOrNum => "a string or a number",
                Kind::Obj => "an object",
                _ => "an array",
            };
            return Err(ConfigError::InvalidOption {
                origin: origin.to_owned(),
                app: app.to_owned(),
                option: key.clone(),
                message: format!("expected {expected}, got {}", show(value)),
            });
        }
    }
    Ok(())
}

/// Keeps integers as JSON integers so `raw_options` shows `4000`, not `4000.0`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an integral value below 2^53"
)]
fn json_number(n: serde_json::Number) -> Value {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
        _ => Value::Number(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            canonical_key("killTimeout").as_deref(),
            Some("kill_timeout")
        );
        assert_eq!(
            canonical_key("interpreterArgs").as_deref(),
            Some("node_args")
        );
        assert_eq!(
            canonical_key("interpreter").as_deref(),
            Some("exec_interpreter")
        );
        assert_eq!(canonical_key("errLog").as_deref(), Some("error_file"));
        assert_eq!(canonical_key("windowsHide").as_deref(), Some("windowsHide"));
        assert_eq!(
            canonical_key("env_production").as_deref(),
            Some("env_production")
        );
        assert_eq!(canonical_key("envStaging").as_deref(), Some("env_staging"));
        assert_eq!(canonical_key("cmd").as_deref(), Some("script"));
        assert_eq!(canonical_key("foo"), None);
    }

    #[test]
    fn canonical_wins_over_alias() {
        let mut unknown = Vec::new();
        let input = serde_json::json!({"out_file": "a.log", "out": "b.log", "x": null});
        let Value::Object(map) = input else {
            unreachable!()
        };
        let out = normalize_keys(map, &mut unknown);
        assert_eq!(out["out_file"], "a.log");
        assert!(unknown.is_empty());
        assert!(!out.contains_key("x"));
    }
}
