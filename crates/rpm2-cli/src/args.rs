//! Command-line arguments: pm2's commands, aliases and flags (clap derive).

use clap::{Args, Parser, Subcommand};
use rpm2_proto::{ScaleCount, SignalName, Target};

#[derive(Debug, Parser)]
#[command(
    name = "rpm2",
    version,
    about = "A process manager for Node.js: pm2's commands and config, in Rust",
    long_about = "A process manager for Node.js: pm2's commands and ecosystem files, with a Rust daemon \
that is the cluster primary of your Node workers.\n\nThe daemon starts on demand; its home is \
$RPM2_HOME (default ~/.rpm2).",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but errors
    #[arg(short = 's', long, global = true)]
    pub silent: bool,
    /// Print the short (non-table) list after actions
    #[arg(short = 'm', long = "mini-list", global = true)]
    pub mini_list: bool,
    /// No colours in tables
    #[arg(long = "no-color", global = true)]
    pub no_color: bool,
    /// Wait at most this many milliseconds for the daemon at each step
    /// (connect, hello, answer) instead of the defaults (10 s for reads,
    /// 2 min or more for actions); also $RPM2_TIMEOUT_MS
    #[arg(long = "rpc-timeout", global = true, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rpc_timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per run")]
pub enum Command {
    /// Start apps from an ecosystem file (default ./ecosystem.config.js), a script, or restart known apps by name/id
    Start(StartArgs),
    /// Stop apps (SIGINT, then SIGKILL after kill_timeout)
    Stop(TargetArgs),
    /// Restart apps (stop, then start the same ids)
    Restart(ActionArgs),
    /// Zero-downtime rolling reload of cluster apps (fork apps are restarted)
    Reload(ActionArgs),
    /// Start the apps of an ecosystem file that are not running, restart the others
    #[command(name = "startOrRestart")]
    StartOrRestart(FileArgs),
    /// Start the apps of an ecosystem file that are not running, reload the others
    #[command(name = "startOrReload", alias = "startOrGracefulReload")]
    StartOrReload(FileArgs),
    /// Stop apps and remove them from the list
    #[command(alias = "del")]
    Delete(TargetArgs),
    /// Scale an app to N workers (N, +N or -N)
    Scale {
        name: String,
        /// N, +N or -N
        #[arg(allow_hyphen_values = true)]
        count: ScaleCount,
    },
    /// The process table
    #[command(visible_aliases = ["ls", "l", "ps", "status"])]
    List,
    /// The process list as JSON (pm2's shape)
    Jlist,
    /// The process list as Node's util.inspect would print it
    Prettylist,
    /// Everything about one app
    #[command(visible_aliases = ["desc", "info", "show"])]
    Describe { target: Target },
    /// Print log lines of apps, then follow them
    #[command(alias = "log")]
    Logs(LogsArgs),
    /// Empty the log files of apps (all, and the daemon log, without target)
    Flush { targets: Vec<Target> },
    /// Reopen every log file (after logrotate moved them)
    #[command(name = "reloadLogs")]
    ReloadLogs,
    /// Save the process list to dump.pm2 (for resurrect)
    #[command(alias = "dump")]
    Save {
        /// Save even an empty list
        #[arg(short, long)]
        force: bool,
    },
    /// Start the apps saved by `save` (or by pm2: `--from <pm2 home or dump.pm2>`)
    Resurrect {
        /// Start the apps of pm2's saved list (a pm2 home, or its
        /// dump.pm2) with their options; alone: $PM2_HOME, else ~/.pm2
        #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "")]
        from: Option<String>,
    },
    /// Send a signal to apps
    #[command(name = "sendSignal")]
    SendSignal {
        /// SIGUSR2, USR2, usr2 or 12
        signal: SignalName,
        /// Names, ids, namespaces or `all` (pm2 takes one; more are each signalled)
        #[arg(required = true)]
        targets: Vec<Target>,
    },
    /// Print the environment of a worker
    Env { id: u32 },
    /// Print pids (of one app, or all)
    Pid { target: Option<Target> },
    /// Print the ids of an app
    Id { name: String },
    /// Reset restart counters
    Reset { target: Target },
    /// Check that the daemon answers (starts it if needed)
    Ping,
    /// Stop every app, then the daemon
    Kill,
    /// Run an @pm2/io action (io.action) of apps and print their replies
    Trigger {
        /// Id, name, namespace or `all`
        target: Target,
        /// The action's name
        action: String,
        /// Passed to the action as its first argument (a string)
        params: Option<String>,
    },
    /// Write a sample ecosystem.config.js in this directory (replacing one there)
    #[command(alias = "init")]
    Ecosystem {
        /// `simple` (the same sample here)
        mode: Option<String>,
    },
    /// Hand the running daemon over to this rpm2 binary in place: same pid, every process kept
    #[command(alias = "updatePM2")]
    Update,
    /// Terminal dashboard: processes with CPU/memory, logs and metadata
    /// of the selected one; keys restart, reload or stop it
    #[command(aliases = ["dashboard", "dash"])]
    Monit,
    /// Set a module configuration value (`<app>:<key> <value>` or `<app>.<key>`); a running app of that name restarts with it. `pm2-logrotate:*` and `rpm2:*` keys are rpm2's settings (`rpm2:metrics_addr 127.0.0.1:9209` serves /metrics, /healthz, /readyz)
    Set {
        key: Option<String>,
        value: Option<String>,
    },
    /// Set several values: "<key1> <value1> <key2> <value2>"
    Multiset { values: String },
    /// Print module configuration: everything, an app's values, or one value
    Get { key: Option<String> },
    /// Remove a module configuration value (`all`: every one)
    Unset { key: String },
    /// Module configuration: with a key and a value, set; with a key, get; alone, list
    #[command(alias = "config")]
    Conf {
        key: Option<String>,
        value: Option<String>,
    },
    /// pm2 modules: `pm2-logrotate` is built in (prints its `set` keys); others are not supported
    #[command(aliases = ["module:install", "module:update"])]
    Install(crate::commands::migrate::InstallArgs),
    /// pm2 modules: `pm2-logrotate` is built in, nothing to remove
    #[command(alias = "module:uninstall")]
    Uninstall { module: String },
    /// Install a systemd unit that starts rpm2 at boot and resurrects the
    /// list `rpm2 save` wrote (not root: print the command to run)
    Startup(crate::commands::startup::StartupArgs),
    /// Disable and remove the unit `rpm2 startup` installed
    Unstartup(crate::commands::startup::StartupArgs),
    /// Run the daemon (started by the CLI itself)
    #[command(name = rpm2_client::DAEMON_SUBCOMMAND, hide = true)]
    Daemon,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// Ecosystem file
    pub file: String,
    /// Use its env_<name> block
    #[arg(long)]
    pub env: Option<String>,
    /// Only these apps (comma separated)
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Names, ids, namespaces, `all`, `/regex/` (on names), script files,
    /// ecosystem files (their apps), or `-` (a JSON config on stdin)
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// With an ecosystem file: only these apps (comma separated)
    #[arg(long)]
    pub only: Option<String>,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Names, ids, namespaces, `all`, `/regex/` (on names), script files,
    /// an ecosystem file, or `-` (a JSON config on stdin)
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Merge this shell's environment into the apps' env
    #[arg(short = 'a', long = "update-env")]
    pub update_env: bool,
    /// restart: toggle watching of the apps (on if off, off if on), as pm2
    #[arg(long)]
    pub watch: bool,
    /// Workers replaced at once during reload (default 1)
    #[arg(long)]
    pub parallel: Option<u32>,
    /// With an ecosystem file: use its env_<name> block
    #[arg(long)]
    pub env: Option<String>,
    /// With an ecosystem file: only these apps (comma separated)
    #[arg(long)]
    pub only: Option<String>,
    /// New arguments for the interpreter, kept for later starts (`null` clears them)
    #[arg(
        long = "node-args",
        alias = "interpreter-args",
        allow_hyphen_values = true
    )]
    pub node_args: Option<String>,
    /// Rename the apps (their log and pid files keep their names)
    #[arg(short = 'n', long)]
    pub name: Option<String>,
}

impl ActionArgs {
    /// The options pm2 merges into the apps on restart/reload.
    #[must_use]
    pub fn spec_update(&self) -> rpm2_proto::SpecUpdate {
        spec_update(self.name.as_deref(), self.node_args.as_deref())
    }
}

/// `--name` and `--node-args` given with a restart; `null` clears, as in pm2.
#[must_use]
pub fn spec_update(name: Option<&str>, node_args: Option<&str>) -> rpm2_proto::SpecUpdate {
    rpm2_proto::SpecUpdate {
        name: name.map(str::to_owned),
        interpreter_args: node_args.map(|a| {
            if a == "null" {
                Vec::new()
            } else {
                a.split_whitespace().map(str::to_owned).collect()
            }
        }),
    }
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "one per pm2 flag")]
pub struct StartArgs {
    /// Ecosystem file, script, known app name/id/namespace, or `-` (a JSON
    /// config on stdin)
    pub targets: Vec<String>,
    /// App name
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Number of workers: N, 0 or `max` (the CPUs rpm2 may use: affinity, cgroup quota), -1 (those - 1); switches Node apps to cluster mode
    #[arg(short = 'i', long, allow_hyphen_values = true)]
    pub instances: Option<String>,
    /// Restart on file changes (in cwd, or these paths)
    #[arg(long, num_args = 0.., value_delimiter = ',')]
    pub watch: Option<Vec<String>>,
    /// Interpreter (node, python3, bash, none, …)
    #[arg(long)]
    pub interpreter: Option<String>,
    /// Arguments for the interpreter
    #[arg(long = "interpreter-args", allow_hyphen_values = true)]
    pub interpreter_args: Option<String>,
    /// Arguments for node (same as --interpreter-args)
    #[arg(long = "node-args", allow_hyphen_values = true)]
    pub node_args: Option<String>,
    /// stdout log file
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// stderr log file
    #[arg(short = 'e', long)]
    pub error: Option<String>,
    /// Combined log file
    #[arg(short = 'l', long)]
    pub log: Option<String>,
    /// Prefix log lines with this date format (dayjs tokens)
    #[arg(long = "log-date-format")]
    pub log_date_format: Option<String>,
    /// Prefix log lines with the time
    #[arg(long)]
    pub time: bool,
    /// One log file for all workers of the app
    #[arg(long = "merge-logs")]
    pub merge_logs: bool,
    /// Use the env_<name> block of the ecosystem file
    #[arg(long)]
    pub env: Option<String>,
    /// Only these apps of the ecosystem file (comma separated)
    #[arg(long)]
    pub only: Option<String>,
    /// Namespace
    #[arg(long)]
    pub namespace: Option<String>,
    /// Working directory of the app
    #[arg(long)]
    pub cwd: Option<String>,
    /// ms between SIGINT and SIGKILL (default 1600)
    #[arg(short = 'k', long = "kill-timeout")]
    pub kill_timeout: Option<u64>,
    /// ms to wait for ready/listening (default 3000)
    #[arg(long = "listen-timeout")]
    pub listen_timeout: Option<u64>,
    /// ms a Node worker's event loop may leave the daemon's ping
    /// unanswered before it is replaced (default 30000; 0: no watchdog)
    #[arg(long = "unresponsive-timeout")]
    pub unresponsive_timeout: Option<u64>,
    /// Wait for process.send('ready')
    #[arg(long = "wait-ready")]
    pub wait_ready: bool,
    /// Run the app as this user (name or id; the daemon must run as root)
    #[arg(long)]
    pub uid: Option<String>,
    /// Run the app with this group (name or id; the daemon must run as root)
    #[arg(long)]
    pub gid: Option<String>,
    /// Restart when memory exceeds this (100M, 1G)
    #[arg(long = "max-memory-restart")]
    pub max_memory_restart: Option<String>,
    /// ms to wait before a crash restart
    #[arg(long = "restart-delay")]
    pub restart_delay: Option<u64>,
    /// Exponential back-off base (ms) for crash restarts
    #[arg(long = "exp-backoff-restart-delay")]
    pub exp_backoff_restart_delay: Option<u64>,
    /// Unstable restarts before `errored` (default 16)
    #[arg(long = "max-restarts")]
    pub max_restarts: Option<u32>,
    /// Do not restart on exit
    #[arg(long = "no-autorestart")]
    pub no_autorestart: bool,
    /// Register the app without starting it
    #[arg(long = "no-autostart")]
    pub no_autostart: bool,
    /// Exit codes that do not trigger a restart
    #[arg(long = "stop-exit-codes", num_args = 1..)]
    pub stop_exit_codes: Option<Vec<i32>>,
    /// Send 'shutdown' over IPC instead of SIGINT
    #[arg(long = "shutdown-with-message")]
    pub shutdown_with_message: bool,
    /// Cluster mode: one client always reaches the same worker, by its IP
    /// (`ip`, the default) or by the address a proxy forwards (`forwarded`:
    /// X-Forwarded-For, else X-Real-IP)
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        default_missing_value = "ip",
        value_parser = ["ip", "forwarded", "true", "false"]
    )]
    pub sticky: Option<String>,
    /// Cron pattern for restarts
    #[arg(short = 'c', long = "cron")]
    pub cron: Option<String>,
    /// Merge this shell's environment on restart of known apps
    #[arg(short = 'a', long = "update-env")]
    pub update_env: bool,
    /// Start the same script again even if already running
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Run in fork mode (no cluster, whatever the script)
    #[arg(short = 'x', long = "execute-command")]
    pub execute_command: bool,
    /// Pid file (the worker's id is added: app.pid → app-0.pid)
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<String>,
    /// Accepted for pm2 scripts: rpm2 never injects @pm2/io (`--no-automation`, `--no-pmx`) nor reads git metadata (`--no-vizion`)
    #[arg(long = "no-automation", alias = "no-pmx")]
    pub no_automation: bool,
    /// Accepted for pm2 scripts (see --no-automation)
    #[arg(long = "no-vizion", hide = true)]
    pub no_vizion: bool,
    /// Run the daemon in this process, in the foreground, and print the
    /// apps' output until they end (as rpm2-runtime, writing log files)
    #[arg(long = "no-daemon")]
    pub no_daemon: bool,
    /// Arguments for the script (after --)
    #[arg(last = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[expect(clippy::struct_excessive_bools, reason = "one per pm2 flag")]
pub struct LogsArgs {
    /// Name, id, namespace or `all`
    pub target: Option<Target>,
    /// Lines of each file to print first
    #[arg(long, default_value_t = 15)]
    pub lines: usize,
    /// Print the last lines and exit
    #[arg(long)]
    pub nostream: bool,
    /// Lines as written, without prefixes
    #[arg(long)]
    pub raw: bool,
    /// Only stderr
    #[arg(long)]
    pub err: bool,
    /// Only stdout
    #[arg(long)]
    pub out: bool,
    /// Prefix streamed lines with the time
    #[arg(long, num_args = 0..=1, default_missing_value = "YYYY-MM-DD-HH:mm:ss")]
    pub timestamp: Option<String>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
}
