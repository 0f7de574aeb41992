//! Close frames: status codes and reasons
//! ([RFC 6455 §5.5.1](https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1), §7.4).
//!
//! ```text
//!   close payload:  empty  |  code (u16, big-endian) [ reason: UTF-8, ≤ 123 bytes ]
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{OpCode, put_header};
use super::message::Utf8Bytes;
use super::utf8::Utf8Validator;

/// A close status code (RFC 6455 §7.4). Any `u16` can be held; [`is_valid`](Self::is_valid)
/// says whether it may appear in a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, idle or unresponsive peer).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no code was present (never on the wire; what an empty close frame means).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a close frame (never on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a frame or message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: (client) the server did not negotiate a required extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);

    /// Whether the code may be sent in a close frame: 1000-1003, 1007-1014 (1012-1014 were
    /// registered with IANA after RFC 6455: service restart, try again later, bad gateway),
    /// and 3000-4999 (libraries and applications). 1004-1006, 1015, the rest of
    /// 1016-2999 and everything below 1000 or above 4999 are not.
    pub fn is_valid(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Why, for humans; at most [`MAX_REASON`] bytes of UTF-8.
    pub reason: Utf8Bytes,
}

/// Longest close reason: a control frame carries at most 125 bytes, 2 of them the code.
pub const MAX_REASON: usize = 123;

impl CloseFrame {
    /// A close frame with this code and reason.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason)
        }
    }
}

/// Why a peer's close frame is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadClose {
    /// One byte of payload: half a code (1002).
    Truncated,
    /// A code that may not be sent (1002).
    Code(u16),
    /// A reason that is not UTF-8 (1007).
    Reason,
}

/// Parses a peer's close payload: `None` for an empty one (code 1005, no reason).
pub(crate) fn parse_close(payload: Bytes) -> Result<Option<CloseFrame>, BadClose> {
    match payload.len() {
        0 => return Ok(None),
        1 => return Err(BadClose::Truncated),
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !CloseCode(code).is_valid() {
        return Err(BadClose::Code(code));
    }
    let reason = payload.slice(2..);
    let mut utf8 = Utf8Validator::new();
    utf8.feed(&reason).map_err(|_| BadClose::Reason)?;
    utf8.finish().map_err(|_| BadClose::Reason)?;
    Ok(Some(CloseFrame {
        code: CloseCode(code),
        reason: Utf8Bytes::from_validated(reason),
    }))
}

/// A whole close frame as the server writes it. `frame` is `None` for an empty payload.
/// The reason is cut at [`MAX_REASON`] bytes, on a character boundary.
pub(crate) fn encode_close(frame: Option<&CloseFrame>) -> Bytes {
    let Some(frame) = frame else {
        let mut out = BytesMut::with_capacity(2);
        put_header(&mut out, true, OpCode::Close, 0);
        return out.freeze();
    };
    let reason = truncate_reason(frame.reason.as_str());
    let mut out = BytesMut::with_capacity(4 + reason.len());
    put_header(&mut out, true, OpCode::Close, 2 + reason.len());
    out.put_u16(frame.code.0);
    out.put_slice(reason.as_bytes());
    out.freeze()
}

fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_match_the_registry() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ];
        let invalid = [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for c in valid.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(CloseCode(c).is_valid(), "{c}");
        }
        for c in invalid {
            assert!(!CloseCode(c).is_valid(), "{c}");
        }
    }

    #[test]
    fn parses_and_rejects_close_payloads() {
        assert_eq!(parse_close(Bytes::new()), Ok(None));
        assert_eq!(
            parse_close(Bytes::from_static(&[0x03])),
            Err(BadClose::Truncated)
        );
        assert_eq!(
            parse_close(Bytes::from_static(&[0x03, 0xed])),
            Err(BadClose::Code(1005))
        );
        assert_eq!(
            parse_close(Bytes::from_static(
                b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
            )),
            Err(BadClose::Reason)
        );
        assert_eq!(
            parse_close(Bytes::from_static(b"\x03\xe8bye")),
            Ok(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        );
    }

    #[test]
    fn encoded_close_frames_truncate_long_reasons_on_a_char_boundary() {
        assert_eq!(&encode_close(None)[..], &[0x88, 0x00]);
        let long = "é".repeat(100); // 200 bytes
        let wire = encode_close(Some(&CloseFrame::new(CloseCode::GOING_AWAY, long)));
        assert_eq!(wire[1], 2 + 122, "61 two-byte characters fit in 123 bytes");
        assert_eq!(&wire[2..4], &1001u16.to_be_bytes());
        assert!(std::str::from_utf8(&wire[4..]).is_ok());
    }
}
