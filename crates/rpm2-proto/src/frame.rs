//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many
//! bytes of JSON. Frames above [`MAX_FRAME_LEN`] are refused on both sides,
//! so a bad peer cannot make the other buffer without limit.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame either side accepts (16 MiB: a jlist of thousands of
/// workers fits many times over).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Serialise `value` as one frame.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, value)?;
    let len = out.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    let len = u32::try_from(len).map_err(|_| FrameError::TooLarge(len))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Accumulates bytes and yields whole frames. An incomplete frame is not an
/// error: `next_frame` returns `Ok(None)` until the rest arrives.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts: frames are consumed by moving
    /// this, and the buffer is compacted once per `extend`, not per frame.
    start: usize,
}

impl FrameDecoder {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
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
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge(len));
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
            Err(FrameError::TooLarge(_))
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
    fn unknown_op_is_malformed_not_a_panic() {
        let body = br#"{"op":"format_disk"}"#;
        let mut dec = FrameDecoder::new();
        dec.extend(&u32::try_from(body.len()).unwrap().to_be_bytes());
        dec.extend(body);
        assert!(dec.next_frame::<Request>().is_err());
    }
}
