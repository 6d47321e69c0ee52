//! (b)-(e) Unmodified `http.createServer().listen()` cluster workers, with the test acting as
//! a minimal cluster primary built from this crate.

mod common;

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::{free_port, http_get, spawn, Worker, HTTP_WORKER, STEP};
use rpm2_node_ipc::cluster::{self, QueryServer, SeqCounter, SockName, WorkerMessage};
use rpm2_node_ipc::{handoff, sockets, HandleType, Incoming};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(40);

/// Online, then the queryServer.
async fn online_and_query(w: &mut Worker) -> QueryServer {
    let mut users = Vec::new();
    assert_eq!(w.cluster(&mut users).await, WorkerMessage::Online);
    match w.cluster(&mut users).await {
        WorkerMessage::QueryServer(q) => q,
        other => panic!("expected queryServer, got {other:?}"),
    }
}

/// Waits for both `"ready"` and the cluster `listening`; returns the listening port.
async fn ready_and_listening(w: &mut Worker) -> u16 {
    let (mut ready, mut port) = (false, None);
    while !(ready && port.is_some()) {
        let (msg, _) = w.msg().await;
        if msg == json!("ready") {
            ready = true;
        } else if let Some(WorkerMessage::Listening(l)) = WorkerMessage::parse(&msg) {
            port = Some(u16::try_from(l.port).expect("real port"));
        } else if msg["type"] == "error" {
            panic!("worker server error: {msg}");
        }
    }
    port.unwrap()
}

/// Primary-initiated graceful stop: `disconnect` → worker closes `key` → EOF → exit 0.
async fn disconnect_and_expect_exit0(w: &mut Worker, seq: &SeqCounter, key: &str) {
    w.tx.send(cluster::disconnect(seq.next())).unwrap();
    let seen = w.until_closed().await;
    assert!(
        seen.iter().any(|m| WorkerMessage::parse(m)
            == Some(WorkerMessage::Close {
                key: key.to_string()
            })),
        "no close for {key} in {seen:?}"
    );
    assert_eq!(w.exit().await.code(), Some(0));
}

/// Hands one accepted connection to the worker with `newconn`; returns the newconn seq.
fn hand_off(w: &Worker, seq: &SeqCounter, key: &str, conn: tokio::net::TcpStream) -> u64 {
    // tokio's streams are non-blocking already, as the daemon's accept4 makes them.
    let fd = std::sync::Arc::new(OwnedFd::from(conn.into_std().unwrap()));
    let s = seq.next();
    w.tx.send_handle_line(handoff::newconn_line(key, s), fd)
        .unwrap();
    s
}

async fn accept(l: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    tokio::time::timeout(STEP, l.accept())
        .await
        .expect("no connection")
        .unwrap()
        .0
}

#[tokio::test]
async fn round_robin_listen0() {
    tokio::time::timeout(DEADLINE, async {
        let mut w = spawn(HTTP_WORKER, Some(1), &[]);
        let seq = SeqCounter::new();
        let q = online_and_query(&mut w).await;
        assert_eq!((q.address.as_deref(), q.port), (None, 0));
        let key = q.key();
        assert_eq!(key, "null:0:4:undefined:0");

        let listener = sockets::bind_tcp(
            q.address.as_deref(),
            q.port as u16,
            q.flags,
            q.backlog_or_default(),
        )
        .unwrap();
        let sn = SockName::from_addr(listener.local_addr().unwrap());
        let port = sn.port;
        w.tx.send(cluster::reply_round_robin(
            q.seq,
            &key,
            q.data.clone(),
            Some(sn),
            seq.next(),
        ))
        .unwrap();
        assert_eq!(ready_and_listening(&mut w).await, port);

        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let client = tokio::spawn(http_get(port));
        let conn = accept(&listener).await;
        let s = hand_off(&w, &seq, &key, conn);
        // Node spells its answer the way the byte-level parser expects.
        match w.next().await {
            Incoming::Accepted { ack, accepted } => assert_eq!((ack, accepted), (s, true)),
            other => panic!("expected the fast-path answer, got {other:?}"),
        }
        let resp = client.await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(
            resp.contains("hello from pid") && resp.contains("worker 1"),
            "{resp}"
        );

        disconnect_and_expect_exit0(&mut w, &seq, &key).await;
    })
    .await
    .expect("test deadline");
}

/// Shared-handle mode: the worker gets the socket and calls `listen` itself. `listening`
/// chooses whether we pass it bound-only (Node's way) or already listening.
async fn shared(listening: bool) {
    let mut w = spawn(HTTP_WORKER, Some(7), &[]);
    let seq = SeqCounter::new();
    let q = online_and_query(&mut w).await;
    let key = q.key();
    let fd: OwnedFd = if listening {
        sockets::bind_tcp(q.address.as_deref(), q.port as u16, q.flags, 0)
            .unwrap()
            .into()
    } else {
        sockets::bind_tcp_socket(q.address.as_deref(), q.port as u16, q.flags).unwrap()
    };
    // Keep our own copy, as Node's primary does while workers use the handle.
    let ours = std::net::TcpListener::from(fd.try_clone().unwrap());
    let port = ours.local_addr().unwrap().port();
    w.tx.send_handle(
        cluster::reply_shared(q.seq, &key, q.data.clone(), seq.next()),
        HandleType::NetNative,
        fd,
    )
    .unwrap();
    assert_eq!(ready_and_listening(&mut w).await, port);
    for _ in 0..3 {
        let resp = http_get(port).await;
        assert!(
            resp.contains("hello from pid") && resp.contains("worker 7"),
            "{resp}"
        );
    }
    disconnect_and_expect_exit0(&mut w, &seq, &key).await;
}

#[tokio::test]
async fn shared_handle_bound_not_listening() {
    tokio::time::timeout(DEADLINE, shared(false))
        .await
        .expect("test deadline");
}

#[tokio::test]
async fn shared_handle_already_listening() {
    tokio::time::timeout(DEADLINE, shared(true))
        .await
        .expect("test deadline");
}

/// (d) Many connections over one worker, all handed off back to back without waiting for
/// answers: every handle after the first waits in the one-handle-in-flight queue.
#[tokio::test]
async fn round_robin_many_connections_fixed_port() {
    const N: usize = 40;
    tokio::time::timeout(DEADLINE, async {
        let want_port = free_port();
        let mut w = spawn(
            HTTP_WORKER,
            Some(2),
            &[
                ("W_PORT", want_port.to_string()),
                ("W_HOST", "127.0.0.1".into()),
            ],
        );
        let seq = SeqCounter::new();
        let q = online_and_query(&mut w).await;
        assert_eq!(
            (q.address.as_deref(), q.port),
            (Some("127.0.0.1"), i64::from(want_port))
        );
        let key = q.key();
        assert_eq!(key, format!("127.0.0.1:{want_port}:4:undefined"));
        let listener = sockets::bind_tcp(
            Some("127.0.0.1"),
            want_port,
            q.flags,
            q.backlog_or_default(),
        )
        .unwrap();
        let sn = SockName::from_addr(listener.local_addr().unwrap());
        assert_eq!(sn.family, "IPv4");
        w.tx.send(cluster::reply_round_robin(
            q.seq,
            &key,
            Value::Null,
            Some(sn),
            seq.next(),
        ))
        .unwrap();
        assert_eq!(ready_and_listening(&mut w).await, want_port);

        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let clients: Vec<_> = (0..N).map(|_| tokio::spawn(http_get(want_port))).collect();
        let mut pending = std::collections::HashSet::new();
        for _ in 0..N {
            let conn = accept(&listener).await;
            pending.insert(hand_off(&w, &seq, &key, conn));
        }
        let mut users = Vec::new();
        while !pending.is_empty() {
            match w.cluster(&mut users).await {
                WorkerMessage::Reply { ack, accepted } => {
                    assert_eq!(accepted, Some(true));
                    assert!(pending.remove(&ack), "unexpected ack {ack}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for c in clients {
            let resp = c.await.unwrap();
            assert!(resp.contains("hello from pid"), "{resp}");
        }
        disconnect_and_expect_exit0(&mut w, &seq, &key).await;
    })
    .await
    .expect("test deadline");
}

/// A bind failure answered with `reply_error`: the worker's server emits the libuv error.
#[tokio::test]
async fn query_error_reaches_the_worker() {
    tokio::time::timeout(DEADLINE, async {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let mut w = spawn(
            HTTP_WORKER,
            Some(3),
            &[("W_PORT", port.to_string()), ("W_HOST", "127.0.0.1".into())],
        );
        let seq = SeqCounter::new();
        let q = online_and_query(&mut w).await;
        let err = sockets::bind_tcp(Some("127.0.0.1"), port, q.flags, 0).unwrap_err();
        let errno = sockets::errno_of(&err);
        assert_eq!(errno, -98);
        w.tx.send(cluster::reply_error(
            q.seq,
            &q.key(),
            errno,
            q.data.clone(),
            seq.next(),
        ))
        .unwrap();
        let (msg, _) = w.msg().await;
        assert_eq!(msg, json!({"type": "error", "code": "EADDRINUSE"}));
        // No server holds the worker: closing the channel makes it exit 0 (spec §2.4).
        w.tx.close();
        w.until_closed().await;
        assert_eq!(w.exit().await.code(), Some(0));
    })
    .await
    .expect("test deadline");
}

/// (e) UDP: always a shared `dgram.Native` handle.
#[tokio::test]
async fn shared_udp() {
    const UDP_WORKER: &str = r#"
'use strict';
const dgram = require('dgram');
const s = dgram.createSocket('udp4');
s.on('message', (msg, r) => s.send(`pong ${msg} from ${process.pid}`, r.port, r.address));
s.bind(+process.env.W_PORT, '127.0.0.1', () => process.send('ready'));
"#;
    tokio::time::timeout(DEADLINE, async {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut w = spawn(UDP_WORKER, Some(4), &[("W_PORT", port.to_string())]);
        let seq = SeqCounter::new();
        let q = online_and_query(&mut w).await;
        assert!(q.address_type.is_udp());
        let key = q.key();
        assert_eq!(key, format!("127.0.0.1:{port}:udp4:-1"));
        let sock = sockets::bind_udp(q.address.as_deref(), port, false, q.flags).unwrap();
        w.tx.send_handle(
            cluster::reply_shared(q.seq, &key, q.data.clone(), seq.next()),
            HandleType::DgramNative,
            sock.into(),
        )
        .unwrap();
        loop {
            let (msg, _) = w.msg().await;
            if msg == json!("ready") {
                break;
            }
        }
        let answer = tokio::task::spawn_blocking(move || {
            let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(STEP)).unwrap();
            c.send_to(b"ping", ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 200];
            let n = c.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("pong ping from "), "{answer}");
        // Channel EOF: a cluster worker exits 0 right away (spec §2.4).
        w.tx.close();
        w.until_closed().await;
        assert_eq!(w.exit().await.code(), Some(0));
    })
    .await
    .expect("test deadline");
}
