//! Unframed bytes: a frame is whatever has arrived (gev's `DefaultProtocol`).

use bytes::{Bytes, BytesMut};

use super::{CodecError, Decoder, Encoder};

/// Passes bytes through without framing: each decode yields everything buffered.
///
/// Decoding splits the buffered bytes off the receive buffer and freezes them, so a frame shares
/// the buffer's memory instead of copying it. An optional cap
/// ([`set_max_frame_length`](Self::set_max_frame_length)) cuts large reads into pieces of at
/// most that many bytes; raw bytes have no boundaries to violate, so that is never an error. Encoding appends the payload unchanged (a sender that
/// already holds a [`Bytes`] can queue it as is and skip the encoder).
///
/// ```
/// use bytes::BytesMut;
/// use gale_core::codec::{Decoder, Encoder, Raw};
///
/// let mut raw = Raw::new();
/// let mut buf = BytesMut::from(&b"GET / HTTP/1.0\r\n"[..]);
/// let frame = raw.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(&frame[..], b"GET / HTTP/1.0\r\n");
/// assert!(raw.decode(&mut buf).unwrap().is_none());
///
/// // Capped frames: a 10-byte read comes out as 4 + 4 + 2.
/// raw.set_max_frame_length(4);
/// let mut buf = BytesMut::from(&b"0123456789"[..]);
/// let mut sizes = Vec::new();
/// while let Some(frame) = raw.decode(&mut buf).unwrap() {
///     sizes.push(frame.len());
/// }
/// assert_eq!(sizes, [4, 4, 2]);
///
/// let mut out = BytesMut::new();
/// raw.encode(&b"pong"[..], &mut out).unwrap();
/// assert_eq!(&out[..], b"pong");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    max_frame_length: usize,
}

impl Raw {
    /// A codec that yields all buffered bytes as one frame (no maximum).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_frame_length: usize::MAX,
        }
    }

    /// Caps each decoded frame at `max` bytes (default: `usize::MAX`, i.e. no cap); larger
    /// buffers are yielded in several frames. A `max` of 0 is treated as 1.
    pub fn set_max_frame_length(&mut self, max: usize) -> &mut Self {
        self.max_frame_length = max.max(1);
        self
    }

    /// The most bytes one decoded frame holds.
    #[must_use]
    pub const fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }
}

impl Default for Raw {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(match src.len() {
            0 => None,
            n if n <= self.max_frame_length => Some(src.split().freeze()),
            _ => Some(src.split_to(self.max_frame_length).freeze()),
        })
    }

    /// Same as [`decode`](Self::decode): leftover bytes are a frame, never an error.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        self.decode(src)
    }

    fn eof_error(&mut self, buffered: usize) -> CodecError {
        CodecError::Truncated { buffered }
    }
}

impl Encoder<Bytes> for Raw {
    type Error = CodecError;

    /// Appends `item` unchanged; never fails.
    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&[u8]> for Raw {
    type Error = CodecError;

    /// Appends `item` unchanged; never fails.
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use quickcheck::quickcheck;

    use super::Raw;
    use crate::codec::fuzz::feed;
    use crate::codec::{Decoder, Encoder};

    #[test]
    fn empty_buffer_is_no_frame() {
        let mut buf = BytesMut::new();
        assert_eq!(Raw::new().decode(&mut buf), Ok(None));
        assert_eq!(Raw::new().decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn decode_takes_everything_without_copying() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"hello world");
        let start = buf.as_ptr();
        let frame = Raw::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame[..], b"hello world");
        assert_eq!(frame.as_ptr(), start, "the frame shares the receive buffer");
        assert!(buf.is_empty());
    }

    #[test]
    fn cap_splits_frames_and_zero_is_one() {
        let mut codec = Raw::new();
        codec.set_max_frame_length(3);
        let mut buf = BytesMut::from(&b"abcdefg"[..]);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
        assert_eq!(frames, [&b"abc"[..], b"def", b"g"]);

        codec.set_max_frame_length(0);
        assert_eq!(codec.max_frame_length(), 1);
        let mut buf = BytesMut::from(&b"xy"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"x"[..]);
    }

    #[test]
    fn decode_eof_returns_leftovers_never_errors() {
        let mut buf = BytesMut::from(&b"tail"[..]);
        assert_eq!(
            Raw::new().decode_eof(&mut buf),
            Ok(Some(Bytes::from_static(b"tail")))
        );
        assert_eq!(Raw::new().decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn encode_appends_as_is() {
        let mut codec = Raw::default();
        let mut out = BytesMut::from(&b"<"[..]);
        codec.encode(Bytes::from_static(b"ab"), &mut out).unwrap();
        codec.encode(&b"\ncd\r"[..], &mut out).unwrap();
        codec.encode(&b""[..], &mut out).unwrap();
        assert_eq!(&out[..], b"<ab\ncd\r");
    }

    quickcheck! {
        /// Any chunking of any stream decodes to frames that concatenate back to the stream.
        fn prop_chunking_preserves_bytes(frames: Vec<Vec<u8>>, sizes: Vec<u8>) -> bool {
            let mut codec = Raw::new();
            let mut wire = BytesMut::new();
            for frame in &frames {
                codec.encode(&frame[..], &mut wire).unwrap();
            }
            let fed = feed(&mut codec, &wire, &sizes);
            fed.error.is_none() && fed.rest.is_empty() && fed.frames.concat() == frames.concat()
        }

        /// With a cap, no frame is longer than the cap and none is empty.
        fn prop_frames_within_cap(stream: Vec<u8>, cap: u8, sizes: Vec<u8>) -> bool {
            let mut codec = Raw::new();
            codec.set_max_frame_length(usize::from(cap));
            let max = codec.max_frame_length();
            let fed = feed(&mut codec, &stream, &sizes);
            fed.frames.iter().all(|f| !f.is_empty() && f.len() <= max)
                && fed.idle_peak == 0
                && fed.frames.concat() == stream
        }
    }
}
