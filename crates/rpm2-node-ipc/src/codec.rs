//! Newline-delimited JSON framing of Node's `json` serialization mode (spec §2.1).
//!
//! Node writes `JSON.stringify(msg) + "\n"`; JSON escapes every newline inside strings, so
//! `\n` is a safe delimiter. We split on the raw byte `b'\n'` *before* decoding UTF-8, which
//! makes characters split across reads a non-issue: `0x0A` never occurs inside a multi-byte
//! UTF-8 sequence.

use serde_json::Value;

/// Longest line kept (16 MiB, the RPC frame limit): a peer cannot make the daemon buffer
/// without bound. A longer message is dropped, logged, and the channel goes on with the next
/// line.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Accumulates bytes from the socket and yields complete lines (without the `\n`).
#[derive(Debug)]
pub struct LineDecoder {
    buf: Vec<u8>,
    max: usize,
    /// Inside a line that grew past `max`: its bytes are dropped up to its newline.
    skipping: bool,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::with_max(MAX_LINE)
    }
}

impl LineDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that drops lines longer than `max` bytes.
    pub fn with_max(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Feeds `data` and returns every line completed by it, in order. An incomplete tail stays
    /// buffered for the next call.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        // Only scan the new bytes: the buffered tail is known to hold no newline.
        let mut start = 0;
        for (i, b) in data.iter().enumerate() {
            if *b == b'\n' {
                if std::mem::take(&mut self.skipping) {
                    start = i + 1;
                    continue;
                }
                if self.buf.len() + (i - start) > self.max {
                    self.dropped();
                } else {
                    let mut line = std::mem::take(&mut self.buf);
                    line.extend_from_slice(&data[start..i]);
                    lines.push(line);
                }
                start = i + 1;
            }
        }
        let tail = &data[start..];
        if self.skipping {
            return lines;
        }
        if self.buf.len() + tail.len() > self.max {
            self.dropped();
            self.skipping = true;
        } else {
            self.buf.extend_from_slice(tail);
        }
        lines
    }

    fn dropped(&mut self) {
        self.buf = Vec::new();
        tracing::warn!(
            "node ipc: dropping a message longer than {} bytes",
            self.max
        );
    }

    /// Bytes of an incomplete line waiting for more data.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Takes the incomplete line (to hand the channel to another image).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Parses one line. Empty lines give `None` silently; invalid JSON (or invalid UTF-8) is
/// logged and skipped, because one bad line must not take the daemon's channel down.
pub fn decode_line(line: &[u8]) -> Option<Value> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(v) => Some(v),
        Err(e) => {
            let shown = String::from_utf8_lossy(&line[..line.len().min(200)]);
            tracing::warn!(error = %e, line = %shown, "node ipc: skipping invalid JSON line");
            None
        }
    }
}

/// Encodes one message as a wire line (`JSON + "\n"`).
pub fn encode_line(msg: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (all map keys are strings).
    let mut out = serde_json::to_vec(msg).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

/// Encodes `msg` wrapped in Node's handle envelope, `{"cmd":"NODE_HANDLE","type":T,"msg":M}`,
/// written by hand so the field order never depends on serde_json features.
pub fn encode_handle_line(type_name: &str, msg: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"cmd\":\"NODE_HANDLE\",\"type\":");
    out.extend_from_slice(&serde_json::to_vec(type_name).unwrap_or_default());
    out.extend_from_slice(b",\"msg\":");
    out.extend_from_slice(&serde_json::to_vec(msg).unwrap_or_else(|_| b"null".to_vec()));
    out.extend_from_slice(b"}\n");
    out
}

/// Node's rule for internal messages (spec §2.2): an object whose `cmd` is a string that
/// starts with `NODE_` and is longer than 5 characters.
pub fn is_internal(msg: &Value) -> bool {
    msg.get("cmd")
        .and_then(Value::as_str)
        .is_some_and(|c| c.len() > 5 && c.starts_with("NODE_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(d: &mut LineDecoder, data: &[u8]) -> Vec<Value> {
        d.push(data).iter().filter_map(|l| decode_line(l)).collect()
    }

    #[test]
    fn lines_over_the_limit_are_dropped_and_the_next_ones_kept() {
        let mut d = LineDecoder::with_max(8);
        // Whole in one read.
        assert_eq!(d.push(b"\"12345678901\"\n1\n"), vec![b"1".to_vec()]);
        // Growing over several reads: dropped without buffering the rest.
        assert!(d.push(b"\"1234").is_empty());
        assert!(d.push(b"56789").is_empty());
        assert_eq!(d.pending(), 0);
        assert!(d.push(b"0123456789012345").is_empty());
        assert_eq!(d.pending(), 0);
        assert_eq!(d.push(b"\"\n2\n"), vec![b"2".to_vec()]);
        // Exactly at the limit is kept.
        assert_eq!(d.push(b"12345678\n"), vec![b"12345678".to_vec()]);
        assert_eq!(d.push(b"1234"), Vec::<Vec<u8>>::new());
        assert_eq!(d.push(b"5678\n"), vec![b"12345678".to_vec()]);
    }

    #[test]
    fn line_split_across_reads() {
        let mut d = LineDecoder::new();
        assert!(decode_all(&mut d, b"{\"cmd\":\"NODE_CL").is_empty());
        assert!(decode_all(&mut d, b"USTER\",\"act\":").is_empty());
        assert_eq!(d.pending(), 28);
        let v = decode_all(&mut d, b"\"online\",\"seq\":0}\n");
        assert_eq!(
            v,
            vec![json!({"cmd":"NODE_CLUSTER","act":"online","seq":0})]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn many_messages_in_one_read() {
        let mut d = LineDecoder::new();
        let v = decode_all(
            &mut d,
            b"{\"cmd\":\"NODE_HANDLE_ACK\"}\n{\"cmd\":\"NODE_CLUSTER\",\"ack\":1,\"accepted\":true,\"seq\":3}\n\"ready\"\n{\"a\":",
        );
        assert_eq!(
            v,
            vec![
                json!({"cmd":"NODE_HANDLE_ACK"}),
                json!({"cmd":"NODE_CLUSTER","ack":1,"accepted":true,"seq":3}),
                json!("ready"),
            ]
        );
        assert_eq!(decode_all(&mut d, b"1}\n"), vec![json!({"a":1})]);
    }

    #[test]
    fn utf8_split_across_reads() {
        let line = "{\"msg\":\"h\u{e9}llo \u{1F600}\"}\n".as_bytes().to_vec();
        // Split inside both multi-byte characters, one byte at a time.
        let mut d = LineDecoder::new();
        let mut got = Vec::new();
        for b in &line {
            got.extend(decode_all(&mut d, std::slice::from_ref(b)));
        }
        assert_eq!(got, vec![json!({"msg":"h\u{e9}llo \u{1F600}"})]);
    }

    #[test]
    fn invalid_line_is_skipped() {
        let mut d = LineDecoder::new();
        let v = decode_all(&mut d, b"{not json\n\n\xff\xfe\n{\"ok\":true}\n");
        assert_eq!(v, vec![json!({"ok":true})]);
    }

    #[test]
    fn encodes_handle_envelope_in_node_order() {
        let msg = json!({"cmd":"NODE_CLUSTER","act":"newconn","key":"k","seq":1});
        assert_eq!(
            String::from_utf8(encode_handle_line("net.Native", &msg)).unwrap(),
            "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"cmd\":\"NODE_CLUSTER\",\"act\":\"newconn\",\"key\":\"k\",\"seq\":1}}\n"
        );
        assert_eq!(encode_line(&json!("ready")), b"\"ready\"\n");
    }

    #[test]
    fn internal_rule() {
        assert!(is_internal(&json!({"cmd":"NODE_CLUSTER"})));
        assert!(is_internal(&json!({"cmd":"NODE_X"})));
        assert!(!is_internal(&json!({"cmd":"NODE_"})));
        assert!(!is_internal(&json!({"cmd":"node_cluster"})));
        assert!(!is_internal(&json!({"cmd":5})));
        assert!(!is_internal(&json!("NODE_CLUSTER")));
        assert!(!is_internal(&json!({"type":"process:msg"})));
    }
}
