//! Shared harness for the integration tests: spawns real `node` children on a channel made by
//! this crate, the way the rpm2 spawner will (child end dup2'ed to fd 3 in `pre_exec`).

// Not `expect`: a binary that uses every helper would find it unfulfilled.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rpm2_node_ipc::cluster::WorkerMessage;
use rpm2_node_ipc::{channel_pair, child_env, open, prepare_child_fd, ChannelSender, Incoming};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

pub const NODE: &str = "/usr/bin/node";
/// Per-step deadline: every wait in the tests is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

/// A spawned Node child with its channel. The child is killed when this is dropped.
pub struct Worker {
    pub child: tokio::process::Child,
    pub tx: ChannelSender,
    pub rx: UnboundedReceiver<Incoming>,
    _dir: tempfile::TempDir,
}

/// Writes `script` to a temp file (`node -e` skips cluster setup) and runs it with the channel
/// on fd 3; `cluster_id` also sets NODE_UNIQUE_ID (a cluster worker).
pub fn spawn(script: &str, cluster_id: Option<u32>, env: &[(&str, String)]) -> Worker {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.js");
    std::fs::write(&path, script).expect("write script");
    let (parent, child_end) = channel_pair().expect("socketpair");
    let mut cmd = tokio::process::Command::new(NODE);
    cmd.arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env_remove("NODE_UNIQUE_ID")
        .env_remove("NODE_OPTIONS")
        .kill_on_drop(true);
    for (k, v) in child_env(3) {
        cmd.env(k, v);
    }
    if let Some(id) = cluster_id {
        cmd.env("NODE_UNIQUE_ID", id.to_string());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let raw = child_end.as_raw_fd();
    // SAFETY: prepare_child_fd only calls dup2/fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || prepare_child_fd(raw, 3));
    }
    let child = cmd.spawn().expect("spawn node");
    drop(child_end); // only the child holds it now, so its exit gives us EOF
    let (tx, rx) = open(parent).expect("open channel");
    Worker {
        child,
        tx,
        rx,
        _dir: dir,
    }
}

impl Worker {
    /// Next thing from the channel, or panic after [`STEP`].
    pub async fn next(&mut self) -> Incoming {
        tokio::time::timeout(STEP, self.rx.recv())
            .await
            .expect("timed out waiting for the worker")
            .expect("channel receiver ended after Closed")
    }

    /// Next message (panics on Closed).
    pub async fn msg(&mut self) -> (Value, Option<OwnedFd>) {
        match self.next().await {
            Incoming::Message { msg, handle } => (msg, handle),
            // Back to Node's JSON, so tests read every answer the same way.
            Incoming::Accepted { ack, accepted } => (
                serde_json::json!({"cmd": "NODE_CLUSTER", "ack": ack, "accepted": accepted}),
                None,
            ),
            Incoming::Closed => panic!("channel closed unexpectedly"),
        }
    }

    /// Next cluster message, skipping user messages (returned in `users`).
    pub async fn cluster(&mut self, users: &mut Vec<Value>) -> WorkerMessage {
        loop {
            let (msg, _) = self.msg().await;
            match WorkerMessage::parse(&msg) {
                Some(m) => return m,
                None => users.push(msg),
            }
        }
    }

    /// Waits for `Closed`, skipping messages (returned).
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Incoming::Message { msg, .. } => seen.push(msg),
                Incoming::Accepted { .. } => {}
                Incoming::Closed => return seen,
            }
        }
    }

    /// Waits for the child to exit.
    pub async fn exit(&mut self) -> ExitStatus {
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("worker did not exit in time")
            .expect("wait")
    }
}

/// One HTTP/1.0 GET on 127.0.0.1 with a std TcpStream, run on a blocking thread.
pub async fn http_get(port: u16) -> String {
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(STEP)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read response");
        out
    })
    .await
    .expect("client thread")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cluster worker app: a plain http server, no cluster code. W_PORT / W_HOST pick the
/// listen arguments; `ready` and the address are sent in the listen callback like pm2 apps.
pub const HTTP_WORKER: &str = r#"
'use strict';
const http = require('http');
const cluster = require('cluster');
const port = +(process.env.W_PORT || 0);
const host = process.env.W_HOST || undefined;
const server = http.createServer((req, res) =>
  res.end(`hello from pid ${process.pid} worker ${cluster.worker && cluster.worker.id}\n`));
server.on('error', (e) => process.send({ type: 'error', code: e.code }));
server.listen(port, host, () => {
  process.send('ready');
  process.send({ type: 'process:msg', data: server.address() });
});
"#;
