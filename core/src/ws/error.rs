//! Errors: [`WsError`] for what a peer did wrong, [`OutboundError`] for what the local
//! application asked for and cannot be sent.

use super::close::CloseCode;
use super::handshake::HandshakeError;
use crate::deflate::DeflateError;

/// Why a WebSocket connection was failed because of its peer; each maps to the close code
/// sent before closing ([`close_code`](Self::close_code)).
///
/// The connection ends with [`CloseReason::Protocol`](crate::CloseReason::Protocol)`(`
/// [`ProtocolError::WebSocket`](crate::ProtocolError::WebSocket)`(_))`;
/// [`WebSocket::error`](super::WebSocket::error) keeps it too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The upgrade was refused (the HTTP response was sent instead of a close frame).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// RSV1-3 set without a negotiated extension, or RSV1 on a control or continuation
    /// frame with permessage-deflate (1002).
    #[error("reserved bits set in frame header")]
    ReservedBits,
    /// A reserved opcode (1002).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A client frame without a mask (1002, RFC 6455 §5.1).
    #[error("client frame not masked")]
    UnmaskedFrame,
    /// A control frame without FIN (1002).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (1002).
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlFrameTooLong(u64),
    /// A continuation frame with no message in progress (1002).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (1002).
    #[error("new message before the previous one was finished")]
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set (1002).
    #[error("invalid payload length")]
    InvalidLength,
    /// A frame over [`WsConfig::max_frame_size`](super::WsConfig::max_frame_size) (1009),
    /// refused from its header.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A message over [`WsConfig::max_message_size`](super::WsConfig::max_message_size)
    /// (1009), refused from the header of the frame that would exceed it.
    #[error("message of at least {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// The message's length with the offending frame.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Invalid UTF-8 in a text message (1007).
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A close frame with one byte of payload (1002).
    #[error("close frame with a truncated status code")]
    TruncatedClose,
    /// A close frame with a code that may not be sent (1002).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close frame whose reason is not UTF-8 (1007).
    #[error("close reason is not UTF-8")]
    InvalidCloseReason,
    /// A compressed message that does not inflate (1007), inflates past
    /// [`WsConfig::max_message_size`](super::WsConfig::max_message_size) (1009), or that this
    /// side failed to compress (1011).
    #[error(transparent)]
    Deflate(#[from] DeflateError),
    /// No bytes from the peer within
    /// [`WsConfig::pong_timeout`](super::WsConfig::pong_timeout) of a keepalive ping (1001).
    #[error("no pong within the keepalive timeout")]
    PongTimeout,
}

impl WsError {
    /// The close code sent to the peer for this error; `None` for a failed handshake
    /// (answered with an HTTP status).
    pub fn close_code(&self) -> Option<CloseCode> {
        Some(match self {
            Self::Handshake(_) => return None,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            Self::PongTimeout => CloseCode::GOING_AWAY,
            Self::Deflate(e) => CloseCode(e.close_code()),
            Self::ReservedBits
            | Self::ReservedOpcode(_)
            | Self::UnmaskedFrame
            | Self::FragmentedControl
            | Self::ControlFrameTooLong(_)
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::InvalidLength
            | Self::TruncatedClose
            | Self::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
        })
    }
}

/// Why an [`Outbound`](super::Outbound) could not be sent: a mistake of the sender, reported
/// as [`SendError::Encode`](crate::SendError::Encode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// A ping, pong or control frame with more than 125 bytes of payload.
    #[error("control frame payload of {0} bytes (at most 125)")]
    ControlTooLong(usize),
    /// A control [`Frame`](super::Frame) without `fin`.
    #[error("control frames cannot be fragmented")]
    FragmentedControl,
    /// A close code that may not be sent (1005, 1006, 1015, …).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// permessage-deflate failed to compress the message (a bug, never the payload's fault).
    #[error(transparent)]
    Compress(#[from] DeflateError),
    /// A close frame sent as a raw [`Frame`](super::Frame): use
    /// [`Outbound::Close`](super::Outbound::Close), which runs the closing handshake.
    #[error("send close frames with Outbound::Close")]
    RawClose,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_by_kind() {
        assert_eq!(WsError::ReservedBits.close_code(), Some(CloseCode(1002)));
        assert_eq!(
            WsError::FrameTooLarge { len: 2, max: 1 }.close_code(),
            Some(CloseCode(1009))
        );
        assert_eq!(WsError::InvalidUtf8.close_code(), Some(CloseCode(1007)));
        assert_eq!(
            WsError::InvalidCloseReason.close_code(),
            Some(CloseCode(1007))
        );
        assert_eq!(WsError::PongTimeout.close_code(), Some(CloseCode(1001)));
        assert_eq!(
            WsError::Handshake(HandshakeError::BadKey).close_code(),
            None
        );
    }
}
