//! What the CLI prints: process tables, `describe`, `prettylist`.
//!
//! Everything here is a pure function from data to `String` so it can be
//! tested against pm2's exact output without a daemon or a terminal; the
//! command code decides where (and whether) to print, and passes the clock
//! (`now_ms`) and the colour choice in.
//!
//! Only `render_mini_list` ends with a newline (pm2 prints a blank line
//! after each block): print it with `print!`, the rest with `println!`.

mod describe;
mod env;
pub(crate) mod format;
mod inspect;
mod table;

pub use describe::render_describe;
pub use env::render_env;
pub use inspect::{inspect, render_prettylist};
pub use table::{render_list, render_mini_list};

/// Realistic list entries, built the way the CLI gets them: from JSON.
#[cfg(test)]
pub(crate) mod fixtures {
    use rpm2_proto::ProcessInfo;
    use serde_json::Value;

    /// A list entry as the daemon sends it (pm2's `jlist` shape).
    const BASE: &str = r#"{
            "pid": 4242,
            "name": "api",
            "pm_id": 0,
            "monit": { "memory": 47395635, "cpu": 1.5 },
            "pm2_env": {
                "name": "api",
                "namespace": "default",
                "pm_id": 0,
                "status": "online",
                "exec_mode": "fork_mode",
                "instances": 1,
                "NODE_APP_INSTANCE": 0,
                "restart_time": 2,
                "unstable_restarts": 0,
                "created_at": 1700000000000,
                "pm_uptime": 1700000000000,
                "pm_exec_path": "/srv/api/server.js",
                "pm_cwd": "/srv/api",
                "exec_interpreter": "node",
                "node_args": [],
                "args": ["--port", "3000"],
                "pm_out_log_path": "/home/alice/.pm2/logs/api-out.log",
                "pm_err_log_path": "/home/alice/.pm2/logs/api-error.log",
                "pm_pid_path": "/home/alice/.pm2/pids/api-0.pid",
                "merge_logs": false,
                "watch": false,
                "autorestart": true,
                "autostart": true,
                "wait_ready": false,
                "sticky": false,
                "drain": true,
                "kill_timeout": 1600,
                "listen_timeout": 3000,
                "min_uptime": 1000,
                "max_restarts": 16,
                "restart_delay": 0,
                "prev_restart_delay": 0,
                "version": "1.0.0",
                "unique_id": "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab",
                "username": "alice",
                "instance_var": "NODE_APP_INSTANCE",
                "node_version": "20.11.1",
                "env": { "NODE_ENV": "production", "PORT": 3000, "PM2_HOME": "/home/alice/.pm2",
                         "unique_id": "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab" },
                "log_date_format": "YYYY-MM-DD HH:mm Z",
                "vizion": true,
                "treekill": true,
                "kill_retry_time": 100,
                "NODE_ENV": "production",
                "PORT": 3000,
                "PM2_HOME": "/home/alice/.pm2"
            }
        }"#;

    fn base() -> Value {
        serde_json::from_str(BASE).unwrap_or(Value::Null)
    }

    fn build(v: Value) -> ProcessInfo {
        match serde_json::from_value(v) {
            Ok(p) => p,
            Err(e) => panic!("fixture does not match ProcessInfo: {e}"),
        }
    }

    /// One online fork-mode app, 5 minutes old at `1_700_000_300_000`.
    pub(crate) fn sample() -> ProcessInfo {
        build(base())
    }

    /// `sample()` with `pm2_env` fields replaced; `name` and `pm_id` are
    /// mirrored at the top level as the daemon does.
    pub(crate) fn proc_with(overrides: &str) -> ProcessInfo {
        let mut v = base();
        let overrides: Value = serde_json::from_str(overrides).unwrap_or(Value::Null);
        if let Some(map) = overrides.as_object() {
            for (k, val) in map {
                v["pm2_env"][k] = val.clone();
                if k == "name" || k == "pm_id" {
                    v[k] = val.clone();
                }
            }
        }
        build(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prettylist_matches_node() {
        let got = render_prettylist(&[fixtures::sample()]);
        assert_eq!(got, PRETTYLIST_SAMPLE);
    }

    /// Node 20 on `serde_json::to_string(&[sample()])`.
    const PRETTYLIST_SAMPLE: &str = "[
  {
    pid: 4242,
    name: 'api',
    pm_id: 0,
    monit: { memory: 47395635, cpu: 1.5 },
    pm2_env: {
      name: 'api',
      namespace: 'default',
      pm_id: 0,
      status: 'online',
      exec_mode: 'fork_mode',
      instances: 1,
      NODE_APP_INSTANCE: 0,
      restart_time: 2,
      unstable_restarts: 0,
      created_at: 1700000000000,
      pm_uptime: 1700000000000,
      pm_exec_path: '/srv/api/server.js',
      pm_cwd: '/srv/api',
      exec_interpreter: 'node',
      node_args: [],
      args: [ '--port', '3000' ],
      pm_out_log_path: '/home/alice/.pm2/logs/api-out.log',
      pm_err_log_path: '/home/alice/.pm2/logs/api-error.log',
      pm_pid_path: '/home/alice/.pm2/pids/api-0.pid',
      merge_logs: false,
      watch: false,
      autorestart: true,
      autostart: true,
      wait_ready: false,
      sticky: false,
      drain: true,
      kill_timeout: 1600,
      listen_timeout: 3000,
      min_uptime: 1000,
      max_restarts: 16,
      restart_delay: 0,
      prev_restart_delay: 0,
      version: '1.0.0',
      node_version: '20.11.1',
      unique_id: '6f1c2d3e-aaaa-bbbb-cccc-0123456789ab',
      username: 'alice',
      instance_var: 'NODE_APP_INSTANCE',
      axm_monitor: {},
      axm_actions: [],
      axm_options: {},
      axm_dynamic: {},
      env: {
        NODE_ENV: 'production',
        PORT: 3000,
        PM2_HOME: '/home/alice/.pm2',
        unique_id: '6f1c2d3e-aaaa-bbbb-cccc-0123456789ab'
      },
      log_date_format: 'YYYY-MM-DD HH:mm Z',
      vizion: true,
      treekill: true,
      kill_retry_time: 100,
      NODE_ENV: 'production',
      PORT: 3000,
      PM2_HOME: '/home/alice/.pm2'
    }
  }
]";
}
