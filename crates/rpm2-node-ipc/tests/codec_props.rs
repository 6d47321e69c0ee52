//! Property tests of the Node IPC line decoder (issue 15): any bytes, cut
//! anywhere, give the lines of the whole stream (those over the limit
//! dropped), never a panic; `decode_line` takes any line.
//! Cases: proptest's default (256), or `PROPTEST_CASES`.

use proptest::prelude::*;
use rpm2_node_ipc::codec::{decode_line, LineDecoder};

/// `bytes` cut at `cuts` (modulo its length, in order).
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at {
        out.push(bytes[start..cut].to_vec());
        start = cut;
    }
    out.push(bytes[start..].to_vec());
    out
}

/// Bytes with plenty of newlines and some JSON-looking pieces.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..16),
        Just(b"\n".to_vec()),
        Just(b"{\"cmd\":\"NODE_HANDLE\",\"msg\":{}}\n".to_vec()),
        Just(b"{\"cmd\":\"NODE_CLUSTER\",\"ack\":1,\"accepted\":true,\"seq\":2}\n".to_vec()),
        "\\PC{0,12}\n".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn lines_are_those_of_the_whole_stream_whatever_the_cuts(
        bytes in stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        max in 0usize..48,
    ) {
        let mut dec = LineDecoder::with_max(max);
        let mut got = Vec::new();
        for chunk in chunks(&bytes, &cuts) {
            got.extend(dec.push(&chunk));
        }
        let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let tail = parts.pop().unwrap_or_default();
        let expected: Vec<Vec<u8>> = parts
            .into_iter()
            .filter(|l| l.len() <= max)
            .map(<[u8]>::to_vec)
            .collect();
        prop_assert_eq!(got, expected);
        // An unfinished line waits, unless it is already too long.
        let pending = if tail.len() <= max { tail.len() } else { 0 };
        prop_assert_eq!(dec.pending(), pending);
        for line in dec.push(b"\n") {
            let _ = decode_line(&line);
        }
    }

    #[test]
    fn any_line_decodes_or_is_skipped(line in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_line(&line);
    }
}
