//! `unresponsive_timeout`, `readiness_probe` and `liveness_probe`.
//!
//! A probe is an object with exactly one check (`http_get: {path, port?,
//! status?}`, `tcp_socket: {port?}` or `exec: {command}`) and optional
//! `period_ms`, `timeout_ms`, `failure_threshold`, `initial_delay_ms`. A
//! port defaults to the app's `PORT`. Anything else is an error naming the
//! app and the option, and nothing starts.

use rpm2_proto::health::{Probe, ProbeCheck};
use rpm2_proto::AppSpec;
use serde_json::{Map, Value};

use super::App;
use crate::error::{show, ConfigError};
use crate::units::shell_split;

const CHECKS: &str = "http_get, tcp_socket or exec";
const SETTINGS: &[&str] = &[
    "period_ms",
    "timeout_ms",
    "failure_threshold",
    "initial_delay_ms",
];

/// The health options of `app` into `spec` (after its environment).
pub(super) fn health(app: &App<'_>, spec: &mut AppSpec) -> Result<(), ConfigError> {
    if let Some(ms) = app.ms("unresponsive_timeout")? {
        spec.unresponsive_timeout_ms = ms;
    }
    spec.readiness_probe = probe(app, "readiness_probe", spec)?;
    spec.liveness_probe = probe(app, "liveness_probe", spec)?;
    Ok(())
}

fn probe(app: &App<'_>, key: &str, spec: &AppSpec) -> Result<Option<Probe>, ConfigError> {
    let err = |m: String| app.err(key, m);
    let obj = match app.map.get(key) {
        None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(err(format!("expected an object, got {}", show(other)))),
    };
    let mut check = None;
    for (k, v) in obj {
        if SETTINGS.contains(&k.as_str()) {
            continue;
        }
        let parsed = match k.as_str() {
            "http_get" => http_get(v, spec).map_err(|m| err(format!("http_get: {m}")))?,
            "tcp_socket" => tcp_socket(v, spec).map_err(|m| err(format!("tcp_socket: {m}")))?,
            "exec" => exec(v).map_err(|m| err(format!("exec: {m}")))?,
            other => {
                return Err(err(format!(
                "unknown probe kind or setting \"{other}\" (a probe has one of {CHECKS}, and {})",
                SETTINGS.join(", ")
            )))
            }
        };
        if check.replace(parsed).is_some() {
            return Err(err(format!("has more than one check (one of {CHECKS})")));
        }
    }
    let check = check.ok_or_else(|| err(format!("needs a check: one of {CHECKS}")))?;
    let mut probe = Probe::new(check);
    let number = |name: &str, min: u64| -> Result<Option<u64>, ConfigError> {
        match obj.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().filter(|&n| n >= min).map(Some).ok_or_else(|| {
                err(format!(
                    "{name}: expected a whole number ≥ {min}, got {}",
                    show(v)
                ))
            }),
        }
    };
    probe.period_ms = number("period_ms", 1)?.unwrap_or(probe.period_ms);
    probe.timeout_ms = number("timeout_ms", 1)?.unwrap_or(probe.timeout_ms);
    probe.initial_delay_ms = number("initial_delay_ms", 0)?.unwrap_or(0);
    if let Some(n) = number("failure_threshold", 1)? {
        probe.failure_threshold =
            u32::try_from(n).map_err(|_| err(format!("failure_threshold: too large: {n}")))?;
    }
    Ok(Some(probe))
}

fn fields<'a>(v: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object, got {}", show(v)))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "unknown key \"{k}\" (expected {})",
            allowed.join(", ")
        ));
    }
    Ok(obj)
}

/// A port from the probe, else the app's `PORT`.
fn port(obj: &Map<String, Value>, spec: &AppSpec) -> Result<u16, String> {
    let (value, from_env) = match obj.get("port") {
        Some(v) => (v.clone(), false),
        None => match spec.env.get("PORT") {
            Some(p) => (Value::String(p.clone()), true),
            None => return Err("needs a port (or PORT in the app's env)".into()),
        },
    };
    let n = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n.and_then(|n| u16::try_from(n).ok()).filter(|&p| p > 0) {
        Some(p) => Ok(p),
        None if from_env => Err(format!(
            "the app's PORT {} is not a port (1-65535)",
            show(&value)
        )),
        None => Err(format!("port: expected 1-65535, got {}", show(&value))),
    }
}

fn http_get(v: &Value, spec: &AppSpec) -> Result<ProbeCheck, String> {
    let obj = fields(v, &["path", "port", "status"])?;
    let path = match obj.get("path") {
        Some(Value::String(p)) if p.starts_with('/') && !p.chars().any(char::is_whitespace) => {
            p.clone()
        }
        Some(other) => {
            return Err(format!(
                "path: expected a path such as \"/health\", got {}",
                show(other)
            ))
        }
        None => return Err("needs a path, such as \"/health\"".into()),
    };
    let status = match obj.get("status") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|s| (100..=599).contains(s))
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| {
                    format!("status: expected an HTTP status (100-599), got {}", show(v))
                })?,
        ),
    };
    Ok(ProbeCheck::HttpGet {
        path,
        port: port(obj, spec)?,
        status,
    })
}

fn tcp_socket(v: &Value, spec: &AppSpec) -> Result<ProbeCheck, String> {
    let obj = fields(v, &["port"])?;
    Ok(ProbeCheck::TcpSocket {
        port: port(obj, spec)?,
    })
}

fn exec(v: &Value) -> Result<ProbeCheck, String> {
    let obj = fields(v, &["command"])?;
    let command = match obj.get("command") {
        Some(Value::String(s)) => shell_split(s)?,
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "command: expected an array of strings".to_owned())?,
        Some(other) => {
            return Err(format!(
                "command: expected an array of strings, got {}",
                show(other)
            ))
        }
        None => return Err("needs a command, such as [\"./check.sh\"]".into()),
    };
    if command.is_empty() || command[0].is_empty() {
        return Err("command is empty".into());
    }
    Ok(ProbeCheck::Exec { command })
}
