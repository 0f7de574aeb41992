//! Frame headers ([RFC 6455 §5.2](https://www.rfc-editor.org/rfc/rfc6455#section-5.2)): parsing
//! what clients send and writing what the server sends.
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-------+-+-------------+-------------------------------+
//!  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//!  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//!  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//!  | |1|2|3|       |K|             |                               |
//!  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//!  |     Extended payload length continued, if payload len == 127  |
//!  + - - - - - - - - - - - - - - - +-------------------------------+
//!  |                               | Masking-key, if MASK set to 1 |
//!  +-------------------------------+-------------------------------+
//!  | Masking-key (continued)       |          Payload Data         |
//!  +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! Parsing reads at most 14 bytes and takes no branch per byte: the header length follows from
//! the second byte, and the extended length is one big-endian load.

use bytes::{BufMut, Bytes, BytesMut};

/// The opcode of a frame (4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// `0x0`: a further fragment of a text or binary message.
    Continuation,
    /// `0x1`: the first frame of a text message.
    Text,
    /// `0x2`: the first frame of a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the 4-bit value `bits`, or `None` for the reserved values (0x3-0x7,
    /// 0xB-0xF).
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xa => Self::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xa,
        }
    }

    /// Whether this is a control opcode (close, ping, pong): at most 125 bytes of payload,
    /// never fragmented.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// One frame, unmasked: what [`WsConfig::set_raw_frames`](super::WsConfig::set_raw_frames)
/// hands over instead of whole messages, and what [`Outbound::Frame`](super::Outbound::Frame)
/// sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Whether this is the last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload, unmasked.
    pub payload: Bytes,
}

impl Frame {
    /// A frame with these parts.
    pub fn new(fin: bool, opcode: OpCode, payload: impl Into<Bytes>) -> Self {
        Self {
            fin,
            opcode,
            payload: payload.into(),
        }
    }
}

/// A parsed frame header, with the raw fields not yet judged against the protocol's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The first byte: FIN, RSV1-3, opcode.
    pub(crate) b0: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload_len: u64,
    /// Bytes of header on the wire (2 to 14).
    pub(crate) len: usize,
}

impl Header {
    pub(crate) fn fin(&self) -> bool {
        self.b0 & 0x80 != 0
    }

    pub(crate) fn rsv(&self) -> u8 {
        self.b0 & 0x70
    }

    pub(crate) fn opcode_bits(&self) -> u8 {
        self.b0 & 0x0f
    }
}

/// Parses the header at the front of `src`; `None` until all of it has arrived.
pub(crate) fn parse_header(src: &[u8]) -> Option<Header> {
    let (&b0, rest) = src.split_first()?;
    let &b1 = rest.first()?;
    let len7 = b1 & 0x7f;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let masked = b1 & 0x80 != 0;
    let len = 2 + ext + if masked { 4 } else { 0 };
    let head = src.get(..len)?;
    let payload_len = match ext {
        2 => u64::from(u16::from_be_bytes([head[2], head[3]])),
        8 => {
            let mut be = [0; 8];
            be.copy_from_slice(&head[2..10]);
            u64::from_be_bytes(be)
        }
        _ => u64::from(len7),
    };
    let mask = masked.then(|| {
        let k = &head[2 + ext..];
        [k[0], k[1], k[2], k[3]]
    });
    Some(Header {
        b0,
        mask,
        payload_len,
        len,
    })
}

/// Writes an unmasked frame header (servers never mask, RFC 6455 §5.1).
pub(crate) fn put_header(dst: &mut BytesMut, fin: bool, opcode: OpCode, len: usize) {
    let b0 = (u8::from(fin) << 7) | opcode.bits();
    match len {
        0..=125 => dst.put_slice(&[b0, len as u8]),
        126..=0xffff => {
            dst.put_slice(&[b0, 126]);
            dst.put_u16(len as u16);
        }
        _ => {
            dst.put_slice(&[b0, 127]);
            dst.put_u64(len as u64);
        }
    }
}

/// An unmasked frame header on the stack: the bytes and how many of them are used.
pub(crate) fn frame_head(fin: bool, opcode: OpCode, len: usize) -> ([u8; MAX_SERVER_HEAD], usize) {
    let mut head = [0; MAX_SERVER_HEAD];
    head[0] = (u8::from(fin) << 7) | opcode.bits();
    let used = match len {
        0..=125 => {
            head[1] = len as u8;
            2
        }
        126..=0xffff => {
            head[1] = 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (head, used)
}

/// Bytes of an unmasked (server) frame header for a payload of `len` bytes.
#[cfg(test)]
pub(crate) fn header_len(len: usize) -> usize {
    frame_head(true, OpCode::Binary, len).1
}

/// The longest unmasked frame header.
pub(crate) const MAX_SERVER_HEAD: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;

    #[test]
    fn stack_header_matches_put_header() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x1_0000, 1 << 40] {
            for (fin, opcode) in [(true, OpCode::Binary), (false, OpCode::Text)] {
                let mut want = BytesMut::new();
                put_header(&mut want, fin, opcode, len);
                let (head, used) = frame_head(fin, opcode, len);
                assert_eq!(&head[..used], &want[..], "len {len}");
            }
        }
    }

    #[test]
    fn parses_rfc_examples() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = parse_header(&wire).unwrap();
        assert!(h.fin());
        assert_eq!(h.opcode_bits(), 1);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!((h.payload_len, h.len), (5, 6));
        // 256 bytes binary message in a single unmasked frame: 16-bit length.
        let h = parse_header(&[0x82, 0x7e, 0x01, 0x00]).unwrap();
        assert_eq!((h.payload_len, h.len, h.mask), (256, 4, None));
        // 64 KiB: 64-bit length.
        let h = parse_header(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!((h.payload_len, h.len), (65536, 10));
    }

    #[test]
    fn incomplete_headers_wait() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for n in 0..full.len() {
            assert_eq!(parse_header(&full[..n]), None, "{n} bytes");
        }
        assert_eq!(parse_header(&full).unwrap().len, 14);
    }

    #[test]
    fn opcodes_round_trip_and_reserved_are_none() {
        for bits in 0..16u8 {
            match OpCode::from_bits(bits) {
                Some(op) => {
                    assert_eq!(op.bits(), bits);
                    assert_eq!(op.is_control(), bits >= 8);
                }
                None => assert!(matches!(bits, 3..=7 | 0xb..=0xf)),
            }
        }
    }

    #[test]
    fn prop_written_headers_parse_back() {
        fn prop(len: u32, fin: bool, op: u8) -> bool {
            let len = len as usize;
            let opcode = [OpCode::Text, OpCode::Binary, OpCode::Continuation][usize::from(op % 3)];
            let mut out = BytesMut::new();
            put_header(&mut out, fin, opcode, len);
            let h = parse_header(&out).unwrap();
            out.len() == header_len(len)
                && h.len == out.len()
                && h.payload_len == len as u64
                && h.fin() == fin
                && h.opcode_bits() == opcode.bits()
                && h.mask.is_none()
                && h.rsv() == 0
        }
        QuickCheck::new().quickcheck(prop as fn(u32, bool, u8) -> bool);
    }
}
