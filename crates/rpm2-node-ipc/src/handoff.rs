//! The two lines of a round-robin connection hand-off, written and read as
//! bytes: they happen once per accepted connection, where building and
//! parsing `serde_json::Value`s showed up in the daemon's profile (maps
//! allocated and hashed for four fields). Everything else goes through
//! [`crate::cluster`]'s typed messages.

use std::io::Write;

/// The whole `NODE_HANDLE` line for `newconn` (spec §3.5), byte for byte
/// what [`crate::codec::encode_handle_line`] makes of [`crate::cluster::newconn`].
#[must_use]
pub fn newconn_line(key: &str, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(112 + key.len());
    out.extend_from_slice(
        br#"{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"cmd":"NODE_CLUSTER","act":"newconn","key":"#,
    );
    // Keys hold addresses and paths: escape them as JSON would.
    if serde_json::to_writer(&mut out, key).is_err() {
        out.extend_from_slice(b"null");
    }
    let _ = writeln!(out, ",\"seq\":{seq}}}}}");
    out
}

/// A worker's answer to `newconn` as Node writes it,
/// `{"cmd":"NODE_CLUSTER","ack":A,"accepted":B,"seq":S}`: `Some((A, B))`.
/// `None` for any other line (including the same answer spelled another
/// way), which then takes the general JSON path.
#[must_use]
pub fn parse_accepted_reply(line: &[u8]) -> Option<(u64, bool)> {
    let rest = line.strip_prefix(br#"{"cmd":"NODE_CLUSTER","ack":"#)?;
    let (ack, rest) = leading_u64(rest)?;
    let (accepted, rest) = if let Some(r) = rest.strip_prefix(br#","accepted":true,"seq":"#) {
        (true, r)
    } else {
        (false, rest.strip_prefix(br#","accepted":false,"seq":"#)?)
    };
    let (_seq, rest) = leading_u64(rest)?;
    (rest == b"}").then_some((ack, accepted))
}

/// Decimal digits at the start of `s` (as JSON writes a safe integer).
fn leading_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 || end > 16 || (end > 1 && s[0] == b'0') {
        return None;
    }
    let n = std::str::from_utf8(&s[..end]).ok()?.parse().ok()?;
    Some((n, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{self, WorkerMessage};
    use crate::codec;

    #[test]
    fn newconn_line_matches_the_json_builders() {
        for key in [
            "null:8000:4:undefined:0",
            "::1:443:6:undefined:0",
            "-1:/tmp/a \"q\" \\ é.sock:-1:undefined:0",
        ] {
            for seq in [0, 7, 9_007_199_254_740_991] {
                let general = codec::encode_handle_line("net.Native", &cluster::newconn(key, seq));
                assert_eq!(newconn_line(key, seq), general, "{key} {seq}");
            }
        }
    }

    #[test]
    fn accepted_reply_agrees_with_the_general_parser() {
        let lines = [
            r#"{"cmd":"NODE_CLUSTER","ack":1,"accepted":true,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":42,"accepted":false,"seq":0}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":9007199254740991,"accepted":true,"seq":12}"#,
        ];
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(WorkerMessage::Reply { ack, accepted }) = WorkerMessage::parse(&v) else {
                panic!("general parser: not a reply: {line}");
            };
            assert_eq!(
                parse_accepted_reply(line.as_bytes()),
                Some((ack, accepted.unwrap())),
                "{line}"
            );
        }
    }

    #[test]
    fn other_lines_are_left_to_the_general_path() {
        for line in [
            r#"{"cmd":"NODE_CLUSTER","ack":1,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":1,"accepted":true,"seq":3,"x":1}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":1,"accepted":true,"seq":3} "#,
            r#"{"cmd":"NODE_CLUSTER","ack":-1,"accepted":true,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":01,"accepted":true,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":,"accepted":true,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":99999999999999999,"accepted":true,"seq":3}"#,
            r#"{"cmd":"NODE_CLUSTER","act":"online","seq":1}"#,
            r#"{"cmd":"NODE_CLUSTER","ack":1,"accepted":1,"seq":3}"#,
            "",
        ] {
            assert_eq!(parse_accepted_reply(line.as_bytes()), None, "{line}");
        }
    }
}
