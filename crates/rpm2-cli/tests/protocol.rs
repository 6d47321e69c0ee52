//! Talking to the daemon's `rpc.sock` directly: malformed frames get an
//! error answer or a hang-up, never a crash, and running apps are left
//! alone. Frames are a 4-byte big-endian length, then that much JSON.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{fixture, pid_of, status_of, wait_file, Rpm2};
use serde_json::{json, Value};

/// The daemon's frame size cap.
#[expect(clippy::cast_possible_truncation, reason = "16 MiB")]
const MAX_FRAME_LEN: u32 = rpm2_proto::frame::MAX_FRAME_LEN as u32;

struct Conn {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(r: &Rpm2) -> Self {
        let s = UnixStream::connect(r.home().join("rpc.sock")).expect("connect rpc.sock");
        // A hang guard: the daemon must answer or hang up well before this.
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self { s, buf: Vec::new() }
    }

    fn raw(&mut self, bytes: &[u8]) {
        // The daemon may already have hung up: that is an allowed answer.
        let _ = self.s.write_all(bytes);
    }

    fn frame(&mut self, body: &[u8]) {
        let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        self.raw(&bytes);
    }

    fn send(&mut self, v: &Value) {
        self.frame(v.to_string().as_bytes());
    }

    fn hello(&mut self) {
        self.send(&json!({"op": "hello", "protocol": rpm2_proto::PROTOCOL_VERSION, "client": "protocol-test"}));
        let resp = self.recv().expect("hello answered");
        assert_eq!(resp["kind"], "hello", "{resp}");
    }

    /// The next response, or `None` when the daemon hung up.
    fn recv(&mut self) -> Option<Value> {
        let mut chunk = [0u8; 4096];
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
                if self.buf.len() >= 4 + len {
                    let v = serde_json::from_slice(&self.buf[4..4 + len])
                        .expect("the daemon sends valid JSON");
                    self.buf.drain(..4 + len);
                    return Some(v);
                }
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("the daemon neither answered nor hung up: {e}"),
            }
        }
    }

    /// The answer must be an error, or the daemon hangs up.
    fn expect_error_or_hangup(&mut self, what: &str) {
        if let Some(resp) = self.recv() {
            assert_eq!(resp["kind"], "error", "{what}: {resp}");
            assert!(resp["error"]["message"].is_string(), "{what}: {resp}");
        }
    }
}

/// A home with a daemon and one app; returns the app's and daemon's pids.
fn setup(r: &Rpm2) -> (i32, i32) {
    r.ok(&["start", &fixture("idle.js"), "--name", "bystander"]);
    (
        pid_of(&r.proc("bystander")),
        r.daemon_pid().expect("pm2.pid"),
    )
}

/// The daemon still answers and the app was not touched.
fn still_fine(r: &Rpm2, app: i32, daemon: i32) {
    let out = r.ok(&["ping"]);
    assert!(out.stdout.contains("pong"));
    assert_eq!(r.daemon_pid(), Some(daemon), "the daemon was replaced");
    let p = r.proc("bystander");
    assert_eq!(status_of(&p), "online");
    assert_eq!(pid_of(&p), app);
    assert_eq!(p["pm2_env"]["restart_time"], 0);
}

#[test]
fn a_request_before_hello_is_refused() {
    let r = Rpm2::new();
    let (app, daemon) = setup(&r);
    for req in [
        json!({"op": "list"}),
        json!({"op": "stop", "targets": ["all"]}),
        json!({"op": "kill"}),
    ] {
        let mut c = Conn::open(&r);
        c.send(&req);
        c.expect_error_or_hangup(&format!("{req} before hello"));
    }
    // A wrong protocol version is refused too.
    let mut c = Conn::open(&r);
    c.send(&json!({"op": "hello", "protocol": 999, "client": "future"}));
    c.expect_error_or_hangup("hello with protocol 999");
    still_fine(&r, app, daemon);
}

#[test]
fn garbage_and_unknown_ops_get_errors() {
    let r = Rpm2::new();
    let (app, daemon) = setup(&r);
    let bad: [&[u8]; 7] = [
        b"{oops",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        br#"{"op": "format_disk"}"#,
        br#"{"op": "stop", "targets": 42}"#,
        br#"{"no_op": true}"#,
    ];
    for body in bad {
        // Before hello...
        let mut c = Conn::open(&r);
        c.frame(body);
        c.expect_error_or_hangup(&format!("{:?} before hello", String::from_utf8_lossy(body)));
        // ...and after.
        let mut c = Conn::open(&r);
        c.hello();
        c.frame(body);
        c.expect_error_or_hangup(&format!("{:?} after hello", String::from_utf8_lossy(body)));
    }
    // A connection that sent garbage and was not dropped still works.
    let mut c = Conn::open(&r);
    c.hello();
    c.frame(b"{oops");
    if c.recv().is_some() {
        c.send(&json!({"op": "ping"}));
        if let Some(resp) = c.recv() {
            assert_eq!(resp["kind"], "pong", "{resp}");
        }
    }
    still_fine(&r, app, daemon);
}

#[test]
fn oversized_length_prefixes_are_refused() {
    let r = Rpm2::new();
    let (app, daemon) = setup(&r);
    for len in [MAX_FRAME_LEN + 1, u32::MAX] {
        let mut c = Conn::open(&r);
        c.hello();
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{\"op\":\"ping\"}");
        c.raw(&bytes);
        // An error then a hang-up, or just a hang-up: never a wait for
        // gigabytes that will not come.
        c.expect_error_or_hangup(&format!("length {len}"));
        assert!(c.recv().is_none(), "the connection should be closed");
    }
    // The same before hello.
    let mut c = Conn::open(&r);
    c.raw(&u32::MAX.to_be_bytes());
    c.expect_error_or_hangup("length u32::MAX before hello");
    still_fine(&r, app, daemon);
}

#[test]
fn truncated_frames_and_silent_clients_do_no_harm() {
    let r = Rpm2::new();
    let (app, daemon) = setup(&r);
    // Half a length prefix, half a body, nothing at all: then hang up.
    for bytes in [&b"\x00\x00"[..], b"\x00\x00\x00\x64{\"op\":", b""] {
        let mut c = Conn::open(&r);
        c.raw(bytes);
        drop(c);
    }
    // Many clients connect and go without a word.
    let idle: Vec<Conn> = (0..50).map(|_| Conn::open(&r)).collect();
    still_fine(&r, app, daemon);
    drop(idle);
    // A client that stops reading its answers does not block others.
    let mut greedy = Conn::open(&r);
    greedy.hello();
    for _ in 0..200 {
        greedy.send(&json!({"op": "list"}));
    }
    still_fine(&r, app, daemon);
    drop(greedy);
    still_fine(&r, app, daemon);
}

#[test]
fn send_data_reaches_the_app_over_ipc() {
    let r = Rpm2::new();
    let file = r.path("received");
    r.ok(&[
        "start",
        &fixture("echo_ipc.js"),
        "--name",
        "echo",
        "--",
        &file.display().to_string(),
    ]);
    wait_file(&r.path("received.up"));
    let mut c = Conn::open(&r);
    c.hello();
    let packet = json!({"topic": "greeting", "data": {"n": 1}});
    c.send(&json!({"op": "send_data", "pm_id": 0, "packet": packet}));
    assert_eq!(c.recv().expect("an answer")["kind"], "ok");
    let got: Value = serde_json::from_str(wait_file(&file).trim()).unwrap();
    assert_eq!(got, packet);
    // An unknown id is an error, not a hang.
    c.send(&json!({"op": "send_data", "pm_id": 99, "packet": "x"}));
    let resp = c.recv().expect("an answer");
    assert_eq!(resp["kind"], "error", "{resp}");
    assert_eq!(resp["error"]["code"], "PROCESS_NOT_FOUND");
}
