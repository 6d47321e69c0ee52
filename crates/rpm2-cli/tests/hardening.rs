//! Faults and abuse (issue 10): a stopped daemon, idle connections that
//! fill the server, a stalled log follower, a deleted socket.

mod common;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{alive, fixture, wait_dead, wait_until, Rpm2};

/// Resumes the daemon when the test ends, even on a failed assertion, so
/// the home's cleanup can reach it.
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Self {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP the daemon");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

#[test]
fn a_stopped_daemon_is_reported_with_its_pid_and_what_to_do() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "calm"]);
    let daemon = r.daemon_pid().expect("daemon pid");
    let stopped = Stopped::new(daemon);

    // The bound comes from the environment…
    let out = r.run_with(&["list"], &[("RPM2_TIMEOUT_MS", "300")]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    let msg = out.stderr.clone();
    assert!(msg.contains(&format!("pid {daemon}")), "{msg}");
    assert!(msg.contains(&format!("kill -CONT {daemon}")), "{msg}");
    assert!(msg.contains("stopped"), "{msg}");
    // …or from the flag, for every kind of command.
    for args in [
        &["--rpc-timeout", "300", "jlist"][..],
        &["--rpc-timeout", "300", "stop", "calm"][..],
        &["--rpc-timeout", "300", "kill"][..],
    ] {
        let out = r.run_with(args, &[]);
        assert_eq!(out.code, Some(3), "rpm2 {args:?}: {}", out.all());
        assert!(
            out.stderr.contains(&format!("pid {daemon}")),
            "{}",
            out.all()
        );
    }
    // Nothing was replaced: the same daemon, resumed, answers everything.
    drop(stopped);
    assert_eq!(r.proc("calm")["pm2_env"]["status"], "online");
    assert_eq!(r.daemon_pid(), Some(daemon));
    r.ok(&["stop", "calm"]);
}

#[test]
fn kill_finds_a_daemon_whose_socket_was_deleted() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "orphan"]);
    let app = common::pid_of(&r.proc("orphan"));
    let daemon = r.daemon_pid().expect("daemon pid");
    std::fs::remove_file(r.home().join("rpc.sock")).unwrap();
    let out = r.ok(&["kill"]);
    assert!(
        !out.all().contains("No rpm2 daemon running"),
        "{}",
        out.all()
    );
    wait_dead(daemon);
    wait_dead(app);
}

#[test]
fn the_daemon_binds_a_deleted_or_replaced_socket_again() {
    let r = Rpm2::new();
    r.ok(&["ping"]);
    let daemon = r.daemon_pid().expect("daemon pid");
    let sock = r.home().join("rpc.sock");
    std::fs::remove_file(&sock).unwrap();
    wait_until("the socket to be bound again", || {
        sock.exists().then_some(())
    });
    r.ok(&["ping"]);
    assert_eq!(r.daemon_pid(), Some(daemon));
    // Replaced by a socket nobody serves.
    std::fs::remove_file(&sock).unwrap();
    let stale = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(stale);
    wait_until("the daemon to answer again", || {
        let out = r.run_with(&["ping"], &[("RPM2_TIMEOUT_MS", "2000")]);
        out.success().then_some(())
    });
    assert_eq!(r.daemon_pid(), Some(daemon));
    assert!(alive(daemon));
}

/// A raw client: connect, optionally say hello.
fn raw(r: &Rpm2, hello: bool) -> std::os::unix::net::UnixStream {
    use std::io::Write;
    let mut s =
        std::os::unix::net::UnixStream::connect(r.home().join("rpc.sock")).expect("connect");
    if hello {
        s.write_all(&frame(&serde_json::json!({
            "op": "hello", "protocol": rpm2_proto::PROTOCOL_VERSION, "client": "hardening-test"
        })))
        .unwrap();
    }
    s
}

/// Start the apps of a config file written here; what the CLI printed.
fn start_file(r: &Rpm2, name: &str, apps: &serde_json::Value) -> String {
    let file = r.write(name, &apps.to_string());
    r.ok(&["start", &file]).all()
}

/// A raw client of a running daemon (started here), past the hello.
fn greeted(r: &Rpm2) -> std::os::unix::net::UnixStream {
    r.ok(&["ping"]);
    let mut s = raw(r, true);
    assert_eq!(read_frame(&mut s).unwrap()["kind"], "hello");
    s
}

fn frame(v: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).unwrap();
    let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// The next frame's JSON (a hang guard of 30 s, not a timing assertion).
fn read_frame(s: &mut std::os::unix::net::UnixStream) -> Option<serde_json::Value> {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Short server timeouts, given to the daemon through the environment of
/// the command that starts it.
const SHORT_SERVER_TIMEOUTS: &[(&str, &str)] = &[
    ("RPM2_RPC_HELLO_TIMEOUT_MS", "1000"),
    ("RPM2_RPC_IDLE_TIMEOUT_MS", "1000"),
];

/// `rpm2 list` until it works; every failure on the way must be the
/// clear "busy" refusal, never a hang.
fn list_until_it_works(r: &Rpm2) {
    wait_until("`rpm2 list` to work again", || {
        let out = r.run_with(&["jlist"], &[("RPM2_TIMEOUT_MS", "20000")]);
        if out.success() {
            return Some(());
        }
        assert_eq!(out.code, Some(3), "{}", out.all());
        assert!(out.stderr.contains("busy"), "{}", out.all());
        None
    });
}

#[test]
fn idle_connections_cannot_lock_everyone_out() {
    let r = Rpm2::new();
    r.run_env(&["ping"], SHORT_SERVER_TIMEOUTS);
    // Silent connections that never say hello…
    let mut silent: Vec<_> = (0..300).map(|_| raw(&r, false)).collect();
    // …fill the server: the newest ones are refused at once, clearly.
    let refused = read_frame(silent.last_mut().unwrap()).expect("an answer to a newcomer");
    assert_eq!(refused["error"]["code"], "DAEMON_BUSY", "{refused}");
    list_until_it_works(&r);
    // The first ones were dropped at the hello deadline.
    assert!(read_frame(&mut silent[0]).is_none());
    drop(silent);
    // Greeted connections that go idle are dropped too.
    let mut idle: Vec<_> = (0..300).map(|_| raw(&r, true)).collect();
    assert_eq!(read_frame(&mut idle[0]).unwrap()["kind"], "hello");
    list_until_it_works(&r);
}

#[test]
fn subscribers_are_counted_apart_and_bounded() {
    let r = Rpm2::new();
    r.ok(&["ping"]);
    let mut subs = Vec::new();
    let mut busy = 0;
    for _ in 0..80 {
        use std::io::Write;
        let mut s = raw(&r, true);
        assert_eq!(read_frame(&mut s).unwrap()["kind"], "hello");
        s.write_all(&frame(&serde_json::json!({"op": "subscribe"})))
            .unwrap();
        let answer = read_frame(&mut s).unwrap();
        if answer["kind"] == "ok" {
            subs.push(s);
        } else {
            assert_eq!(answer["error"]["code"], "DAEMON_BUSY", "{answer}");
            busy += 1;
        }
    }
    assert_eq!(subs.len(), 64);
    assert_eq!(busy, 16);
    // Requests still have all their room.
    r.ok(&["jlist"]);
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An app flooding its (discarded) output, and a `rpm2 logs` follower of
/// it whose output nobody reads yet.
struct Flood {
    written: std::path::PathBuf,
    follower: std::process::Child,
}

impl Flood {
    fn start(r: &Rpm2) -> Self {
        let written = r.path("written");
        let written_s = written.display().to_string();
        let spew = fixture("spew.js");
        let null = "/dev/null";
        r.ok(&[
            "start", &spew, "--name", "spew", "-o", null, "-e", null, "--", &written_s,
        ]);
        let follower = r
            .command(&["logs", "spew", "--raw", "--lines", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Self { written, follower }
    }

    /// Bytes the app wrote so far (it reports every 16 MiB).
    fn total(&self) -> u64 {
        std::fs::read_to_string(&self.written)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Wait until `bytes` more were written, calling `each` as it polls.
    fn let_pass(&self, bytes: u64, mut each: impl FnMut()) {
        let start = wait_until("output", || Some(self.total()).filter(|&t| t > 0));
        wait_until("the flood to go on", || {
            each();
            (self.total() > start + bytes).then_some(())
        });
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.follower.kill();
        let _ = self.follower.wait();
    }
}

#[test]
fn a_stalled_log_follower_does_not_pin_the_daemons_memory() {
    let r = Rpm2::new();
    let flood = Flood::start(&r);
    let daemon = r.daemon_pid().unwrap();
    let base = rss_kib(daemon);
    // The follower never reads: let 512 MiB go by, measuring as it does.
    let mut peak = 0;
    flood.let_pass(512 << 20, || peak = peak.max(rss_kib(daemon)));
    drop(flood);
    eprintln!("daemon RSS: {base} KiB before the follower, at most {peak} KiB while it stalled");
    assert!(
        peak < base + 16 * 1024,
        "daemon RSS rose from {base} KiB to {peak} KiB with a stalled follower"
    );
}

#[test]
fn a_slow_follower_is_told_what_it_missed() {
    use std::io::Read;
    let r = Rpm2::new();
    let mut flood = Flood::start(&r);
    flood.let_pass(64 << 20, || {});
    let follower = &mut flood.follower;
    // Now read: the daemon's buffer drains, then the marker comes.
    let mut out = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut sink = [0u8; 1 << 16];
        while out.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let mut err = follower.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("log lines") {
        let n = err.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the follower ended without a dropped-lines notice: {seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("dropped"), "{seen}");
}

#[test]
fn an_ecosystem_file_of_ten_thousand_apps_starts() {
    let r = Rpm2::new();
    let apps: Vec<_> = (0..10_000)
        .map(|i| serde_json::json!({"name": format!("app{i}"), "script": fixture("idle.js"), "autostart": false}))
        .collect();
    let file = r.write("many.config.json", &serde_json::to_string(&apps).unwrap());
    r.ok(&["start", &file, "-s"]);
    assert_eq!(r.jlist().len(), 10_000);
}

#[test]
fn a_request_over_the_frame_limit_says_which_limit() {
    use std::io::Write;
    let r = Rpm2::new();
    let mut s = greeted(&r);
    s.write_all(&(32u32 << 20).to_be_bytes()).unwrap();
    let answer = read_frame(&mut s).expect("an error answer");
    assert_eq!(answer["error"]["code"], "TOO_LARGE", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("16777216-byte limit"), "{message}");
}

#[test]
fn a_huge_environment_is_refused_naming_the_variable() {
    let r = Rpm2::new();
    let apps = serde_json::json!([{"name": "huge", "script": fixture("idle.js"), "env": {"BIG": "x".repeat(200_000), "SMALL": "y"}}]);
    let file = r.write("huge.config.json", &apps.to_string());
    let out = r.fails(&["start", &file]);
    assert!(out.stderr.contains("BIG is 200004 bytes"), "{}", out.all());
    assert_eq!(out.stderr.matches("E2BIG").count(), 1, "{}", out.all());
}

#[test]
fn an_error_quotes_little_of_a_bad_request() {
    use std::io::Write;
    let r = Rpm2::new();
    let mut s = greeted(&r);
    let junk = "A".repeat(1 << 20);
    s.write_all(&frame(
        &serde_json::json!({"op": "format_disk", "junk": junk}),
    ))
    .unwrap();
    let answer = read_frame(&mut s).expect("an error answer");
    assert_eq!(answer["error"]["code"], "BAD_REQUEST", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.len() < 1000, "{} bytes quoted", message.len());
    // The connection is still usable.
    s.write_all(&frame(&serde_json::json!({"op": "ping"})))
        .unwrap();
    assert_eq!(read_frame(&mut s).unwrap()["kind"], "pong");
}

#[test]
fn two_entries_with_one_name_start_once_with_a_warning_naming_both() {
    let r = Rpm2::new();
    let apps = serde_json::json!([
        {"name": "twin", "script": fixture("idle.js"), "env": {"WHICH": "first"}},
        {"name": "other", "script": fixture("idle.js")},
        {"name": "twin", "script": fixture("env_dump.js"), "env": {"WHICH": "second"}},
    ]);
    let all = start_file(&r, "twins.config.json", &apps);
    assert!(
        all.contains("#1") && all.contains("#3") && all.contains("\"twin\""),
        "{all}"
    );
    let twins = r.procs("twin");
    assert_eq!(twins.len(), 1);
    // Started once, from the last entry: nothing restarted anything.
    assert_eq!(common::restart_time(&twins[0]), 0);
    assert_eq!(
        twins[0]["pm2_env"]["env"]["WHICH"], "second",
        "{}",
        twins[0]
    );
}

#[test]
fn apps_that_would_share_a_log_file_are_warned_about() {
    let r = Rpm2::new();
    let apps = serde_json::json!([
        {"name": "äb", "script": fixture("idle.js")},
        {"name": "öb", "script": fixture("idle.js")},
    ]);
    let all = start_file(&r, "accents.config.json", &apps);
    assert!(
        all.contains("äb") && all.contains("öb") && all.contains("-b-out.log"),
        "{all}"
    );
    // The names stay distinct.
    assert_eq!(r.procs("äb").len(), 1);
    assert_eq!(r.procs("öb").len(), 1);
}

#[test]
fn a_script_that_is_a_directory_is_called_one() {
    let r = Rpm2::new();
    std::fs::create_dir(r.path("appdir")).unwrap();
    for target in [
        "appdir",
        "./appdir",
        &r.path("appdir").display().to_string(),
    ] {
        let out = r.fails(&["start", target]);
        assert!(
            out.stderr.contains("is a directory"),
            "{target}: {}",
            out.all()
        );
    }
}

#[test]
fn another_users_home_is_named_as_such() {
    if !nix::unistd::geteuid().is_root()
        || std::process::Command::new("setpriv")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and setpriv to run the CLI as another user");
        return;
    }
    let r = Rpm2::new();
    r.ok(&["ping"]);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::bin(),
            "list",
        ])
        .env("RPM2_HOME", r.home())
        .env("RPM2_TIMEOUT_MS", "5000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    assert!(!stderr.contains("cannot create"), "{stderr}");
}

#[test]
fn a_crash_loop_gives_one_count_in_the_log_the_list_and_describe() {
    let r = Rpm2::new();
    r.ok(&[
        "start",
        &fixture("crash.js"),
        "--name",
        "loop",
        "--max-restarts",
        "4",
    ]);
    let p = r.wait_status("loop", "errored");
    // Four short runs: the first start and three restarts.
    assert_eq!(common::restart_time(&p), 3, "{p}");
    assert_eq!(p["pm2_env"]["unstable_restarts"], 3, "{p}");
    let log = std::fs::read_to_string(r.home().join("pm2.log")).unwrap();
    assert!(log.contains("too many unstable restarts (3)"), "{log}");
    let table = r.ok(&["list"]).stdout;
    let row = table.lines().find(|l| l.contains("loop")).unwrap();
    assert!(row.split('│').any(|cell| cell.trim() == "3"), "{row}");
}
