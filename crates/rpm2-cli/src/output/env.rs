//! `pm2 env <id>`: every `pm2_env` key that is not pm2's own bookkeeping,
//! one `key: value` line each, in `pm2_env`'s order — the app's environment
//! (flattened into `pm2_env`) and its options as given.

use rpm2_proto::ProcessInfo;
use serde_json::Value;

use super::format::js_number;

/// Keys `env` leaves out: pm2's own process data, not environment.
const BOOKKEEPING: &[&str] = &[
    "name",
    "exec_mode",
    "env",
    "args",
    "pm_cwd",
    "exec_interpreter",
    "pm_exec_path",
    "node_args",
    "pm_out_log_path",
    "pm_err_log_path",
    "pm_pid_path",
    "pm_id",
    "status",
    "pm_uptime",
    "created_at",
    "windowsHide",
    "username",
    "merge_logs",
    "kill_retry_time",
    "prev_restart_delay",
    "instance_var",
    "unstable_restarts",
    "restart_time",
    "axm_actions",
    "pmx_module",
    "command",
    "watch",
    "filter_env",
    "versioning",
    "vizion_runing",
    "MODULE_DEBUG",
    "pmx",
    "axm_options",
    "vizion",
    "axm_dynamic",
    "axm_monitor",
    "instances",
    "automation",
    "autostart",
    "autorestart",
    "stop_exit_codes",
    "unstable_restart",
    "treekill",
    "exit_code",
];

/// pm2's own process data, which `env` and describe's divergent env skip.
pub(super) fn is_bookkeeping(key: &str) -> bool {
    BOOKKEEPING.contains(&key)
}

/// The lines of `env <id>`, each ending in a newline.
#[must_use]
pub fn render_env(p: &ProcessInfo) -> String {
    let Ok(Value::Object(env)) = serde_json::to_value(&p.pm2_env) else {
        return String::new();
    };
    env.iter()
        .filter(|(k, v)| !is_bookkeeping(k) && !v.is_object())
        .map(|(k, v)| format!("{k}: {}\n", js_text(v)))
        .collect()
}

/// A value as JavaScript's `${value}` writes it (arrays joined by commas).
pub(super) fn js_text(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Null => String::new(),
                other => js_text(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::proc_with;

    #[test]
    fn env_shows_the_flattened_environment_not_bookkeeping() {
        let p = proc_with(r#"{"PORT": 3000, "NODE_ENV": "production", "tags": ["a", "b"]}"#);
        let text = render_env(&p);
        assert!(text.contains("PORT: 3000\n"), "{text}");
        assert!(text.contains("NODE_ENV: production\n"), "{text}");
        assert!(text.contains("tags: a,b\n"), "{text}");
        assert!(text.contains("namespace: default\n"), "{text}");
        for hidden in ["status:", "pm_id:", "restart_time:", "exec_mode:", "env:"] {
            assert!(
                !text.lines().any(|l| l.starts_with(hidden)),
                "{hidden} in {text}"
            );
        }
    }
}
