//! (a) A plain `child_process.fork()`-style child (no cluster) on our channel.

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{spawn, STEP};
use rpm2_node_ipc::{HandleType, Incoming};
use serde_json::json;

const FORK_WORKER: &str = r#"
'use strict';
const net = require('net');
process.on('message', (m, handle) => {
  if (handle) {
    const s = new net.Socket({ handle });
    s.end(`hi from child, msg ${JSON.stringify(m)}\n`);
    return;
  }
  if (m && m.echo !== undefined) process.send({ echoed: m.echo, len: m.echo.length });
});
process.on('disconnect', () => {
  process.exitCode = 42; // proves the 'disconnect' listener ran
});
process.send('ready');
process.send({ type: 'process:msg', data: { a: 1 } });
"#;

#[tokio::test]
async fn fork_style_worker_messages_handles_and_disconnect() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut w = spawn(FORK_WORKER, None, &[]);
        assert_eq!(w.msg().await.0, json!("ready"));
        assert_eq!(
            w.msg().await.0,
            json!({"type": "process:msg", "data": {"a": 1}})
        );

        // Parent -> child user message, with non-ASCII text.
        w.tx.send(json!({"echo": "h\u{e9}llo \u{2713}"})).unwrap();
        let (m, _) = w.msg().await;
        assert_eq!(m["echoed"], "h\u{e9}llo \u{2713}");

        // Bigger than the socket buffers and libuv's 64 KiB reads in both directions:
        // partial writes (EAGAIN) here, lines split across many reads there and back.
        let big = "x\u{e9}".repeat(300_000);
        w.tx.send(json!({ "echo": big })).unwrap();
        let (m, _) = w.msg().await;
        assert_eq!(m["echoed"].as_str().map(str::len), Some(big.len()));
        assert_eq!(m["len"], 600_000);

        // A handle as a user message: the child wraps it in a net.Socket and writes to it.
        let (ours, theirs) = UnixStream::pair().unwrap();
        w.tx.send_handle(
            json!({"kind": "sock"}),
            HandleType::NetNative,
            OwnedFd::from(theirs),
        )
        .unwrap();
        // Queued behind the handle until the child's NODE_HANDLE_ACK, then delivered in order.
        w.tx.send(json!({"echo": "after handle"})).unwrap();
        let (m, _) = w.msg().await;
        assert_eq!(m["echoed"], "after handle");
        let text = tokio::task::spawn_blocking(move || {
            let mut ours = ours;
            ours.set_read_timeout(Some(STEP)).unwrap();
            let mut s = String::new();
            ours.read_to_string(&mut s).unwrap();
            s
        })
        .await
        .unwrap();
        assert_eq!(text, "hi from child, msg {\"kind\":\"sock\"}\n");

        // Closing our end: the child sees 'disconnect', then exits (nothing else keeps it).
        w.tx.close();
        assert!(w.tx.send(json!("late")).is_err());
        assert!(matches!(w.next().await, Incoming::Closed));
        assert!(w.rx.recv().await.is_none(), "receiver ends after Closed");
        let status = w.exit().await;
        assert_eq!(status.code(), Some(42));
    })
    .await
    .expect("test deadline");
}

#[tokio::test]
async fn child_exit_gives_closed() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut w = spawn("process.send('bye'); process.disconnect();", None, &[]);
        let seen = w.until_closed().await;
        assert_eq!(seen, vec![json!("bye")]);
        assert_eq!(w.exit().await.code(), Some(0));
        assert!(w.tx.send(json!(1)).is_err());
    })
    .await
    .expect("test deadline");
}
