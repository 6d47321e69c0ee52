//! A channel detached from its task (`rpm2 update`) and resumed elsewhere:
//! the worker's end never sees EOF, and a line it was half-way through
//! writing arrives whole on the resumed channel.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rpm2_node_ipc::{channel_pair, open, open_resumed, Incoming};
use serde_json::json;

const STEP: Duration = Duration::from_secs(5);

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Incoming>) -> Incoming {
    tokio::time::timeout(STEP, rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

#[tokio::test(flavor = "current_thread")]
async fn detach_keeps_the_socket_and_a_half_written_line() {
    let (parent, child) = channel_pair().unwrap();
    let mut worker = UnixStream::from(child);
    worker.set_read_timeout(Some(STEP)).unwrap();
    let (sender, mut rx) = open(parent).unwrap();

    worker.write_all(b"{\"a\":1}\n{\"b\":").unwrap();
    match next(&mut rx).await {
        Incoming::Message { msg, .. } => assert_eq!(msg, json!({"a": 1})),
        other => panic!("{other:?}"),
    }
    // Sent before the detach: it reaches the worker.
    sender.send(json!({"to": "worker"})).unwrap();
    let detached = sender
        .detach()
        .expect("open channel")
        .await
        .expect("detached");
    assert_eq!(detached.leftover, b"{\"b\":".to_vec());
    assert!(sender.is_closed(), "no more sends through the old task");
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        let mut buf = [0u8; 256];
        let n = worker.read(&mut buf).unwrap();
        assert!(n > 0, "the worker saw EOF");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"{\"to\":\"worker\"}\n".to_vec());

    // Resumed: the rest of the line completes it; both ways work.
    let (tx, mut rx2) = tokio::sync::mpsc::unbounded_channel();
    let resumed = open_resumed(detached.fd, detached.leftover, tx, |i| i).unwrap();
    worker.write_all(b"2}\n").unwrap();
    match next(&mut rx2).await {
        Incoming::Message { msg, .. } => assert_eq!(msg, json!({"b": 2})),
        other => panic!("{other:?}"),
    }
    resumed.send(json!({"again": true})).unwrap();
    // The channel task runs on this thread: let it write before reading.
    let n = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 256];
        let n = worker.read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let buf = n.await.unwrap();
    let n = buf.len();
    assert_eq!(&buf[..n], b"{\"again\":true}\n");
    // The old receiver never heard of a close.
    assert!(rx.try_recv().is_err());
}
