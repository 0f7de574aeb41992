//! gev's typed framing (`plugins/protobuf`: `PackMessage` / `UnPacket`), byte for byte, with
//! the limits gev lacks.

use bytes::{Buf, BufMut, BytesMut};

use super::{ProtobufError, TypedFrame};
use crate::codec::{Decoder, Encoder};

/// gev's protobuf framing: each message is tagged with its type name.
///
/// # Wire layout
///
/// ```text
///  0           4           6                      6 + name_len                  4 + total
///  +-----------+-----------+----------------------+------------------------------+
///  |  total    | name_len  |  type name (UTF-8)   |  payload (protobuf message)  |
///  |  u32 BE   |  u16 BE   |  name_len bytes      |  total - 2 - name_len bytes  |
///  +-----------+-----------+----------------------+------------------------------+
///              |<------------------------- total ------------------------------->|
///  |<------------------------ frame on the wire: 4 + total ---------------------->|
///
///  total    >= 2                                  (else FrameTooShort)
///  4 + total <= max_frame_length                  (else FrameTooLong, header alone)
///  name_len <= total - 2                          (else TypeNameOverrun, header alone)
///  name_len <= max_type_name_length               (else TypeNameTooLong, header alone)
///  type name is UTF-8                             (else InvalidTypeName, before the payload)
/// ```
///
/// This is exactly what gev's `protobuf.PackMessage(msgType, data)` writes and its
/// `Protocol.UnPacket` reads, so gale and gev peers interoperate. gev checks none of the
/// conditions above: it buffers any declared length (up to 4 GiB), panics on a length below 2
/// or a type-name length past the frame, and accepts any bytes as a name. gev also waits for
/// more than 6 bytes before looking at a frame, so it never delivers the smallest frame (empty
/// name, empty payload) until another byte follows; gale delivers it at once.
///
/// | limit | default | setter |
/// |---|---|---|
/// | whole frame on the wire, length field included | 4 MiB | [`set_max_frame_length`](Self::set_max_frame_length) |
/// | type name | 256 bytes | [`set_max_type_name_length`](Self::set_max_type_name_length) |
///
/// [`frame_size_hint`](Decoder::frame_size_hint) reports `4 + total` as soon as the 4-byte
/// length is buffered and valid. Encoding checks the same limits (a frame this codec would
/// refuse to decode is refused to encode); [`encode_header`](Self::encode_header) writes
/// everything but the payload, so a sender can queue the payload [`Bytes`](bytes::Bytes) without copying.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gale_core::codec::{Decoder, Encoder};
/// use gale_core::protobuf::{GevProtobuf, TypedFrame};
///
/// let mut codec = GevProtobuf::new();
/// let mut wire = BytesMut::new();
/// codec.encode(TypedFrame::from_static("msg1", &b"\x10\x01"[..]), &mut wire).unwrap();
/// assert_eq!(&wire[..], b"\x00\x00\x00\x08\x00\x04msg1\x10\x01");
///
/// let frame = codec.decode(&mut wire).unwrap().unwrap();
/// assert_eq!((frame.name(), &frame.payload()[..]), ("msg1", &b"\x10\x01"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GevProtobuf {
    max_frame_length: usize,
    max_type_name_length: usize,
}

impl GevProtobuf {
    /// The default maximum frame length, length field included: 4 MiB.
    pub const DEFAULT_MAX_FRAME_LENGTH: usize = 4 * 1024 * 1024;
    /// The default maximum type-name length: 256 bytes.
    pub const DEFAULT_MAX_TYPE_NAME_LENGTH: usize = 256;

    /// A codec with the default limits.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_frame_length: Self::DEFAULT_MAX_FRAME_LENGTH,
            max_type_name_length: Self::DEFAULT_MAX_TYPE_NAME_LENGTH,
        }
    }

    /// Sets the longest frame accepted or written, counting the whole frame on the wire
    /// (default [`DEFAULT_MAX_FRAME_LENGTH`](Self::DEFAULT_MAX_FRAME_LENGTH)). Frames have at
    /// least 6 bytes, so a maximum below 6 refuses every frame.
    pub fn set_max_frame_length(&mut self, max: usize) -> &mut Self {
        self.max_frame_length = max;
        self
    }

    /// Sets the longest type name accepted or written (default
    /// [`DEFAULT_MAX_TYPE_NAME_LENGTH`](Self::DEFAULT_MAX_TYPE_NAME_LENGTH)); the wire format
    /// cannot carry more than 65535 bytes whatever this says.
    pub fn set_max_type_name_length(&mut self, max: usize) -> &mut Self {
        self.max_type_name_length = max;
        self
    }

    /// The longest frame accepted or written, length field included.
    #[must_use]
    pub const fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// The longest type name accepted or written.
    #[must_use]
    pub const fn max_type_name_length(&self) -> usize {
        self.max_type_name_length
    }

    /// Appends everything of a frame but its payload: the length, the type-name length and
    /// the name. The payload (`payload_len` bytes) is then sent as is.
    ///
    /// # Errors
    ///
    /// [`ProtobufError::Encode`] when the name is over the maximum or the frame would exceed
    /// the maximum frame length; nothing is written then.
    pub fn encode_header(
        &self,
        name: &str,
        payload_len: usize,
        dst: &mut BytesMut,
    ) -> Result<(), ProtobufError> {
        let total = self.total_for(name.len(), payload_len)?;
        dst.reserve(HEADER_LEN + name.len());
        dst.put_u32(total);
        // invariant: `total_for` checked the name against u16::MAX.
        dst.put_u16(u16::try_from(name.len()).expect("name length fits u16"));
        dst.extend_from_slice(name.as_bytes());
        Ok(())
    }

    /// Appends a whole frame (header and payload) for `frame`, without consuming it.
    ///
    /// # Errors
    ///
    /// As [`encode_header`](Self::encode_header).
    pub fn encode_frame(
        &self,
        frame: &TypedFrame,
        dst: &mut BytesMut,
    ) -> Result<(), ProtobufError> {
        self.encode_header(frame.name(), frame.payload().len(), dst)?;
        dst.extend_from_slice(frame.payload());
        Ok(())
    }

    /// The `total` field for a frame with a name and payload of these lengths, if the limits
    /// allow it.
    fn total_for(&self, name_len: usize, payload_len: usize) -> Result<u32, ProtobufError> {
        if name_len > self.max_type_name_length || name_len > usize::from(u16::MAX) {
            return Err(ProtobufError::Encode("type name longer than the maximum"));
        }
        let total = name_len.saturating_add(payload_len).saturating_add(2);
        match u32::try_from(total) {
            Ok(total) if u64::from(total) + LENGTH_LEN as u64 <= self.max_frame_length as u64 => {
                Ok(total)
            }
            _ => Err(ProtobufError::Encode("frame longer than the maximum")),
        }
    }

    /// The whole frame's length on the wire, once the length field is buffered.
    fn frame_len(&self, src: &[u8]) -> Result<Option<usize>, ProtobufError> {
        let Some(field) = src.first_chunk::<LENGTH_LEN>() else {
            return Ok(None);
        };
        let total = u32::from_be_bytes(*field);
        if total < 2 {
            return Err(ProtobufError::FrameTooShort { len: total });
        }
        let frame_len = u64::from(total) + LENGTH_LEN as u64;
        match usize::try_from(frame_len) {
            Ok(len) if len <= self.max_frame_length => Ok(Some(len)),
            _ => Err(ProtobufError::FrameTooLong {
                len: frame_len,
                max: self.max_frame_length,
            }),
        }
    }

    /// Checks the type-name length and, once buffered, the name; returns the name's length.
    fn check_name(&self, src: &[u8], frame_len: usize) -> Result<Option<usize>, ProtobufError> {
        let Some(field) = src.get(LENGTH_LEN..HEADER_LEN) else {
            return Ok(None);
        };
        let name_len = usize::from(u16::from_be_bytes([field[0], field[1]]));
        let available = frame_len - HEADER_LEN;
        if name_len > available {
            return Err(ProtobufError::TypeNameOverrun {
                name_len,
                available,
            });
        }
        if name_len > self.max_type_name_length {
            return Err(ProtobufError::TypeNameTooLong {
                len: name_len,
                max: self.max_type_name_length,
            });
        }
        let Some(name) = src.get(HEADER_LEN..HEADER_LEN + name_len) else {
            return Ok(None);
        };
        std::str::from_utf8(name).map_err(ProtobufError::InvalidTypeName)?;
        Ok(Some(name_len))
    }
}

impl Default for GevProtobuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for GevProtobuf {
    type Item = TypedFrame;
    type Error = ProtobufError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<TypedFrame>, ProtobufError> {
        let Some(frame_len) = self.frame_len(src)? else {
            return Ok(None);
        };
        let Some(name_len) = self.check_name(src, frame_len)? else {
            return Ok(None);
        };
        if src.len() < frame_len {
            return Ok(None);
        }
        let mut frame = src.split_to(frame_len);
        frame.advance(HEADER_LEN);
        // invariant: `check_name` found name_len <= frame_len - HEADER_LEN.
        let name = frame.split_to(name_len).freeze();
        Ok(Some(TypedFrame::from_utf8_name(name, frame.freeze())))
    }

    fn eof_error(&mut self, buffered: usize) -> ProtobufError {
        ProtobufError::Truncated { buffered }
    }

    /// `4 + total` once the length field is buffered and within the limits.
    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        self.frame_len(src).ok().flatten()
    }
}

impl Encoder<TypedFrame> for GevProtobuf {
    type Error = ProtobufError;

    fn encode(&mut self, item: TypedFrame, dst: &mut BytesMut) -> Result<(), ProtobufError> {
        self.encode_frame(&item, dst)
    }
}

impl Encoder<&TypedFrame> for GevProtobuf {
    type Error = ProtobufError;

    fn encode(&mut self, item: &TypedFrame, dst: &mut BytesMut) -> Result<(), ProtobufError> {
        self.encode_frame(item, dst)
    }
}

/// Bytes of the `total` field.
const LENGTH_LEN: usize = 4;
/// Bytes of the `total` and `name_len` fields.
const HEADER_LEN: usize = 6;

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use quickcheck::{TestResult, quickcheck};

    use super::{GevProtobuf, TypedFrame};
    use crate::codec::{Decoder, Encoder};
    use crate::protobuf::ProtobufError;
    use crate::protobuf::fuzz::{feed, pack_message};

    fn decode_all(codec: &mut GevProtobuf, wire: &[u8]) -> Result<Vec<TypedFrame>, ProtobufError> {
        let fed = feed(codec, wire, &[]);
        match fed.error {
            Some(e) => Err(e),
            None => {
                assert!(fed.rest.is_empty(), "left over: {:?}", fed.rest);
                Ok(fed.frames)
            }
        }
    }

    #[test]
    fn pack_message_vectors_decode() {
        // Built by hand exactly as gev's PackMessage builds them.
        let msg1 = b"\x00\x00\x00\x0b\x00\x04msg1\x0a\x01a\x10\x01";
        let empty_name = b"\x00\x00\x00\x05\x00\x00\x08\x96\x01";
        let empty_all = b"\x00\x00\x00\x02\x00\x00";
        let unicode = "\x00\x00\x00\x07\x00\x05é.ü".as_bytes();
        let mut codec = GevProtobuf::new();
        let frames = decode_all(
            &mut codec,
            &[&msg1[..], empty_name, empty_all, unicode].concat(),
        )
        .unwrap();
        let got: Vec<(&str, &[u8])> = frames
            .iter()
            .map(|f| (f.name(), &f.payload()[..]))
            .collect();
        assert_eq!(
            got,
            [
                ("msg1", &b"\x0a\x01a\x10\x01"[..]),
                ("", &b"\x08\x96\x01"[..]),
                ("", &b""[..]),
                ("é.ü", &b""[..]),
            ]
        );
        for (frame, wire) in frames
            .iter()
            .zip([&msg1[..], empty_name, empty_all, unicode])
        {
            assert_eq!(pack_message(frame.name(), frame.payload()), wire);
            let mut out = BytesMut::new();
            codec.encode(frame, &mut out).unwrap();
            assert_eq!(out, wire, "encoding matches PackMessage");
        }
    }

    #[test]
    fn the_smallest_frame_is_delivered_at_once() {
        // gev waits for a 7th byte here; gale does not.
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x02\x00\x00"[..]);
        let frame = GevProtobuf::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!((frame.name(), frame.payload().len()), ("", 0));
        assert!(buf.is_empty());
    }

    #[test]
    fn length_below_two_is_malformed() {
        for len in [0u8, 1] {
            let mut buf = BytesMut::from(&[0, 0, 0, len][..]);
            assert_eq!(
                GevProtobuf::new().decode(&mut buf),
                Err(ProtobufError::FrameTooShort { len: len.into() })
            );
        }
    }

    #[test]
    fn oversize_declaration_fails_with_only_the_length_buffered() {
        let mut codec = GevProtobuf::new();
        codec.set_max_frame_length(100);
        let mut buf = BytesMut::from(&b"\x00\x00\x00"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.put_u8(97); // 4 + 97 = 101
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtobufError::FrameTooLong { len: 101, max: 100 })
        );
        assert_eq!(codec.frame_size_hint(&buf), None);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x60"[..]); // exactly 100
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(codec.frame_size_hint(&buf), Some(100));

        // The default maximum against gev's largest declaration.
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        assert_eq!(
            GevProtobuf::new().decode(&mut buf),
            Err(ProtobufError::FrameTooLong {
                len: u64::from(u32::MAX) + 4,
                max: GevProtobuf::DEFAULT_MAX_FRAME_LENGTH,
            })
        );
    }

    #[test]
    fn type_name_errors_come_before_the_name_and_payload() {
        let mut codec = GevProtobuf::new();
        codec.set_max_type_name_length(8);
        // A 9-byte name in a 100-byte frame: refused with the 6-byte header alone.
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x64\x00\x09"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtobufError::TypeNameTooLong { len: 9, max: 8 })
        );
        // A name longer than the frame (gev: negative slice length, panic).
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05\x00\x04"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtobufError::TypeNameOverrun {
                name_len: 4,
                available: 3
            })
        );
        // A name exactly filling the frame is fine.
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x06\x00\x04abcd"[..]);
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!((frame.name(), frame.payload().len()), ("abcd", 0));
    }

    #[test]
    fn non_utf8_name_fails_before_the_payload() {
        let mut buf = BytesMut::from(&b"\x00\x00\x10\x00\x00\x02\xc3"[..]);
        assert_eq!(GevProtobuf::new().decode(&mut buf), Ok(None));
        buf.put_u8(0x28); // invalid continuation byte; 4 KiB of payload still to come
        assert!(matches!(
            GevProtobuf::new().decode(&mut buf),
            Err(ProtobufError::InvalidTypeName(_))
        ));
    }

    #[test]
    fn size_hint_follows_the_length_field() {
        let codec = GevProtobuf::new();
        let mut buf = BytesMut::new();
        for (byte, hint) in [
            (0, None),
            (0, None),
            (1, None),
            (0, Some(260)),
            (0, Some(260)),
        ] {
            buf.put_u8(byte);
            assert_eq!(codec.frame_size_hint(&buf), hint);
        }
    }

    #[test]
    fn decode_eof_reports_truncation() {
        let mut codec = GevProtobuf::new();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x04\x00\x01a"[..]);
        assert_eq!(
            codec.decode_eof(&mut buf),
            Err(ProtobufError::Truncated { buffered: 7 })
        );
        buf.put_u8(b'!');
        let frame = codec.decode_eof(&mut buf).unwrap().unwrap();
        assert_eq!((frame.name(), &frame.payload()[..]), ("a", &b"!"[..]));
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));
    }

    #[test]
    fn decoding_does_not_copy() {
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05\x00\x01xyz"[..]);
        let payload = buf[7..].as_ptr();
        let frame = GevProtobuf::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.payload().as_ptr(), payload);
    }

    #[test]
    fn encode_enforces_the_limits() {
        let mut codec = GevProtobuf::new();
        codec.set_max_frame_length(16).set_max_type_name_length(4);
        let mut out = BytesMut::new();
        assert!(
            codec
                .encode(TypedFrame::new("abcd", vec![0; 6]), &mut out)
                .is_ok()
        );
        assert_eq!(out.len(), 16);
        assert_eq!(
            codec.encode(TypedFrame::new("abcd", vec![0; 7]), &mut out),
            Err(ProtobufError::Encode("frame longer than the maximum"))
        );
        assert_eq!(
            codec.encode(TypedFrame::new("abcde", Bytes::new()), &mut out),
            Err(ProtobufError::Encode("type name longer than the maximum"))
        );
        codec
            .set_max_type_name_length(usize::MAX)
            .set_max_frame_length(usize::MAX);
        let long = "x".repeat(65_536);
        assert!(
            codec.encode_header(&long, 0, &mut out).is_err(),
            "u16 name length"
        );
        assert!(
            codec
                .encode_header("", u32::MAX as usize, &mut out)
                .is_err(),
            "u32 total"
        );
        assert_eq!(out.len(), 16, "failed encodes write nothing");
    }

    #[test]
    fn debug_shows_the_name() {
        let frame = TypedFrame::from_static("msg2", Bytes::from_static(b"\x18\x02"));
        assert_eq!(
            format!("{frame:?}"),
            r#"TypedFrame { name: "msg2", payload: b"\x18\x02" }"#
        );
    }

    quickcheck! {
        /// Any chunking of a stream of gev frames decodes to the same frames, and re-encoding
        /// them reproduces the stream byte for byte.
        fn prop_chunking_roundtrips(frames: Vec<(String, Vec<u8>)>, chunks: Vec<u8>) -> TestResult {
            let mut codec = GevProtobuf::new();
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (name, payload) in frames {
                if name.len() > codec.max_type_name_length() {
                    continue;
                }
                wire.extend_from_slice(&pack_message(&name, &payload));
                expected.push(TypedFrame::new(&name, payload));
            }
            let fed = feed(&mut codec, &wire, &chunks);
            let mut again = BytesMut::new();
            for frame in &fed.frames {
                codec.encode(frame, &mut again).unwrap();
            }
            TestResult::from_bool(
                fed.error.is_none() && fed.rest.is_empty() && fed.frames == expected && again == wire,
            )
        }

        /// A header declaring more than the maximum fails with nothing else buffered.
        fn prop_oversize_header_alone_errors(max: u16, excess: u32) -> TestResult {
            let mut codec = GevProtobuf::new();
            codec.set_max_frame_length(usize::from(max));
            let total = (u64::from(max) + 1 + u64::from(excess)).checked_sub(4);
            let Some(Ok(total)) = total.map(u32::try_from) else {
                return TestResult::discard();
            };
            if total < 2 {
                return TestResult::discard();
            }
            let mut buf = BytesMut::from(&total.to_be_bytes()[..]);
            TestResult::from_bool(
                codec.decode(&mut buf)
                    == Err(ProtobufError::FrameTooLong { len: u64::from(total) + 4, max: max.into() })
                    && buf.len() == 4,
            )
        }
    }
}
