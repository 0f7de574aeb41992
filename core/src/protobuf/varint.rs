//! Varint-delimited messages: prost's `encode_length_delimited`, Java's `writeDelimitedTo`,
//! Netty's `ProtobufVarint32FrameDecoder` / `ProtobufVarint32LengthFieldPrepender`.

use bytes::{Buf, Bytes, BytesMut};

use super::ProtobufError;
use crate::codec::{Decoder, Encoder};

/// Messages prefixed by their length as a protobuf varint (base-128, least significant group
/// first, the top bit of each byte saying "more follows").
///
/// # Wire layout
///
/// ```text
///  +------------------------------+--------------------------------+
///  |  len: varint, 1 to 10 bytes  |  payload: len bytes            |
///  +------------------------------+--------------------------------+
///
///  300 = 0b10_0101100  ->  0xAC 0x02   (0x80 | 0b0101100, then 0b10)
///
///  10th byte with its top bit set   -> VarintTooLong  (no 64-bit value needs 11 bytes)
///  10th byte above 0x01             -> VarintOverflow (bits past the 64th)
///  len > max_message_length         -> FrameTooLong, as soon as the varint is complete
/// ```
///
/// This is what `prost::Message::encode_length_delimited` and Java's
/// `MessageLite.writeDelimitedTo` write, and what Netty's `ProtobufVarint32FrameDecoder`
/// reads. Decoding accepts any varint prost accepts, including non-minimal ones
/// (`0x80 0x00` is 0); encoding always writes the minimal varint. Netty reads 32-bit varints
/// only (5 bytes), so stay below 4 GiB when talking to it; the default maximum is far below.
///
/// | limit | default | setter |
/// |---|---|---|
/// | declared message length (the varint's value) | 4 MiB | [`set_max_message_length`](Self::set_max_message_length) |
///
/// A peer can make the receive buffer hold at most `max_message_length + 10` bytes for one
/// message. [`frame_size_hint`](Decoder::frame_size_hint) reports the prefix plus the message
/// once the varint is complete and within the limit.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gale_core::codec::{Decoder, Encoder};
/// use gale_core::protobuf::VarintDelimited;
///
/// let mut codec = VarintDelimited::new();
/// let mut wire = BytesMut::new();
/// codec.encode(Bytes::from(vec![7; 300]), &mut wire).unwrap();
/// assert_eq!(&wire[..2], b"\xac\x02");
/// assert_eq!(codec.frame_size_hint(&wire), Some(302));
/// assert_eq!(codec.decode(&mut wire).unwrap().unwrap().len(), 300);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarintDelimited {
    max_message_length: usize,
}

impl VarintDelimited {
    /// The default maximum message length: 4 MiB.
    pub const DEFAULT_MAX_MESSAGE_LENGTH: usize = 4 * 1024 * 1024;
    /// The longest varint: 10 bytes carry 64 bits.
    pub const MAX_VARINT_LEN: usize = 10;

    /// A codec with the default limit.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_message_length: Self::DEFAULT_MAX_MESSAGE_LENGTH,
        }
    }

    /// Sets the longest message accepted or written, not counting the varint (default
    /// [`DEFAULT_MAX_MESSAGE_LENGTH`](Self::DEFAULT_MAX_MESSAGE_LENGTH)).
    pub fn set_max_message_length(&mut self, max: usize) -> &mut Self {
        self.max_message_length = max;
        self
    }

    /// The longest message accepted or written, not counting the varint.
    #[must_use]
    pub const fn max_message_length(&self) -> usize {
        self.max_message_length
    }

    /// Appends the varint for a message of `len` bytes; the message is then sent as is.
    ///
    /// # Errors
    ///
    /// [`ProtobufError::Encode`] when `len` is over the maximum; nothing is written then.
    pub fn encode_header(&self, len: usize, dst: &mut BytesMut) -> Result<(), ProtobufError> {
        if len > self.max_message_length {
            return Err(ProtobufError::Encode("message longer than the maximum"));
        }
        dst.reserve(prost::length_delimiter_len(len));
        prost::encoding::encode_varint(len as u64, dst);
        Ok(())
    }

    /// The varint's length and the whole frame's length, once the varint is complete.
    fn frame_len(&self, src: &[u8]) -> Result<Option<(usize, usize)>, ProtobufError> {
        let Some((len, prefix)) = read_varint(src)? else {
            return Ok(None);
        };
        match usize::try_from(len) {
            Ok(n) if n <= self.max_message_length => Ok(Some((prefix, prefix + n))),
            _ => Err(ProtobufError::FrameTooLong {
                len,
                max: self.max_message_length,
            }),
        }
    }
}

impl Default for VarintDelimited {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for VarintDelimited {
    type Item = Bytes;
    type Error = ProtobufError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtobufError> {
        match self.frame_len(src)? {
            Some((prefix, frame_len)) if src.len() >= frame_len => {
                let mut frame = src.split_to(frame_len);
                frame.advance(prefix);
                Ok(Some(frame.freeze()))
            }
            _ => Ok(None),
        }
    }

    fn eof_error(&mut self, buffered: usize) -> ProtobufError {
        ProtobufError::Truncated { buffered }
    }

    /// The varint plus the message, once the varint is complete and within the limit.
    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        self.frame_len(src).ok().flatten().map(|(_, len)| len)
    }
}

impl Encoder<Bytes> for VarintDelimited {
    type Error = ProtobufError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), ProtobufError> {
        Encoder::<&[u8]>::encode(self, &item, dst)
    }
}

impl Encoder<&[u8]> for VarintDelimited {
    type Error = ProtobufError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), ProtobufError> {
        self.encode_header(item.len(), dst)?;
        dst.extend_from_slice(item);
        Ok(())
    }
}

/// Reads a varint from the front of `src`: its value and length, `None` while it is
/// incomplete (fewer than 10 bytes, all with the continuation bit).
pub(super) fn read_varint(src: &[u8]) -> Result<Option<(u64, usize)>, ProtobufError> {
    let mut value = 0u64;
    for (i, &byte) in src.iter().take(VarintDelimited::MAX_VARINT_LEN).enumerate() {
        if i == VarintDelimited::MAX_VARINT_LEN - 1 {
            if byte & 0x80 != 0 {
                return Err(ProtobufError::VarintTooLong);
            }
            if byte > 1 {
                return Err(ProtobufError::VarintOverflow);
            }
        }
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use prost::Message;
    use quickcheck::{TestResult, quickcheck};

    use super::{VarintDelimited, read_varint};
    use crate::codec::{Decoder, Encoder};
    use crate::protobuf::ProtobufError;
    use crate::protobuf::example::Msg2;
    use crate::protobuf::fuzz::feed;

    #[test]
    fn varint_vectors() {
        let cases: [(&[u8], u64); 9] = [
            (b"\x00", 0),
            (b"\x01", 1),
            (b"\x7f", 127),
            (b"\x80\x01", 128),
            (b"\xac\x02", 300),
            (b"\xff\xff\x7f", (1 << 21) - 1),
            (b"\x80\x80\x80\x02", 1 << 22), // 4 MiB
            (b"\x80\x00", 0),               // non-minimal, as prost accepts
            (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", u64::MAX),
        ];
        for (wire, value) in cases {
            assert_eq!(
                read_varint(wire),
                Ok(Some((value, wire.len()))),
                "{wire:x?}"
            );
            let mut prost_buf = wire;
            assert_eq!(prost::encoding::decode_varint(&mut prost_buf), Ok(value));
            for end in 0..wire.len() {
                assert_eq!(read_varint(&wire[..end]), Ok(None), "prefix of {wire:x?}");
            }
        }
    }

    #[test]
    fn ten_byte_varints_overflow_or_run_on() {
        let mut wire = [0xFF; 10];
        wire[9] = 0x02;
        assert_eq!(read_varint(&wire), Err(ProtobufError::VarintOverflow));
        assert!(prost::encoding::decode_varint(&mut &wire[..]).is_err());
        wire[9] = 0x80;
        assert_eq!(read_varint(&wire), Err(ProtobufError::VarintTooLong));
        assert!(prost::encoding::decode_varint(&mut &wire[..]).is_err());
        let mut codec = VarintDelimited::new();
        let mut buf = BytesMut::from(&[0x80; 9][..]);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(None),
            "nine bytes may still end well"
        );
        buf.extend_from_slice(&[0x80]);
        assert_eq!(codec.decode(&mut buf), Err(ProtobufError::VarintTooLong));
    }

    #[test]
    fn multi_byte_lengths_decode() {
        let mut codec = VarintDelimited::new();
        for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut wire = BytesMut::new();
            codec.encode(&payload[..], &mut wire).unwrap();
            assert_eq!(wire.len(), prost::length_delimiter_len(len) + len);
            assert_eq!(codec.frame_size_hint(&wire), Some(wire.len()));
            let fed = feed(&mut codec, &wire, &[200]);
            assert_eq!(fed.frames, [Bytes::from(payload)], "{len}");
        }
    }

    #[test]
    fn prost_length_delimited_messages_decode() {
        let msgs: Vec<Msg2> = (0..50)
            .map(|i| Msg2 {
                name: "n".repeat(i * 7),
                alias: format!("big {i}"),
                id: i as i32 - 25,
            })
            .collect();
        let mut wire = Vec::new();
        for msg in &msgs {
            msg.encode_length_delimited(&mut wire).unwrap();
        }
        let fed = feed(&mut VarintDelimited::new(), &wire, &[0, 3, 17]);
        let decoded: Vec<Msg2> = fed
            .frames
            .into_iter()
            .map(|f| Msg2::decode(f).unwrap())
            .collect();
        assert_eq!(decoded, msgs);
    }

    #[test]
    fn oversize_declaration_fails_with_only_the_varint_buffered() {
        let mut codec = VarintDelimited::new();
        codec.set_max_message_length(300);
        let mut buf = BytesMut::from(&b"\xad"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\x02"); // 301
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtobufError::FrameTooLong { len: 301, max: 300 })
        );
        assert_eq!(codec.frame_size_hint(&buf), None);
        let mut buf = BytesMut::from(&b"\xac\x02"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(codec.frame_size_hint(&buf), Some(302));

        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"[..]);
        assert_eq!(
            VarintDelimited::new().decode(&mut buf),
            Err(ProtobufError::FrameTooLong {
                len: u64::MAX,
                max: VarintDelimited::DEFAULT_MAX_MESSAGE_LENGTH
            })
        );
    }

    #[test]
    fn decode_eof_reports_truncation() {
        let mut codec = VarintDelimited::new();
        let mut buf = BytesMut::from(&b"\x03ab"[..]);
        assert_eq!(
            codec.decode_eof(&mut buf),
            Err(ProtobufError::Truncated { buffered: 3 })
        );
        let mut buf = BytesMut::from(&b"\x80"[..]);
        assert_eq!(
            codec.decode_eof(&mut buf),
            Err(ProtobufError::Truncated { buffered: 1 })
        );
    }

    #[test]
    fn encode_enforces_the_limit() {
        let mut codec = VarintDelimited::new();
        codec.set_max_message_length(3);
        let mut out = BytesMut::new();
        codec.encode(&b"abc"[..], &mut out).unwrap();
        assert_eq!(
            codec.encode(&b"abcd"[..], &mut out),
            Err(ProtobufError::Encode("message longer than the maximum"))
        );
        assert_eq!(&out[..], b"\x03abc");
    }

    quickcheck! {
        /// Any chunking of a stream of varint-delimited messages decodes to the same
        /// messages, and the codec writes what prost writes.
        fn prop_chunking_roundtrips(sizes: Vec<u16>, chunks: Vec<u8>) -> bool {
            let mut codec = VarintDelimited::new();
            let mut wire = BytesMut::new();
            let mut prost_wire = Vec::new();
            let mut expected = Vec::new();
            for size in sizes {
                let payload: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(7)).collect();
                codec.encode(&payload[..], &mut wire).unwrap();
                prost::encode_length_delimiter(payload.len(), &mut prost_wire).unwrap();
                prost_wire.extend_from_slice(&payload);
                expected.push(Bytes::from(payload));
            }
            let fed = feed(&mut codec, &wire, &chunks);
            wire == prost_wire && fed.error.is_none() && fed.rest.is_empty() && fed.frames == expected
        }

        /// The varint reader agrees with prost's on every input prost can judge.
        fn prop_varint_agrees_with_prost(bytes: Vec<u8>) -> TestResult {
            let ours = read_varint(&bytes);
            let complete = bytes.len() >= 10 || bytes.iter().any(|b| b & 0x80 == 0);
            if !complete {
                return TestResult::from_bool(ours == Ok(None));
            }
            let mut rest = &bytes[..];
            let theirs = prost::encoding::decode_varint(&mut rest);
            TestResult::from_bool(match (ours, theirs) {
                (Ok(Some((a, n))), Ok(b)) => a == b && n == bytes.len() - rest.len(),
                (Err(_), Err(_)) => true,
                _ => false,
            })
        }

        /// A varint declaring more than the maximum fails with nothing else buffered.
        fn prop_oversize_varint_alone_errors(max: u32, excess: u32) -> bool {
            let mut codec = VarintDelimited::new();
            codec.set_max_message_length(max as usize);
            let len = u64::from(max) + 1 + u64::from(excess);
            let mut buf = BytesMut::new();
            prost::encoding::encode_varint(len, &mut buf);
            let prefix = buf.len();
            codec.decode(&mut buf) == Err(ProtobufError::FrameTooLong { len, max: max as usize })
                && buf.len() == prefix
        }
    }
}
