//! The `NODE_CLUSTER` protocol (spec §3) as types: parsing what workers send, and builders
//! for what the primary answers.
//!
//! Builders return `serde_json::Value` with Node's field order (`cmd` first, the fields in
//! the order Node's primary writes them, `seq` last); this crate enables serde_json's
//! `preserve_order` for that. Node does not depend on the order, but byte-identical lines
//! make transcripts comparable with a real Node primary.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

/// The `cmd` of every cluster message.
pub const CMD: &str = "NODE_CLUSTER";

/// `addressType` of a `queryServer`/`listening` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// `4`: TCP, also used when no host was given.
    Tcp4,
    /// `6`: TCP on an IPv6 address.
    Tcp6,
    /// `-1`: a unix socket path (`port` is `-1` too).
    Unix,
    /// `"udp4"`: dgram.
    Udp4,
    /// `"udp6"`: dgram.
    Udp6,
}

impl AddressType {
    /// Parses the wire value (`4`, `6`, `-1`, `"udp4"`, `"udp6"`).
    pub fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Number(n) => match n.as_i64()? {
                4 => Some(Self::Tcp4),
                6 => Some(Self::Tcp6),
                -1 => Some(Self::Unix),
                _ => None,
            },
            Value::String(s) => match s.as_str() {
                "udp4" => Some(Self::Udp4),
                "udp6" => Some(Self::Udp6),
                _ => None,
            },
            _ => None,
        }
    }

    /// The wire value as JS would print it in a template literal (used in keys).
    pub fn as_js(self) -> &'static str {
        match self {
            Self::Tcp4 => "4",
            Self::Tcp6 => "6",
            Self::Unix => "-1",
            Self::Udp4 => "udp4",
            Self::Udp6 => "udp6",
        }
    }

    /// True for dgram sockets (always shared-handle mode, `dgram.Native`).
    pub fn is_udp(self) -> bool {
        matches!(self, Self::Udp4 | Self::Udp6)
    }
}

/// A worker's `queryServer` request (spec §3.3): it wants a server handle.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryServer {
    /// The request's seq; the reply's `ack`.
    pub seq: u64,
    /// Per-worker count of servers on the same tuple (lets one worker hold several `listen(0)`).
    pub index: i64,
    /// Server data to echo back (`{ticketKeys}` for TLS: a `null` answer crashes https workers).
    pub data: Value,
    /// `None` = no host (bind `::` dual stack); an IP; or an absolute unix socket path.
    pub address: Option<String>,
    /// `0` = any, `-1` = unix path. A `null` port (dgram `{fd}`) reads as `0`.
    pub port: i64,
    pub address_type: AddressType,
    /// `None` when falsy (`0`, `false`, absent): use 511.
    pub backlog: Option<i32>,
    /// Only for `listen({fd})` (an fd in the *primary's* numbering) and dgram (`-1`).
    pub fd: Option<i64>,
    /// libuv flags: TCP `1` = IPv6 only; dgram reuseaddr/ipv6only bits.
    pub flags: i64,
    /// Unix paths: `listen({path, readableAll, writableAll})`.
    pub readable_all: bool,
    pub writable_all: bool,
}

impl QueryServer {
    /// Node's primary key: `${address}:${port}:${addressType}:${fd}`, plus `:${index}` when
    /// `port == 0` (Node 22+), with absent values printed as `null`/`undefined` like JS does.
    /// Same tuple → same key → same handle; every worker's first `listen(0)` shares a port.
    pub fn key(&self) -> String {
        let address = self.address.as_deref().unwrap_or("null");
        let fd = self
            .fd
            .map_or_else(|| "undefined".to_string(), |f| f.to_string());
        let mut key = format!("{address}:{}:{}:{fd}", self.port, self.address_type.as_js());
        if self.port == 0 {
            key.push_str(&format!(":{}", self.index));
        }
        key
    }

    /// The listen backlog to use: Node treats a falsy backlog as 511.
    pub fn backlog_or_default(&self) -> i32 {
        self.backlog.unwrap_or(crate::sockets::DEFAULT_BACKLOG)
    }

    /// True when TCP `flags` ask for an IPv6-only socket (`ipv6Only: true`).
    pub fn ipv6_only(&self) -> bool {
        !self.address_type.is_udp() && self.flags & 1 != 0
    }
}

/// A worker's `listening` notification: the same fields as its query, with the real port.
#[derive(Debug, Clone, PartialEq)]
pub struct Listening {
    pub seq: u64,
    pub index: i64,
    pub address: Option<String>,
    pub port: i64,
    pub address_type: AddressType,
    pub fd: Option<i64>,
    pub data: Value,
}

/// What a worker can send on the cluster channel (spec §3.2).
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerMessage {
    /// The worker set up its channel (always `seq: 0`). pm2 treats this as "started".
    Online,
    QueryServer(QueryServer),
    Listening(Listening),
    /// A server that got its handle from the primary was closed.
    Close {
        key: String,
    },
    /// Worker-side `disconnect()`/`kill()`: answer with [`ack`]`(seq, …)`, the worker waits.
    ExitedAfterDisconnect {
        seq: u64,
    },
    /// An answer (e.g. to `newconn`: `accepted`). Checked before `act`, as Node does.
    Reply {
        ack: u64,
        accepted: Option<bool>,
    },
    /// A cluster message with an `act` we do not know or fields we cannot read.
    Unknown,
}

fn u64_field(m: &Map<String, Value>, k: &str) -> Option<u64> {
    m.get(k).and_then(Value::as_u64)
}

fn opt_i64(m: &Map<String, Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(Value::as_i64)
}

fn opt_string(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// JS truthiness of a backlog value: `0`, `false`, `null`, absent → `None`.
fn backlog(m: &Map<String, Value>) -> Option<i32> {
    let n = m.get("backlog")?.as_i64()?;
    (n != 0).then(|| n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

impl WorkerMessage {
    /// Parses a message from a worker. `None` when it is not a `NODE_CLUSTER` message.
    pub fn parse(msg: &Value) -> Option<WorkerMessage> {
        let m = msg.as_object()?;
        if m.get("cmd").and_then(Value::as_str) != Some(CMD) {
            return None;
        }
        if let Some(ack) = u64_field(m, "ack") {
            let accepted = m.get("accepted").and_then(Value::as_bool);
            return Some(WorkerMessage::Reply { ack, accepted });
        }
        let seq = u64_field(m, "seq");
        let parsed = match m.get("act").and_then(Value::as_str) {
            Some("online") => Some(WorkerMessage::Online),
            Some("queryServer") => (|| {
                Some(WorkerMessage::QueryServer(QueryServer {
                    seq: seq?,
                    index: opt_i64(m, "index").unwrap_or(0),
                    data: m.get("data").cloned().unwrap_or(Value::Null),
                    address: opt_string(m, "address"),
                    port: opt_i64(m, "port").unwrap_or(0),
                    address_type: AddressType::from_value(m.get("addressType")?)?,
                    backlog: backlog(m),
                    fd: opt_i64(m, "fd"),
                    flags: opt_i64(m, "flags").unwrap_or(0),
                    readable_all: m.get("readableAll").and_then(Value::as_bool) == Some(true),
                    writable_all: m.get("writableAll").and_then(Value::as_bool) == Some(true),
                }))
            })(),
            Some("listening") => (|| {
                Some(WorkerMessage::Listening(Listening {
                    seq: seq?,
                    index: opt_i64(m, "index").unwrap_or(0),
                    address: opt_string(m, "address"),
                    port: opt_i64(m, "port").unwrap_or(0),
                    address_type: AddressType::from_value(m.get("addressType")?)?,
                    fd: opt_i64(m, "fd"),
                    data: m.get("data").cloned().unwrap_or(Value::Null),
                }))
            })(),
            Some("close") => opt_string(m, "key").map(|key| WorkerMessage::Close { key }),
            Some("exitedAfterDisconnect") => {
                seq.map(|seq| WorkerMessage::ExitedAfterDisconnect { seq })
            }
            _ => None,
        };
        Some(parsed.unwrap_or(WorkerMessage::Unknown))
    }
}

/// `sockname` of a round-robin reply: what the worker's fake handle reports as its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockName {
    pub address: String,
    /// `"IPv4"` or `"IPv6"`.
    pub family: &'static str,
    pub port: u16,
}

impl SockName {
    /// From the primary's listening socket address (`::` for a dual-stack bind, as Node).
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self {
            address: addr.ip().to_string(),
            family: if addr.is_ipv4() { "IPv4" } else { "IPv6" },
            port: addr.port(),
        }
    }

    fn to_value(&self) -> Value {
        json!({"address": self.address, "family": self.family, "port": self.port})
    }
}

/// The primary's cluster seq counter for one channel. Workers accept gaps, so one counter per
/// channel is enough (spec §3.1).
#[derive(Debug, Default)]
pub struct SeqCounter(AtomicU64);

impl SeqCounter {
    /// Starts at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the next seq (0, 1, 2, …).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Round-robin answer to `queryServer` (spec §3.5): no handle, `errno: null`, and `sockname`
/// (omitted for unix paths).
pub fn reply_round_robin(
    ack: u64,
    key: &str,
    data: Value,
    sockname: Option<SockName>,
    seq: u64,
) -> Value {
    let mut m = Map::new();
    m.insert("cmd".into(), CMD.into());
    m.insert("errno".into(), Value::Null);
    m.insert("key".into(), key.into());
    m.insert("ack".into(), ack.into());
    m.insert("data".into(), data);
    if let Some(s) = sockname {
        m.insert("sockname".into(), s.to_value());
    }
    m.insert("seq".into(), seq.into());
    Value::Object(m)
}

/// Shared-handle answer to `queryServer` (spec §3.4): `errno: 0`. Send it with
/// [`crate::ChannelSender::send_handle`] and the bound socket.
pub fn reply_shared(ack: u64, key: &str, data: Value, seq: u64) -> Value {
    json!({"cmd": CMD, "errno": 0, "key": key, "ack": ack, "data": data, "seq": seq})
}

/// Failure answer to `queryServer` (spec §3.6): `errno` is a negative libuv errno (see
/// [`crate::sockets::errno_of`]); the worker's server emits `'error'`.
pub fn reply_error(ack: u64, key: &str, errno: i32, data: Value, seq: u64) -> Value {
    json!({"cmd": CMD, "errno": errno, "key": key, "ack": ack, "data": data, "seq": seq})
}

/// Round-robin connection hand-off (send with the connection fd); the worker answers
/// `{ack: seq, accepted}`.
pub fn newconn(key: &str, seq: u64) -> Value {
    json!({"cmd": CMD, "act": "newconn", "key": key, "seq": seq})
}

/// Graceful stop: the worker closes its primary-provided servers and disconnects.
pub fn disconnect(seq: u64) -> Value {
    json!({"cmd": CMD, "act": "disconnect", "seq": seq})
}

/// A bare answer, e.g. to `exitedAfterDisconnect`.
pub fn ack(ack: u64, seq: u64) -> Value {
    json!({"cmd": CMD, "ack": ack, "seq": seq})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<WorkerMessage> {
        WorkerMessage::parse(&serde_json::from_str(s).unwrap())
    }

    fn qs(s: &str) -> QueryServer {
        match parse(s) {
            Some(WorkerMessage::QueryServer(q)) => q,
            other => panic!("not a queryServer: {other:?}"),
        }
    }

    #[test]
    fn parses_query_server_forms() {
        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":null,"port":3000,"addressType":4,"backlog":0,"seq":1}"#,
        );
        assert_eq!(q.seq, 1);
        assert_eq!(q.address, None);
        assert_eq!(q.port, 3000);
        assert_eq!(q.address_type, AddressType::Tcp4);
        assert_eq!(q.backlog, None);
        assert_eq!(q.backlog_or_default(), 511);
        assert_eq!(q.fd, None);
        assert_eq!(q.flags, 0);
        assert_eq!(q.key(), "null:3000:4:undefined");

        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":"127.0.0.1","port":3000,"addressType":4,"flags":0,"backlog":false,"seq":1}"#,
        );
        assert_eq!(q.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(q.backlog, None);
        assert_eq!(q.key(), "127.0.0.1:3000:4:undefined");

        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":"/x/app.sock","port":-1,"addressType":-1,"backlog":0,"seq":1}"#,
        );
        assert_eq!(q.address_type, AddressType::Unix);
        assert_eq!(q.key(), "/x/app.sock:-1:-1:undefined");

        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":"127.0.0.1","port":18703,"addressType":"udp4","fd":-1,"flags":0,"seq":1}"#,
        );
        assert_eq!(q.address_type, AddressType::Udp4);
        assert_eq!(q.fd, Some(-1));
        assert_eq!(q.key(), "127.0.0.1:18703:udp4:-1");

        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":1,"data":{"ticketKeys":"ab"},"address":"::1","port":0,"addressType":6,"flags":1,"backlog":128,"seq":2}"#,
        );
        assert_eq!(q.backlog, Some(128));
        assert!(q.ipv6_only());
        assert_eq!(q.data, json!({"ticketKeys":"ab"}));
        assert_eq!(q.key(), "::1:0:6:undefined:1");

        let q = qs(
            r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":null,"port":0,"addressType":4,"backlog":0,"seq":1}"#,
        );
        assert_eq!(q.key(), "null:0:4:undefined:0");
    }

    #[test]
    fn parses_other_worker_messages() {
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","act":"online","seq":0}"#),
            Some(WorkerMessage::Online)
        );
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","act":"close","key":"null:18700:4:undefined","seq":3}"#),
            Some(WorkerMessage::Close {
                key: "null:18700:4:undefined".into()
            })
        );
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","act":"exitedAfterDisconnect","seq":4}"#),
            Some(WorkerMessage::ExitedAfterDisconnect { seq: 4 })
        );
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","ack":1,"accepted":true,"seq":3}"#),
            Some(WorkerMessage::Reply {
                ack: 1,
                accepted: Some(true)
            })
        );
        let l = parse(
            r#"{"cmd":"NODE_CLUSTER","act":"listening","index":0,"data":null,"address":null,"port":44237,"addressType":4,"backlog":0,"seq":2}"#,
        );
        match l {
            Some(WorkerMessage::Listening(l)) => {
                assert_eq!(
                    (l.seq, l.port, l.address_type),
                    (2, 44237, AddressType::Tcp4)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","act":"whatever","seq":9}"#),
            Some(WorkerMessage::Unknown)
        );
        assert_eq!(
            parse(r#"{"cmd":"NODE_CLUSTER","act":"queryServer","seq":9,"addressType":"tcp9"}"#),
            Some(WorkerMessage::Unknown)
        );
        assert_eq!(parse(r#"{"cmd":"NODE_HANDLE_ACK"}"#), None);
        assert_eq!(parse(r#""ready""#), None);
    }

    fn wire(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn builders_match_spec_wire_strings() {
        let key = "null:18701:4:undefined";
        let sn = SockName {
            address: "127.0.0.1".into(),
            family: "IPv4",
            port: 18701,
        };
        assert_eq!(
            wire(&reply_round_robin(1, key, Value::Null, Some(sn), 0)),
            r#"{"cmd":"NODE_CLUSTER","errno":null,"key":"null:18701:4:undefined","ack":1,"data":null,"sockname":{"address":"127.0.0.1","family":"IPv4","port":18701},"seq":0}"#
        );
        assert_eq!(
            wire(&reply_round_robin(
                1,
                "<dir>/app.sock:-1:-1:undefined",
                Value::Null,
                None,
                0
            )),
            r#"{"cmd":"NODE_CLUSTER","errno":null,"key":"<dir>/app.sock:-1:-1:undefined","ack":1,"data":null,"seq":0}"#
        );
        assert_eq!(
            wire(&reply_shared(1, "null:18700:4:undefined", Value::Null, 0)),
            r#"{"cmd":"NODE_CLUSTER","errno":0,"key":"null:18700:4:undefined","ack":1,"data":null,"seq":0}"#
        );
        assert_eq!(
            wire(&reply_error(1, key, -98, json!({"ticketKeys":"x"}), 2)),
            r#"{"cmd":"NODE_CLUSTER","errno":-98,"key":"null:18701:4:undefined","ack":1,"data":{"ticketKeys":"x"},"seq":2}"#
        );
        assert_eq!(
            wire(&newconn(key, 1)),
            r#"{"cmd":"NODE_CLUSTER","act":"newconn","key":"null:18701:4:undefined","seq":1}"#
        );
        assert_eq!(
            wire(&disconnect(1)),
            r#"{"cmd":"NODE_CLUSTER","act":"disconnect","seq":1}"#
        );
        assert_eq!(
            wire(&ack(4, 1)),
            r#"{"cmd":"NODE_CLUSTER","ack":4,"seq":1}"#
        );
        let v6 = SockName::from_addr("[::]:3000".parse().unwrap());
        assert_eq!(
            wire(&v6.to_value()),
            r#"{"address":"::","family":"IPv6","port":3000}"#
        );
    }

    #[test]
    fn seq_counter_counts_from_zero() {
        let s = SeqCounter::new();
        assert_eq!((s.next(), s.next(), s.next()), (0, 1, 2));
    }
}
