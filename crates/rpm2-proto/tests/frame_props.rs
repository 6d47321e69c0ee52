//! Property tests of the RPC frame decoder (issue 15): whatever bytes a
//! client sends, cut wherever the socket cuts them, the decoder never
//! panics; valid frames come out whole and in order whatever the cuts.
//! Cases: proptest's default (256), or `PROPTEST_CASES`.

use proptest::prelude::*;
use rpm2_proto::frame::{encode, FrameDecoder, FrameError, MAX_FRAME_LEN};
use rpm2_proto::{Request, Target};
use serde_json::Value;

/// `bytes` cut at `cuts` (positions taken modulo its length, in order).
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

/// Feed `parts` one at a time, taking frames as the server does: stop at
/// the first too-large frame (the server hangs up), go on after a
/// malformed one (the server answers an error).
fn feed<T: serde::de::DeserializeOwned>(dec: &mut FrameDecoder, parts: &[Vec<u8>]) -> Vec<T> {
    let mut got = Vec::new();
    for part in parts {
        dec.extend(part);
        loop {
            match dec.next_frame::<T>() {
                Ok(Some(v)) => got.push(v),
                Ok(None) => break,
                Err(FrameError::TooLarge(len, limit)) => {
                    assert!(len > limit);
                    return got;
                }
                Err(FrameError::Malformed(_)) => {}
            }
        }
    }
    got
}

/// Bytes that look like frames some of the time: a length prefix that is
/// right, slightly off or random, then arbitrary or JSON-ish bodies.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "\\PC{0,40}".prop_map(String::into_bytes),
        Just(br#"{"op":"ping"}"#.to_vec()),
        Just(br#"{"op":"stop","targets":[1,"a",null]}"#.to_vec()),
        Just(br#"{"op":"describe","targets":"#.to_vec()),
    ];
    let piece = (body, 0u8..4, any::<u32>()).prop_map(|(body, how, random)| {
        let len = match how {
            0 => u32::try_from(body.len()).unwrap_or(u32::MAX),
            1 => u32::try_from(body.len() + 1).unwrap_or(u32::MAX),
            2 => u32::try_from(body.len().saturating_sub(1)).unwrap_or(0),
            _ => random,
        };
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::All),
        any::<u32>().prop_map(Target::Id),
        // As a client spells them: an empty name is refused (malformed),
        // "7" is an id and "all" is all, so names come from parsing text.
        "\\PC{0,12}".prop_filter_map("an empty target", |s| s.parse().ok()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let targets = || proptest::collection::vec(target(), 0..4);
    prop_oneof![
        Just(Request::Ping),
        Just(Request::List),
        Just(Request::Update),
        targets().prop_map(|targets| Request::Stop { targets }),
        targets().prop_map(|targets| Request::Describe { targets }),
        targets().prop_map(|targets| Request::Delete { targets }),
        (any::<u32>(), "\\PC{0,16}", any::<bool>()).prop_map(|(protocol, client, update_only)| {
            Request::Hello {
                protocol,
                client,
                update_only,
            }
        }),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_bytes_any_cuts_never_panic(
        bytes in frame_like(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let parts = chunks(&bytes, &cuts);
        let _ = feed::<Request>(&mut FrameDecoder::new(), &parts);
        let _ = feed::<Value>(&mut FrameDecoder::new(), &parts);
        let _ = feed::<Value>(&mut FrameDecoder::for_answers(), &parts);
    }

    #[test]
    fn valid_requests_round_trip_whatever_the_cuts(
        reqs in proptest::collection::vec(request(), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let bytes: Vec<u8> = reqs.iter().flat_map(|r| encode(r).unwrap()).collect();
        let mut dec = FrameDecoder::new();
        let got = feed::<Request>(&mut dec, &chunks(&bytes, &cuts));
        prop_assert_eq!(got, reqs);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn json_values_round_trip_whatever_the_cuts(
        values in proptest::collection::vec(json(), 0..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| encode(v).unwrap()).collect();
        let got = feed::<Value>(&mut FrameDecoder::new(), &chunks(&bytes, &cuts));
        prop_assert_eq!(got, values);
    }

    /// A frame announced above the limit is refused as soon as its length
    /// is read, before any of its body is buffered.
    #[test]
    fn oversized_frames_are_refused_from_their_length(extra in 1u32..1000, body in proptest::collection::vec(any::<u8>(), 0..32)) {
        let len = u32::try_from(MAX_FRAME_LEN).unwrap() + extra;
        let mut dec = FrameDecoder::new();
        dec.extend(&len.to_be_bytes());
        dec.extend(&body);
        prop_assert!(matches!(dec.next_frame::<Value>(), Err(FrameError::TooLarge(..))));
    }
}
