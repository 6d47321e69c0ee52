//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many
//! bytes of JSON. Requests above [`MAX_FRAME_LEN`] are refused on both
//! sides, so a bad client cannot make the daemon buffer without limit.
//! Answers may be larger (up to [`MAX_ANSWER_LEN`]): a list carries each
//! worker's environment, as pm2's does, and ten thousand apps with a shell
//! environment each make a 40 MB list; a client trusts its own daemon more
//! than the daemon trusts any local client.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest request (and bus event) either side accepts: 16 MiB.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Largest answer the daemon sends and a client reads: 256 MiB.
pub const MAX_ANSWER_LEN: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Its length and the limit it exceeds.
    #[error("frame of {0} bytes exceeds the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Serialise `value` as one frame of at most [`MAX_FRAME_LEN`] bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    encode_within(value, MAX_FRAME_LEN)
}

/// Serialise an answer as one frame of at most [`MAX_ANSWER_LEN`] bytes.
pub fn encode_answer<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    encode_within(value, MAX_ANSWER_LEN)
}

fn encode_within<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, value)?;
    let len = out.len() - 4;
    if len > limit {
        return Err(FrameError::TooLarge(len, limit));
    }
    let len = u32::try_from(len).map_err(|_| FrameError::TooLarge(len, limit))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Accumulates bytes and yields whole frames. An incomplete frame is not an
/// error: `next_frame` returns `Ok(None)` until the rest arrives.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts: frames are consumed by moving
    /// this, and the buffer is compacted once per `extend`, not per frame.
    start: usize,
    /// Largest frame accepted.
    limit: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder of requests: frames up to [`MAX_FRAME_LEN`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limit: MAX_FRAME_LEN,
        }
    }

    /// A decoder of the daemon's answers: frames up to [`MAX_ANSWER_LEN`].
    #[must_use]
    pub fn for_answers() -> Self {
        Self {
            limit: MAX_ANSWER_LEN,
            ..Self::new()
        }
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that do not yet form a whole frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, parsed. A frame that is too large or not valid
    /// JSON for `T` is an error; the caller should drop the connection.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > self.limit {
            return Err(FrameError::TooLarge(len, self.limit));
        }
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let parsed = serde_json::from_slice(&rest[4..4 + len]);
        self.start += 4 + len;
        Ok(Some(parsed?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Request;

    #[test]
    fn round_trips_split_and_joined_frames() {
        let a = encode(&Request::Ping).unwrap();
        let b = encode(&Request::Stop {
            targets: vec![crate::Target::Name("app".into())],
        })
        .unwrap();
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let mut dec = FrameDecoder::new();
        // Byte by byte: nothing until each frame is whole.
        let mut got = Vec::new();
        for byte in &all {
            dec.extend(std::slice::from_ref(byte));
            while let Some(r) = dec.next_frame::<Request>().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![
                Request::Ping,
                Request::Stop {
                    targets: vec![crate::Target::Name("app".into())]
                }
            ]
        );
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn refuses_oversized_and_malformed_frames() {
        let mut dec = FrameDecoder::new();
        dec.extend(&u32::MAX.to_be_bytes());
        assert!(matches!(
            dec.next_frame::<Request>(),
            Err(FrameError::TooLarge(..))
        ));

        let mut dec = FrameDecoder::new();
        dec.extend(&5u32.to_be_bytes());
        dec.extend(b"{oops");
        assert!(matches!(
            dec.next_frame::<Request>(),
            Err(FrameError::Malformed(_))
        ));
        // The bad frame is consumed; a good one after it still parses.
        dec.extend(&encode(&Request::Ping).unwrap());
        assert_eq!(dec.next_frame::<Request>().unwrap(), Some(Request::Ping));
    }

    #[test]
    fn answers_may_be_larger_than_requests_but_not_without_limit() {
        let over_requests = u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes();
        let mut requests = FrameDecoder::new();
        requests.extend(&over_requests);
        assert!(matches!(
            requests.next_frame::<Request>(),
            Err(FrameError::TooLarge(..))
        ));
        let mut answers = FrameDecoder::for_answers();
        answers.extend(&over_requests);
        assert!(answers.next_frame::<Request>().unwrap().is_none());
        let mut answers = FrameDecoder::for_answers();
        answers.extend(&u32::MAX.to_be_bytes());
        assert!(matches!(
            answers.next_frame::<Request>(),
            Err(FrameError::TooLarge(..))
        ));
        let big = "x".repeat(MAX_FRAME_LEN);
        assert!(matches!(encode(&big), Err(FrameError::TooLarge(..))));
        assert!(encode_answer(&big).is_ok());
    }

    #[test]
    fn unknown_op_is_malformed_not_a_panic() {
        let body = br#"{"op":"format_disk"}"#;
        let mut dec = FrameDecoder::new();
        dec.extend(&u32::try_from(body.len()).unwrap().to_be_bytes());
        dec.extend(body);
        assert!(dec.next_frame::<Request>().is_err());
    }
}
