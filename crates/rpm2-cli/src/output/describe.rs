//! `pm2 describe <id|name>`: one process as a two-column table, with pm2's
//! row labels and order (`lib/API/UX/pm2-describe.js`).
//!
//! pm2's later sections follow: the app's `@pm2/io` configuration, actions
//! and metrics (when it reported any), and its environment variables whose
//! value differs from the caller's. Revision control (vizion) is not kept.

use chrono::{DateTime, SecondsFormat};
use comfy_table::Cell;
use rpm2_proto::ProcessInfo;
use serde_json::Value;

use super::env::{is_bookkeeping, js_text};
use super::format::uptime_cell;
use super::table::new_table;

/// pm2's `safe_push` shows missing values as `N/A`.
const NA: &str = "N/A";

/// The describe block for one process: title line, table, pm2's sections
/// and its hint lines. No trailing newline. `now_ms` (ms since the epoch)
/// computes the uptime; `local_env` is the caller's environment.
#[must_use]
pub fn render_describe(p: &ProcessInfo, now_ms: u64, local_env: &[(String, String)]) -> String {
    let env = &p.pm2_env;
    let or_na = |s: Option<&str>| s.unwrap_or(NA).to_owned();
    let join_or_na = |v: &[String]| {
        if v.is_empty() {
            NA.to_owned()
        } else {
            v.join(" ")
        }
    };

    let mut rows: Vec<(&str, String)> = vec![
        ("status", env.status.to_string()),
        ("name", env.name.clone()),
        ("namespace", env.namespace.clone()),
        ("version", or_na(env.version.as_deref())),
        ("restarts", env.restart_time.to_string()),
    ];
    // pm2 splices these optional rows in right after `restarts`.
    if let Some(limit) = env.max_memory_restart.filter(|&m| m > 0) {
        rows.push(("max memory restart", limit.to_string()));
    }
    if let Some(cron) = env.extra.get("cron_restart") {
        rows.push(("cron restart", value_text(cron)));
    }
    rows.push(("uptime", uptime_cell(p, now_ms)));
    if let Some(path) = &env.pm_log_path {
        rows.push(("entire log path", path.clone()));
    }
    rows.extend([
        ("script path", env.pm_exec_path.clone()),
        ("script args", join_or_na(&env.args)),
        ("error log path", env.pm_err_log_path.clone()),
        ("out log path", env.pm_out_log_path.clone()),
        ("pid path", env.pm_pid_path.clone()),
        ("interpreter", env.exec_interpreter.clone()),
        (
            "interpreter args",
            join_or_na(env.node_args.as_deref().unwrap_or_default()),
        ),
        ("script id", env.pm_id.to_string()),
        ("exec cwd", env.pm_cwd.clone()),
        ("exec mode", env.exec_mode.clone()),
        ("node.js version", or_na(env.node_version.as_deref())),
        (
            "node env",
            env.env_var("NODE_ENV").unwrap_or_else(|| NA.to_owned()),
        ),
        (
            "watch & reload",
            if env.watch { "✔" } else { "✘" }.to_owned(),
        ),
    ]);
    // rpm2's additions, after pm2's `watch & reload`.
    rows.push(("drain", if env.drain { "✔" } else { "✘" }.to_owned()));
    if env.sticky.is_on() {
        rows.push(("sticky", value_text(&env.sticky.to_json())));
    }
    if let Some(n) = env.inflight_requests {
        rows.push(("requests in flight", n.to_string()));
    }
    if let Some(ms) = env.event_loop_lag_ms {
        rows.push(("event loop lag", format!("{ms} ms")));
    }
    if let Some(why) = &env.restart_reason {
        rows.push(("restart reason", why.clone()));
    }
    if let Some(e) = &env.log_error {
        rows.push(("log error", e.clone()));
    }
    rows.extend([
        ("unstable restarts", env.unstable_restarts.to_string()),
        ("created at", iso_date(env.created_at)),
    ]);

    let mut table = new_table(false);
    for (key, value) in rows {
        table.add_row(vec![Cell::new(key), Cell::new(value)]);
    }
    format!(
        " Describing process with id {id} - name {name} \n{table}\n{sections}\n \
         Use `pm2 logs {name} [--lines 1000]` to display logs\n \
         Use `pm2 env {id}` to display environment variables\n \
         Use `pm2 monit` to monitor CPU and Memory usage",
        id = env.pm_id,
        name = env.name,
        sections = sections(p, local_env),
    )
}

/// pm2's sections after the table, each line ending in a newline.
fn sections(p: &ProcessInfo, local_env: &[(String, String)]) -> String {
    let env = &p.pm2_env;
    let axm = &env.axm;
    let mut out = String::new();
    let one_table = |rows: Vec<Vec<String>>| {
        let mut t = new_table(false);
        for row in rows {
            t.add_row(row.into_iter().map(Cell::new).collect::<Vec<_>>());
        }
        format!("{t}\n")
    };
    if let Some(Value::Object(conf)) = axm.axm_options.get("module_conf") {
        if !conf.is_empty() {
            out.push_str("Process configuration\n");
            out.push_str(&one_table(
                conf.iter()
                    .map(|(k, v)| vec![k.clone(), value_text(v)])
                    .collect(),
            ));
        }
    }
    if !axm.axm_actions.is_empty() {
        out.push_str(" Actions available \n");
        out.push_str(&one_table(
            axm.axm_actions
                .iter()
                .map(|a| vec![a.get("action_name").map_or_else(String::new, value_text)])
                .collect(),
        ));
        out.push_str(&format!(
            " Trigger via: pm2 trigger {} <action_name>\n\n",
            env.name
        ));
    }
    if !axm.axm_monitor.is_empty() {
        out.push_str(" Code metrics value \n");
        out.push_str(&one_table(
            axm.axm_monitor
                .iter()
                .map(|(k, m)| {
                    let value = m.get("value").unwrap_or(m);
                    let unit = m.get("unit").map_or_else(String::new, value_text);
                    vec![k.clone(), format!("{} {unit}", js_text(value))]
                })
                .collect(),
        ));
    }
    out.push_str(" Divergent env variables from local env \n");
    let divergent = divergent_env(p, local_env);
    if divergent.is_empty() {
        out.push('\n');
    } else {
        out.push_str(&one_table(divergent));
    }
    out
}

/// The app's variables that the caller's environment has with another
/// value (pm2 cuts values at 240 characters).
fn divergent_env(p: &ProcessInfo, local_env: &[(String, String)]) -> Vec<Vec<String>> {
    let Ok(Value::Object(all)) = serde_json::to_value(&p.pm2_env) else {
        return Vec::new();
    };
    local_env
        .iter()
        .filter_map(|(k, local)| {
            let v = all
                .get(k)
                .filter(|v| !is_bookkeeping(k) && !v.is_object())?;
            let text = js_text(v);
            (truthy(v) && text != *local).then(|| vec![k.clone(), text.chars().take(240).collect()])
        })
        .collect()
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A config value as text: strings bare, `null` as `N/A`, others as JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => NA.to_owned(),
        other => other.to_string(),
    }
}

/// JS `new Date(ms).toISOString()`, e.g. `2023-11-14T22:13:20.000Z`.
fn iso_date(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map_or_else(
            || NA.to_owned(),
            |d| d.to_rfc3339_opts(SecondsFormat::Millis, true),
        )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{proc_with, sample};
    use super::*;

    /// The table rows as (label, value) pairs.
    fn rows(out: &str) -> Vec<(String, String)> {
        out.lines()
            .filter(|l| l.starts_with('│'))
            .map(|l| {
                let cells: Vec<&str> = l.split('│').map(str::trim).collect();
                (cells[1].to_owned(), cells[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn describe_lists_pm2_rows_in_order() {
        let out = render_describe(&sample(), 1_700_000_300_000, &[]);
        assert!(out.starts_with(" Describing process with id 0 - name api \n┌"));
        let got = rows(&out);
        let want = [
            ("status", "online"),
            ("name", "api"),
            ("namespace", "default"),
            ("version", "1.0.0"),
            ("restarts", "2"),
            ("uptime", "5m"),
            ("script path", "/srv/api/server.js"),
            ("script args", "--port 3000"),
            ("error log path", "/home/alice/.pm2/logs/api-error.log"),
            ("out log path", "/home/alice/.pm2/logs/api-out.log"),
            ("pid path", "/home/alice/.pm2/pids/api-0.pid"),
            ("interpreter", "node"),
            ("interpreter args", "N/A"),
            ("script id", "0"),
            ("exec cwd", "/srv/api"),
            ("exec mode", "fork_mode"),
            ("node.js version", "20.11.1"),
            ("node env", "production"),
            ("watch & reload", "✘"),
            ("drain", "✔"),
            ("unstable restarts", "0"),
            ("created at", "2023-11-14T22:13:20.000Z"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
        assert!(out.ends_with("Use `pm2 monit` to monitor CPU and Memory usage"));
        assert!(out.contains(" Use `pm2 logs api [--lines 1000]` to display logs\n"));
    }

    #[test]
    fn optional_rows_are_spliced_where_pm2_puts_them() {
        let p = proc_with(
            r#"{"max_memory_restart": 104857600, "cron_restart": "0 * * * *",
                "pm_log_path": "/tmp/api.log", "status": "stopped", "watch": true,
                "node_args": ["--inspect", "--max-old-space-size=512"]}"#,
        );
        let got = rows(&render_describe(&p, 1_700_000_300_000, &[]));
        let labels: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &labels[4..10],
            &[
                "restarts",
                "max memory restart",
                "cron restart",
                "uptime",
                "entire log path",
                "script path"
            ]
        );
        let get = |k: &str| got.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        assert_eq!(get("max memory restart"), Some("104857600"));
        assert_eq!(get("cron restart"), Some("0 * * * *"));
        assert_eq!(get("uptime"), Some("0"));
        assert_eq!(get("status"), Some("stopped"));
        assert_eq!(get("watch & reload"), Some("✔"));
        assert_eq!(
            get("interpreter args"),
            Some("--inspect --max-old-space-size=512")
        );
        assert_eq!(get("sticky"), None);
        assert_eq!(get("requests in flight"), None);
    }

    #[test]
    fn sticky_mode_and_requests_in_flight_show_when_known() {
        let p = proc_with(r#"{"sticky": "forwarded", "inflight_requests": 4, "drain": false}"#);
        let got = rows(&render_describe(&p, 1_700_000_300_000, &[]));
        let get = |k: &str| got.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        assert_eq!(get("sticky"), Some("forwarded"));
        assert_eq!(get("requests in flight"), Some("4"));
        assert_eq!(get("drain"), Some("✘"));
        assert_eq!(get("event loop lag"), None);
    }

    #[test]
    fn event_loop_lag_and_restart_reason_show_when_known() {
        let p = proc_with(
            r#"{"event_loop_lag_ms": 12, "restart_reason": "event loop unresponsive for 1500 ms"}"#,
        );
        let got = rows(&render_describe(&p, 1_700_000_300_000, &[]));
        let get = |k: &str| got.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        assert_eq!(get("event loop lag"), Some("12 ms"));
        assert_eq!(
            get("restart reason"),
            Some("event loop unresponsive for 1500 ms")
        );
    }

    #[test]
    fn io_actions_metrics_and_divergent_env_follow_the_table() {
        let p = proc_with(
            r#"{"axm_actions": [{"action_name": "km:heapdump", "action_type": "internal", "arity": 2}],
                "axm_monitor": {"Heap Size": {"value": "6.98", "unit": "MiB"}, "Active handles": {"value": 3}},
                "env": {"NODE_ENV": "production", "PORT": 3000, "SAME": "x"}}"#,
        );
        let local = [
            ("NODE_ENV".to_owned(), "development".to_owned()),
            ("SAME".to_owned(), "x".to_owned()),
            ("ONLY_LOCAL".to_owned(), "y".to_owned()),
        ];
        let out = render_describe(&p, 1_700_000_300_000, &local);
        let after_table = &out[out.find(" Actions available ").unwrap_or(0)..];
        assert!(
            after_table.starts_with(
                " Actions available \n┌─────────────┐\n│ km:heapdump │\n└─────────────┘\n \
                 Trigger via: pm2 trigger api <action_name>\n\n Code metrics value \n"
            ),
            "{out}"
        );
        let got = rows(after_table);
        let get = |k: &str| got.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Heap Size"), Some("6.98 MiB"));
        assert_eq!(get("Active handles"), Some("3"));
        // Only the app's variables the caller has with another value.
        assert_eq!(get("NODE_ENV"), Some("production"));
        assert_eq!(get("SAME"), None);
        assert_eq!(get("ONLY_LOCAL"), None);
    }

    #[test]
    fn without_io_data_only_the_env_section_follows() {
        let out = render_describe(&sample(), 1_700_000_300_000, &[]);
        assert!(!out.contains("Actions available"), "{out}");
        assert!(!out.contains("Code metrics value"), "{out}");
        assert!(
            out.contains("┘\n Divergent env variables from local env \n\n\n Use `pm2 logs"),
            "{out}"
        );
    }
}
