//! Shared by the integration tests: the real `rpm2` binary in a temporary
//! `RPM2_HOME`, node fixture apps, polling with deadlines, and a guard
//! that always runs `rpm2 kill` for its home (even when a test panics).

// Not `expect`: a binary that uses every helper would find it unfulfilled.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// How long one CLI call may take before the test fails (not a timing
/// assertion: a hang guard).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rpm2")
}

/// Absolute path of a fixture app in `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// What a CLI call printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together (for "the message names X" checks).
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// One temporary home (and a work directory for configs and markers).
/// Dropping it runs `rpm2 kill` for the home.
pub struct Rpm2 {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Default for Rpm2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Rpm2 {
    pub fn new() -> Self {
        Self {
            home: tempfile::Builder::new()
                .prefix("rpm2-home-")
                .tempdir()
                .expect("temp home"),
            work: tempfile::Builder::new()
                .prefix("rpm2-work-")
                .tempdir()
                .expect("temp work dir"),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The directory commands run in; configs and marker files go here.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// A path in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Write a file in the work directory; returns its path as a string.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write work file");
        p.display().to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        // Paths moved by the caller's PM2_* variables would leave the home.
        for (name, _) in rpm2_client::home::OVERRIDES {
            cmd.env_remove(name);
        }
        cmd.args(args)
            .current_dir(self.work())
            .env("RPM2_HOME", self.home())
            .env_remove("PM2_HOME")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Run `rpm2 <args>` and wait for it (with a hang guard).
    pub fn run(&self, args: &[&str]) -> Out {
        self.try_run(args, CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("rpm2 {args:?}: {e}"))
    }

    /// Run and require exit 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        expect_success(args, self.run(args))
    }

    /// Run and require a non-zero exit.
    pub fn fails(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert!(
            !out.success(),
            "rpm2 {args:?} should have failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// Run `rpm2 <args>` with extra environment variables (the shell env
    /// `start` and `--update-env` capture).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let out = self
            .try_spawn(args, env)
            .and_then(|b| b.wait(CALL_TIMEOUT))
            .unwrap_or_else(|e| panic!("rpm2 {args:?}: {e}"));
        expect_success(args, out)
    }

    /// Run with extra environment variables, whatever the exit status.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.try_spawn(args, env)
            .and_then(|b| b.wait(CALL_TIMEOUT))
            .unwrap_or_else(|e| panic!("rpm2 {args:?}: {e}"))
    }

    fn try_run(&self, args: &[&str], timeout: Duration) -> Result<Out, String> {
        self.try_spawn(args, &[])?.wait(timeout)
    }

    /// Start `rpm2 <args>` without waiting for it.
    pub fn spawn(&self, args: &[&str]) -> Background {
        self.try_spawn(args, &[]).expect("spawn rpm2")
    }

    /// Never panics: `Drop` uses it through `try_run`.
    fn try_spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Background, String> {
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin()))?;
        Ok(Background { child })
    }

    /// `rpm2 jlist`, parsed.
    pub fn jlist(&self) -> Vec<Value> {
        let out = self.ok(&["jlist"]);
        // When this call started the daemon, its "Spawning" lines come first.
        let json = out
            .stdout
            .lines()
            .find(|l| !l.starts_with("[RPM2]"))
            .unwrap_or_default();
        match serde_json::from_str(json) {
            Ok(Value::Array(procs)) => procs,
            other => panic!("jlist is not a JSON array: {other:?}\n{}", out.stdout),
        }
    }

    /// The workers of app `name`, by pm_id.
    pub fn procs(&self, name: &str) -> Vec<Value> {
        let mut procs: Vec<Value> = self
            .jlist()
            .into_iter()
            .filter(|p| p["name"] == name)
            .collect();
        procs.sort_by_key(|p| p["pm_id"].as_u64());
        procs
    }

    /// The only worker of app `name`.
    pub fn proc(&self, name: &str) -> Value {
        let mut procs = self.procs(name);
        assert_eq!(procs.len(), 1, "expected one worker of {name}: {procs:?}");
        procs.remove(0)
    }

    /// Wait until the only worker of `name` has `status`; returns it.
    pub fn wait_status(&self, name: &str, status: &str) -> Value {
        wait_until(&format!("{name} to be {status}"), || {
            self.procs(name)
                .into_iter()
                .next()
                .filter(|p| status_of(p) == status)
        })
    }

    /// Wait until every worker of `name` is online and there are `n` of them.
    pub fn wait_online(&self, name: &str, n: usize) -> Vec<Value> {
        wait_until(&format!("{n} online workers of {name}"), || {
            let procs = self.procs(name);
            (procs.len() == n && procs.iter().all(|p| status_of(p) == "online")).then_some(procs)
        })
    }

    /// The daemon's pid from `pm2.pid`, if the file holds one.
    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home().join("pm2.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The log directory of the home.
    pub fn logs_dir(&self) -> PathBuf {
        self.home().join("logs")
    }
}

impl Drop for Rpm2 {
    fn drop(&mut self) {
        // Never panic here: this also runs while a failed test unwinds.
        let daemon = self.daemon_pid();
        let _ = self.try_run(&["kill"], CALL_TIMEOUT);
        if let Some(pid) = daemon.filter(|&p| alive(p)) {
            // `kill` failed: do not leave the daemon of this home behind.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A CLI call running in the background.
pub struct Background {
    child: Child,
}

impl Background {
    /// Whether it has exited yet.
    pub fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait for it (killing it after `timeout`) and collect its output.
    pub fn wait(mut self, timeout: Duration) -> Result<Out, String> {
        let mut stdout = self.child.stdout.take().expect("piped stdout");
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let out_t = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_t = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("still running after {timeout:?}; killed"));
                }
                Err(e) => return Err(format!("wait failed: {e}")),
            }
        };
        Ok(Out {
            code: status.code(),
            stdout: out_t.join().unwrap_or_default(),
            stderr: err_t.join().unwrap_or_default(),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Poll `f` until it gives `Some`, or panic after [`DEADLINE`].
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Wait until the file exists and is not empty; returns its contents.
pub fn wait_file(path: &Path) -> String {
    wait_until(&format!("{} to be written", path.display()), || {
        std::fs::read_to_string(path).ok().filter(|s| !s.is_empty())
    })
}

/// Wait for a JSON file (written atomically by a fixture).
pub fn wait_json(path: &Path) -> Value {
    serde_json::from_str(&wait_file(path)).expect("fixture wrote valid JSON")
}

pub fn status_of(p: &Value) -> &str {
    p["pm2_env"]["status"].as_str().unwrap_or("?")
}

pub fn pid_of(p: &Value) -> i32 {
    i32::try_from(p["pid"].as_i64().expect("pid is a number")).expect("pid fits i32")
}

pub fn restart_time(p: &Value) -> u64 {
    p["pm2_env"]["restart_time"]
        .as_u64()
        .expect("restart_time is a number")
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Wait until `pid` is gone.
pub fn wait_dead(pid: i32) {
    wait_until(&format!("pid {pid} to exit"), || {
        (!alive(pid)).then_some(())
    });
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// `GET /` on a local port; the body, or `None` if nothing answers.
pub fn http_get(port: u16) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// `out`, after asserting that `rpm2 <args>` exited 0.
fn expect_success(args: &[&str], out: Out) -> Out {
    assert!(
        out.success(),
        "rpm2 {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    out
}
