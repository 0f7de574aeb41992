//! Length-prefixed frames (Netty `LengthFieldBasedFrameDecoder`, tokio-util
//! `LengthDelimitedCodec`). The wire layout is drawn in [`LengthDelimited`]'s docs.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{CodecError, Decoder, Encoder, take_front};

mod config;

pub use config::{Endian, LengthConfigError, LengthDelimitedBuilder, LengthWidth};

/// Frames prefixed by a length field, configured like Netty's `LengthFieldBasedFrameDecoder`.
///
/// # Wire layout
///
/// ```text
///  0               offset           header_len = offset + width                frame_len
///  |<-- prefix --->|<--- width ---->|<----------- rest of the frame ------------->|
///  +---------------+----------------+---------------------------------------------+
///  | opaque bytes  |  length field  |  further header bytes and/or payload        |
///  +---------------+----------------+---------------------------------------------+
///  |<---------- num_skip ---------->|<------------ decoded frame ---------------->|
///                  (default)
///
///  frame_len = header_len + length_field + length_adjustment   (must be >= header_len)
///  decoded   = wire[num_skip .. frame_len]                      (needs num_skip <= frame_len)
///  frame_len <= max_frame_length, checked as soon as the header is buffered
/// ```
///
/// | option (builder setter) | default | Netty | tokio-util |
/// |---|---|---|---|
/// | [`length_field_width`](LengthDelimitedBuilder::length_field_width) | [`LengthWidth::U32`] | `lengthFieldLength` | `length_field_length` |
/// | [`endian`](LengthDelimitedBuilder::endian) | [`Endian::Big`] | `byteOrder` | `big_endian` |
/// | [`length_field_offset`](LengthDelimitedBuilder::length_field_offset) | 0 | `lengthFieldOffset` | `length_field_offset` |
/// | [`length_adjustment`](LengthDelimitedBuilder::length_adjustment) | 0 | `lengthAdjustment` | `length_adjustment` |
/// | [`num_skip`](LengthDelimitedBuilder::num_skip) | `header_len` (strip the header) | `initialBytesToStrip` | `num_skip` |
/// | [`max_frame_length`](LengthDelimitedBuilder::max_frame_length) | 8 MiB | `maxFrameLength` | `max_frame_length` |
///
/// The semantics are Netty's, which differ from tokio-util in three corners:
/// `max_frame_length` bounds the whole frame as it is on the wire (header included, before
/// stripping) where tokio-util bounds the length field's value; when `num_skip` goes past the
/// header, the skipped bytes still belong to the frame (tokio-util counts the length after
/// them); an 8-byte field is read unsigned (Netty reads it signed).
///
/// # Decoding
///
/// Once the header is buffered, the decoder computes `frame_len` and fails at once, before any
/// of the payload is buffered, with [`CodecError::FrameTooLong`] when it exceeds
/// `max_frame_length`, or [`CodecError::InvalidLength`] when the adjusted length ends inside
/// the header or the frame is shorter than `num_skip`. So the receive buffer never has to hold
/// more than `max_frame_length` bytes. [`frame_size_hint`](Decoder::frame_size_hint) reports
/// `frame_len` as soon as the header is readable, so the connection can size its buffer once.
/// The decoder keeps no state between calls.
///
/// # Encoding
///
/// Encoding writes `length_field_offset` zero bytes, the length field (the payload's length
/// minus `length_adjustment`, so that the decoder's `frame_len` is the header plus the payload)
/// and the payload. Decoding that frame yields `wire[num_skip..]`: the payload itself with the
/// default `num_skip`. [`encode_header`](Self::encode_header) writes only the header, for a
/// sender that queues the payload as its own [`Bytes`] chunk without copying it.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gale_core::codec::{Decoder, Encoder, Endian, LengthDelimited, LengthWidth};
///
/// // A 2-byte little-endian length that counts the header too.
/// let mut codec = LengthDelimited::builder()
///     .length_field_width(LengthWidth::U16)
///     .endian(Endian::Little)
///     .length_adjustment(-2)
///     .build()
///     .unwrap();
///
/// let mut wire = BytesMut::new();
/// codec.encode(Bytes::from_static(b"hello"), &mut wire).unwrap();
/// assert_eq!(&wire[..], b"\x07\x00hello");
///
/// let mut partial = wire.split_to(4);
/// assert_eq!(codec.decode(&mut partial).unwrap(), None);
/// assert_eq!(codec.frame_size_hint(&partial), Some(7));
/// partial.unsplit(wire);
/// assert_eq!(codec.decode(&mut partial).unwrap().unwrap(), &b"hello"[..]);
///
/// // Zero-copy sending: the header and the payload as two chunks.
/// let payload = Bytes::from_static(b"big payload");
/// let mut header = BytesMut::new();
/// codec.encode_header(payload.len(), &mut header).unwrap();
/// let chunks = [header.freeze(), payload];
/// assert_eq!(&chunks[0][..], b"\x0d\x00");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthDelimited {
    config: LengthDelimitedBuilder,
    header_len: usize,
    num_skip: usize,
}

impl LengthDelimited {
    /// The default maximum frame length: 8 MiB.
    pub const DEFAULT_MAX_FRAME_LENGTH: usize = 8 * 1024 * 1024;

    /// The default codec: a 4-byte big-endian length of the payload that follows it, header
    /// stripped, frames up to [`DEFAULT_MAX_FRAME_LENGTH`](Self::DEFAULT_MAX_FRAME_LENGTH).
    #[must_use]
    pub fn new() -> Self {
        // invariant: the defaults are valid (a 4-byte header within an 8 MiB maximum).
        LengthDelimitedBuilder::new()
            .build()
            .expect("default length codec config is valid")
    }

    /// A builder starting from the defaults.
    #[must_use]
    pub fn builder() -> LengthDelimitedBuilder {
        LengthDelimitedBuilder::new()
    }

    /// A builder holding this codec's configuration, to derive a variant of it.
    #[must_use]
    pub fn to_builder(&self) -> LengthDelimitedBuilder {
        self.config.clone()
    }

    /// The width of the length field.
    #[must_use]
    pub const fn length_field_width(&self) -> LengthWidth {
        self.config.width
    }

    /// The byte order of the length field.
    #[must_use]
    pub const fn endian(&self) -> Endian {
        self.config.endian
    }

    /// Bytes before the length field.
    #[must_use]
    pub const fn length_field_offset(&self) -> usize {
        self.config.offset
    }

    /// What is added to the length field to get the bytes that follow it.
    #[must_use]
    pub const fn length_adjustment(&self) -> i64 {
        self.config.adjustment
    }

    /// Bytes dropped from the front of each frame (default: the header).
    #[must_use]
    pub const fn num_skip(&self) -> usize {
        self.num_skip
    }

    /// The longest frame accepted or produced, header included.
    #[must_use]
    pub const fn max_frame_length(&self) -> usize {
        self.config.max_frame_length
    }

    /// Bytes up to the end of the length field: `length_field_offset + width`.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        self.header_len
    }

    /// Appends the header of a frame carrying `payload_len` bytes of payload: zeros up to the
    /// length field, then the length field. The payload is then sent as is, for example as a
    /// separate [`Bytes`] chunk.
    ///
    /// # Errors
    ///
    /// [`CodecError::Encode`] when the length field cannot hold the adjusted length (too long
    /// for its width, or negative), when the frame would exceed `max_frame_length`, or when it
    /// would be shorter than `num_skip`. Nothing is written then.
    pub fn encode_header(&self, payload_len: usize, dst: &mut BytesMut) -> Result<(), CodecError> {
        let field = self.length_field(payload_len)?;
        dst.reserve(self.header_len);
        self.put_header(field, dst);
        Ok(())
    }

    /// The length field's value for a payload of `payload_len` bytes, if it can be encoded.
    fn length_field(&self, payload_len: usize) -> Result<u64, CodecError> {
        // i128 holds any usize - i64 without overflow.
        let field = payload_len as i128 - i128::from(self.config.adjustment);
        let field = u64::try_from(field)
            .map_err(|_| CodecError::Encode("payload shorter than length_adjustment"))?;
        if field > self.config.width.max_value() {
            return Err(CodecError::Encode("payload too long for the length field"));
        }
        let frame_len = self.header_len.saturating_add(payload_len);
        if frame_len > self.config.max_frame_length {
            return Err(CodecError::Encode("frame longer than max_frame_length"));
        }
        if frame_len < self.num_skip {
            return Err(CodecError::Encode("frame shorter than num_skip"));
        }
        Ok(field)
    }

    /// Writes the offset's zeros and the length field.
    fn put_header(&self, field: u64, dst: &mut BytesMut) {
        dst.put_bytes(0, self.config.offset);
        let width = self.config.width.bytes();
        match self.config.endian {
            Endian::Big => dst.put_uint(field, width),
            Endian::Little => dst.put_uint_le(field, width),
        }
    }

    /// The length of the frame at the front of `src`, once its header is buffered.
    fn frame_len(&self, src: &[u8]) -> Result<Option<usize>, CodecError> {
        let Some(field) = src.get(self.config.offset..self.header_len) else {
            return Ok(None);
        };
        let field = read_uint(field, self.config.endian);
        // i128 holds any u64 + i64 + usize without overflow.
        let header_len = self.header_len as i128;
        let frame_len = i128::from(field) + i128::from(self.config.adjustment) + header_len;
        if frame_len < header_len {
            return Err(CodecError::InvalidLength(
                "adjusted length ends inside the header",
            ));
        }
        let max = self.config.max_frame_length;
        let frame_len = match usize::try_from(frame_len) {
            Ok(len) if len <= max => len,
            _ => {
                return Err(CodecError::FrameTooLong {
                    len: u64::try_from(frame_len).unwrap_or(u64::MAX),
                    max,
                });
            }
        };
        if frame_len < self.num_skip {
            return Err(CodecError::InvalidLength("frame shorter than num_skip"));
        }
        Ok(Some(frame_len))
    }
}

impl Default for LengthDelimited {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for LengthDelimited {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match self.frame_len(src)? {
            Some(frame_len) if src.len() >= frame_len => {
                let mut frame = take_front(src, frame_len);
                // invariant: num_skip <= frame_len, checked by `frame_len`.
                frame.advance(self.num_skip);
                Ok(Some(frame.freeze()))
            }
            _ => Ok(None),
        }
    }

    fn eof_error(&mut self, buffered: usize) -> CodecError {
        CodecError::Truncated { buffered }
    }

    /// The whole frame's length on the wire once its header is buffered and valid.
    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        self.frame_len(src).ok().flatten()
    }
}

impl Encoder<Bytes> for LengthDelimited {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Encoder::<&[u8]>::encode(self, &item, dst)
    }
}

impl Encoder<&[u8]> for LengthDelimited {
    type Error = CodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        let field = self.length_field(item.len())?;
        // Both fit: `length_field` checked that the frame is within `max_frame_length`.
        dst.reserve(self.header_len + item.len());
        self.put_header(field, dst);
        dst.extend_from_slice(item);
        Ok(())
    }
}

/// Reads an unsigned integer of up to 8 bytes.
fn read_uint(field: &[u8], endian: Endian) -> u64 {
    let push = |acc: u64, byte: &u8| (acc << 8) | u64::from(*byte);
    match endian {
        Endian::Big => field.iter().fold(0, push),
        Endian::Little => field.iter().rev().fold(0, push),
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use quickcheck::{TestResult, quickcheck};

    use super::{Endian, LengthDelimited, LengthDelimitedBuilder, LengthWidth};
    use crate::codec::fuzz::{feed, length_config};
    use crate::codec::{CodecError, Decoder, Encoder};

    const HELLO: &[u8] = b"HELLO, WORLD";

    fn build(
        f: impl FnOnce(&mut LengthDelimitedBuilder) -> &mut LengthDelimitedBuilder,
    ) -> LengthDelimited {
        f(&mut LengthDelimited::builder()).build().unwrap()
    }

    /// Decodes `input` whole and byte by byte; both must give exactly one frame, `expected`.
    fn assert_decodes(codec: &LengthDelimited, input: &[u8], expected: &[u8]) {
        for sizes in [&[][..], &[0][..]] {
            let fed = feed(&mut codec.clone(), input, sizes);
            assert_eq!(fed.error, None);
            assert_eq!(fed.frames, [expected], "chunk sizes {sizes:?}");
            assert!(fed.rest.is_empty());
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    // Netty `LengthFieldBasedFrameDecoder` javadoc examples, in its order.

    #[test]
    fn netty_2_bytes_offset_0_strip_0() {
        let codec = build(|b| b.length_field_width(LengthWidth::U16).num_skip(0));
        let input = cat(&[b"\x00\x0C", HELLO]);
        assert_decodes(&codec, &input, &input);
    }

    #[test]
    fn netty_2_bytes_offset_0_strip_2() {
        let codec = build(|b| b.length_field_width(LengthWidth::U16).num_skip(2));
        assert_decodes(&codec, &cat(&[b"\x00\x0C", HELLO]), HELLO);
    }

    #[test]
    fn netty_2_bytes_length_counts_header_adjustment_minus_2() {
        let codec = build(|b| {
            b.length_field_width(LengthWidth::U16)
                .length_adjustment(-2)
                .num_skip(0)
        });
        let input = cat(&[b"\x00\x0E", HELLO]);
        assert_decodes(&codec, &input, &input);
    }

    #[test]
    fn netty_3_bytes_at_offset_2_after_header() {
        let codec = build(|b| {
            b.length_field_offset(2)
                .length_field_width(LengthWidth::U24)
                .num_skip(0)
        });
        let input = cat(&[b"\xCA\xFE", b"\x00\x00\x0C", HELLO]);
        assert_decodes(&codec, &input, &input);
    }

    #[test]
    fn netty_3_bytes_then_header_adjustment_2() {
        let codec = build(|b| {
            b.length_field_width(LengthWidth::U24)
                .length_adjustment(2)
                .num_skip(0)
        });
        let input = cat(&[b"\x00\x00\x0C", b"\xCA\xFE", HELLO]);
        assert_decodes(&codec, &input, &input);
    }

    #[test]
    fn netty_hdr1_len_hdr2_strip_3() {
        let codec = build(|b| {
            b.length_field_offset(1)
                .length_field_width(LengthWidth::U16)
                .length_adjustment(1)
                .num_skip(3)
        });
        assert_decodes(
            &codec,
            &cat(&[b"\xCA\x00\x0C\xFE", HELLO]),
            &cat(&[b"\xFE", HELLO]),
        );
    }

    #[test]
    fn netty_hdr1_len_hdr2_length_counts_everything() {
        let codec = build(|b| {
            b.length_field_offset(1)
                .length_field_width(LengthWidth::U16)
                .length_adjustment(-3)
                .num_skip(3)
        });
        assert_decodes(
            &codec,
            &cat(&[b"\xCA\x00\x10\xFE", HELLO]),
            &cat(&[b"\xFE", HELLO]),
        );
    }

    #[test]
    fn skipping_past_the_header_drops_frame_bytes_as_netty_does() {
        // The length counts from the end of the length field, so the skipped 4th byte is part
        // of the frame: 12 = 1 + "Hello world".
        let codec = build(|b| b.length_field_width(LengthWidth::U24).num_skip(4));
        assert_decodes(&codec, b"\x00\x00\x0C\xFFHello world", b"Hello world");
        // tokio-util's example 7 bytes (length 11, not counting the 4th byte) need an
        // adjustment of 1 here; without it the frame ends one byte early.
        let mut codec = build(|b| {
            b.length_field_width(LengthWidth::U24)
                .length_adjustment(1)
                .num_skip(4)
        });
        assert_decodes(&codec, b"\x00\x00\x0B\xFFHello world", b"Hello world");
        codec = codec.to_builder().length_adjustment(0).build().unwrap();
        let mut buf = BytesMut::from(&b"\x00\x00\x0B\xFFHello world"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"Hello worl")))
        );
        assert_eq!(&buf[..], b"d");
    }

    #[test]
    fn every_width_and_endianness() {
        let cases: [(LengthWidth, &[u8], &[u8]); 5] = [
            (LengthWidth::U8, b"\x05", b"\x05"),
            (LengthWidth::U16, b"\x00\x05", b"\x05\x00"),
            (LengthWidth::U24, b"\x00\x00\x05", b"\x05\x00\x00"),
            (LengthWidth::U32, b"\x00\x00\x00\x05", b"\x05\x00\x00\x00"),
            (
                LengthWidth::U64,
                b"\x00\x00\x00\x00\x00\x00\x00\x05",
                b"\x05\x00\x00\x00\x00\x00\x00\x00",
            ),
        ];
        for (width, big, little) in cases {
            assert_eq!(LengthWidth::try_from(width.bytes()), Ok(width));
            for (endian, header) in [(Endian::Big, big), (Endian::Little, little)] {
                let mut codec = build(|b| b.length_field_width(width).endian(endian));
                assert_eq!(
                    (codec.length_field_width(), codec.endian()),
                    (width, endian)
                );
                let mut wire = BytesMut::new();
                codec.encode(&b"hello"[..], &mut wire).unwrap();
                assert_eq!(wire, cat(&[header, b"hello"]), "{width:?} {endian:?}");
                assert_decodes(&codec, &wire, b"hello");
            }
        }
    }

    #[test]
    fn multi_byte_values_keep_their_byte_order() {
        for (endian, header) in [
            (Endian::Big, b"\x01\x02\x03"),
            (Endian::Little, b"\x03\x02\x01"),
        ] {
            let codec = build(|b| b.length_field_width(LengthWidth::U24).endian(endian));
            let mut buf = BytesMut::from(&header[..]);
            assert_eq!(codec.frame_size_hint(&buf), Some(3 + 0x01_0203));
            assert_eq!(LengthDelimited::new().decode(&mut buf), Ok(None));
        }
    }

    #[test]
    fn oversize_declaration_fails_with_only_the_header() {
        let mut codec = build(|b| b.max_frame_length(1000));
        let mut buf = BytesMut::from(&b"\x00\x00\x03"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\xE5"); // 997 + 4 = 1001 > 1000
        assert_eq!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong {
                len: 1001,
                max: 1000
            })
        );
        assert_eq!(codec.frame_size_hint(&buf), None);

        let mut buf = BytesMut::from(&b"\x00\x00\x03\xE4"[..]); // exactly 1000
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(codec.frame_size_hint(&buf), Some(1000));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut codec = build(|b| {
            b.length_field_width(LengthWidth::U64)
                .length_adjustment(i64::MAX)
        });
        let mut buf = BytesMut::from(&[0xFF; 8][..]);
        let max = codec.max_frame_length();
        assert_eq!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong { len: u64::MAX, max })
        );

        let mut codec = build(|b| {
            b.length_field_width(LengthWidth::U64)
                .length_adjustment(i64::MIN)
        });
        let mut buf = BytesMut::from(&[0xFF; 8][..]); // 2^64 - 1 - 2^63 + 8: still too long
        let too_long = CodecError::FrameTooLong {
            len: (1 << 63) + 7,
            max,
        };
        assert_eq!(codec.decode(&mut buf), Err(too_long));
        let mut buf = BytesMut::from(&[0x00; 8][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::InvalidLength(_))
        ));
    }

    #[test]
    fn adjusted_length_inside_the_header_is_invalid() {
        let mut codec = build(|b| b.length_field_width(LengthWidth::U16).length_adjustment(-2));
        let mut buf = BytesMut::from(&b"\x00\x01"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::InvalidLength(_))
        ));
        let mut buf = BytesMut::from(&b"\x00\x02"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(Some(Bytes::new())),
            "an empty frame is fine"
        );
    }

    #[test]
    fn frame_shorter_than_num_skip_is_invalid_before_the_payload() {
        let mut codec = build(|b| b.length_field_width(LengthWidth::U8).num_skip(5));
        let mut buf = BytesMut::from(&b"\x03"[..]); // frame of 4 bytes, 5 to skip
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::InvalidLength(_))
        ));
        let mut buf = BytesMut::from(&b"\x04abcd"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(Some(Bytes::new())));
    }

    #[test]
    fn frame_size_hint_appears_with_the_header() {
        let codec = build(|b| {
            b.length_field_offset(1)
                .length_field_width(LengthWidth::U16)
        });
        let mut buf = BytesMut::new();
        for (byte, hint) in [
            (0xAA, None),
            (0x01, None),
            (0x00, Some(259)),
            (b'x', Some(259)),
        ] {
            buf.extend_from_slice(&[byte]);
            assert_eq!(codec.frame_size_hint(&buf), hint);
        }
    }

    #[test]
    fn decode_eof_reports_truncation() {
        let mut codec = LengthDelimited::new();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x03ab"[..]);
        assert_eq!(
            codec.decode_eof(&mut buf),
            Err(CodecError::Truncated { buffered: 6 })
        );
        buf.extend_from_slice(b"c");
        assert_eq!(
            codec.decode_eof(&mut buf),
            Ok(Some(Bytes::from_static(b"abc")))
        );
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn decoding_does_not_copy() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x02hi"[..]);
        let payload = buf[4..].as_ptr();
        let frame = LengthDelimited::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.as_ptr(), payload);
    }

    #[test]
    fn encode_errors() {
        let mut out = BytesMut::new();
        let mut u8_codec = build(|b| b.length_field_width(LengthWidth::U8));
        assert!(u8_codec.encode(&[0; 255][..], &mut out).is_ok());
        assert_eq!(
            u8_codec.encode(&[0; 256][..], &mut out),
            Err(CodecError::Encode("payload too long for the length field"))
        );
        let mut positive = build(|b| b.length_adjustment(3));
        assert_eq!(
            positive.encode(&b"ab"[..], &mut out),
            Err(CodecError::Encode("payload shorter than length_adjustment"))
        );
        let mut small = build(|b| b.max_frame_length(10));
        assert!(small.encode(&[0; 6][..], &mut out).is_ok());
        assert_eq!(
            small.encode(&[0; 7][..], &mut out),
            Err(CodecError::Encode("frame longer than max_frame_length"))
        );
        let mut skip = build(|b| b.num_skip(6));
        assert_eq!(
            skip.encode(&b"a"[..], &mut out),
            Err(CodecError::Encode("frame shorter than num_skip"))
        );
        let before = out.len();
        assert!(skip.encode_header(1, &mut out).is_err());
        assert_eq!(out.len(), before, "a failed encode writes nothing");
    }

    #[test]
    fn encode_header_plus_payload_equals_encode() {
        let mut codec = build(|b| {
            b.length_field_offset(2)
                .length_field_width(LengthWidth::U16)
                .endian(Endian::Little)
                .length_adjustment(-4)
        });
        let mut whole = BytesMut::new();
        codec.encode(Bytes::from_static(HELLO), &mut whole).unwrap();
        let mut header = BytesMut::new();
        codec.encode_header(HELLO.len(), &mut header).unwrap();
        assert_eq!(&header[..], b"\x00\x00\x10\x00");
        header.extend_from_slice(HELLO);
        assert_eq!(header, whole);
        assert_decodes(&codec, &whole, HELLO);
    }

    quickcheck! {
        /// Any chunking of a stream of encoded frames decodes to the same frames, under any
        /// configuration (the frame is what follows `num_skip` on the wire).
        fn prop_chunking_roundtrips(
            config: (u8, u8, u8, u8, u8),
            sizes: Vec<u16>,
            chunks: Vec<u8>
        ) -> TestResult {
            let (a, b, c, d, e) = config;
            let Ok(mut codec) = length_config([a, b, c, d, e.max(64)]).build() else {
                return TestResult::discard();
            };
            let mut wire = BytesMut::new();
            let mut expected = Vec::new();
            for size in sizes {
                let payload: Vec<u8> = (0..usize::from(size) % 300).map(|i| i as u8).collect();
                let start = wire.len();
                if codec.encode(&payload[..], &mut wire).is_ok() {
                    let frame = wire[start + codec.num_skip()..].to_vec();
                    if codec.num_skip() == codec.header_len() && frame != payload {
                        return TestResult::failed();
                    }
                    expected.push(frame);
                }
            }
            let fed = feed(&mut codec, &wire, &chunks);
            TestResult::from_bool(
                fed.error.is_none() && fed.rest.is_empty() && fed.frames == expected
            )
        }

        /// Arbitrary input under any configuration: no frame is over the maximum, no more than
        /// the maximum waits, and only the documented errors come out.
        fn prop_bounded(
            config: (u8, u8, u8, u8, u8),
            stream: Vec<u8>,
            chunks: Vec<u8>
        ) -> TestResult {
            let (a, b, c, d, e) = config;
            let Ok(mut codec) = length_config([a, b, c, d, e]).build() else {
                return TestResult::discard();
            };
            let max = codec.max_frame_length();
            let fed = feed(&mut codec, &stream, &chunks);
            TestResult::from_bool(
                fed.frames.iter().all(|f| f.len() + codec.num_skip() <= max)
                    && fed.idle_peak <= max
                    && matches!(
                        fed.error,
                        None | Some(CodecError::FrameTooLong { .. } | CodecError::InvalidLength(_))
                    ),
            )
        }

        /// A header declaring more than the maximum fails with nothing but the header buffered.
        fn prop_oversize_header_alone_errors(
            config: (u8, u8, u8, u8, u8),
            excess: u16
        ) -> TestResult {
            let (a, b, c, d, e) = config;
            let Ok(mut codec) = length_config([a, b, c, d, e]).build() else {
                return TestResult::discard();
            };
            // The field value whose frame is `excess + 1` bytes over the maximum.
            let over = codec.max_frame_length() as i128 + 1 + i128::from(excess)
                - codec.header_len() as i128
                - i128::from(codec.length_adjustment());
            let fits = |f: &u64| *f <= codec.length_field_width().max_value();
            let Some(field) = u64::try_from(over).ok().filter(fits) else {
                return TestResult::discard();
            };
            let width = codec.length_field_width().bytes();
            let mut header = BytesMut::from(&vec![0xAB; codec.length_field_offset()][..]);
            let bytes = match codec.endian() {
                Endian::Big => field.to_be_bytes()[8 - width..].to_vec(),
                Endian::Little => field.to_le_bytes()[..width].to_vec(),
            };
            header.extend_from_slice(&bytes);
            let max = codec.max_frame_length();
            let declared = max as u64 + 1 + u64::from(excess);
            TestResult::from_bool(
                codec.frame_size_hint(&header).is_none()
                    && codec.decode(&mut header)
                        == Err(CodecError::FrameTooLong { len: declared, max }),
            )
        }
    }
}
