//! The framing layer of a connection: how bytes become messages and messages become bytes.
//!
//! A [`Protocol`] sits between a connection's buffers and its [`Handler`](crate::Handler). The
//! codecs in [`codec`](crate::codec) are protocols; richer protocols (WebSocket, with its
//! handshake, automatic pongs and close handshake) use the [`ProtocolCx`] to write bytes of
//! their own, ask for a close, and keep deadlines.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::buf::SendQueue;
use crate::codec::CodecError;

/// How a connection turns bytes into messages and messages into bytes.
///
/// Implementations must be panic-free on any input and bound every length the peer controls:
/// return an error rather than buffer past a limit.
pub trait Protocol: Send + 'static {
    /// What the handler receives in [`Handler::on_message`](crate::Handler::on_message).
    type Message;
    /// What the handler sends with [`Context::send`](crate::Context::send) or a
    /// [`ConnHandle`](crate::ConnHandle).
    type Outgoing: Send + 'static;

    /// Called once when the connection starts, before
    /// [`Handler::on_connect`](crate::Handler::on_connect): a protocol may arm deadlines that
    /// run from the accept (a handshake timeout) or queue a greeting. Default: nothing.
    fn handle_connect(&mut self, _cx: &mut ProtocolCx<'_>, _now: Instant) {}

    /// Decodes one message from the front of `src`; `Ok(None)` means "need more bytes".
    ///
    /// An error ends the connection: bytes already queued (for example a protocol-level
    /// goodbye written through `cx`) are flushed, then the connection closes with
    /// [`CloseReason::Protocol`].
    fn decode(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Self::Message>, ProtocolError>;

    /// Decodes what is left once the peer has finished sending. The default calls
    /// [`decode`](Self::decode) and reports leftover bytes as a truncated frame.
    fn decode_eof(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Self::Message>, ProtocolError> {
        match self.decode(cx, src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Truncated {
                buffered: src.len(),
            }
            .into()),
        }
    }

    /// Queues the wire form of `msg` through [`ProtocolCx::send`].
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Self::Outgoing)
    -> Result<(), ProtocolError>;

    /// Total bytes the frame in progress needs, when its header already says so; lets the
    /// receive buffer grow once instead of doubling. Default: unknown.
    fn frame_size_hint(&self, _src: &BytesMut) -> Option<usize> {
        None
    }

    /// The protocol's next deadline (handshake timeout, ping interval, …), if any.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Called when `now` has reached [`poll_timeout`](Self::poll_timeout). Extra calls must
    /// be harmless. An error closes the connection as for [`decode`](Self::decode).
    fn handle_timeout(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        _now: Instant,
    ) -> Result<(), ProtocolError> {
        Ok(())
    }

    /// Called once when the connection starts closing for `reason`, before queued bytes are
    /// flushed: a protocol may queue a goodbye (a WebSocket close frame). Default: nothing.
    fn handle_close(&mut self, _cx: &mut ProtocolCx<'_>, _reason: &CloseReason) {}

    /// Whether the protocol owes the peer nothing: no reply is pending that the application
    /// will send later (through a [`ConnHandle`](crate::ConnHandle), say).
    ///
    /// After the peer's EOF the connection closes with [`CloseReason::PeerClosed`] only once
    /// this is true, so answers still owed to a peer that half-closed (`shutdown(SHUT_WR)`
    /// after its last request) reach it. A protocol that returns `false` must bound that
    /// wait itself: a deadline in [`poll_timeout`](Self::poll_timeout) at which
    /// [`handle_timeout`](Self::handle_timeout) gives up (asks to close, or returns an
    /// error). The connection asks again after every input. Default: `true`, nothing is
    /// ever owed.
    fn is_idle(&self) -> bool {
        true
    }
}

/// What a [`Protocol`] may do besides decoding: write bytes, ask for a close, read the time.
#[derive(Debug)]
pub struct ProtocolCx<'a> {
    pub(crate) now: Instant,
    pub(crate) send: &'a mut SendQueue,
    pub(crate) close: &'a mut bool,
}

impl<'a> ProtocolCx<'a> {
    /// A context over `send`, for embedders and tests that run a protocol on its own.
    /// `close` is set when the protocol asks to close.
    pub fn new(now: Instant, send: &'a mut SendQueue, close: &'a mut bool) -> Self {
        Self { now, send, close }
    }

    /// The current time, as given by the driver.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Queues bytes for the peer, without copying.
    pub fn send(&mut self, bytes: Bytes) {
        self.send.push(bytes);
    }

    /// Queues a small header (at most [`MAX_HEAD`](crate::buf::MAX_HEAD) bytes: a frame
    /// header, a length prefix) followed by `payload`, without copying the payload.
    ///
    /// When nothing else is queued (a reply written at once), neither is allocated: both go
    /// out as two slices of one vectored write. See [`SendQueue::push_with_head`].
    pub fn send_with_head(&mut self, head: &[u8], payload: Bytes) {
        self.send.push_with_head(head, payload);
    }

    /// Bytes queued for the peer and not yet written.
    pub fn queued(&self) -> usize {
        self.send.len()
    }

    /// Asks the connection to close once what is queued has been written
    /// (reason [`CloseReason::Local`] unless an error is returned as well).
    pub fn close(&mut self) {
        *self.close = true;
    }
}

/// Why a protocol could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A framing codec rejected the input.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A protobuf framing, registry or message error.
    #[error(transparent)]
    Protobuf(#[from] crate::protobuf::ProtobufError),
    /// A WebSocket peer broke RFC 6455 or a limit, or its upgrade was refused.
    #[error(transparent)]
    WebSocket(#[from] crate::ws::WsError),
    /// A protocol-specific error, described.
    #[error("{0}")]
    Other(Arc<str>),
}

impl ProtocolError {
    /// A protocol-specific error with a description.
    pub fn other(msg: impl Into<Arc<str>>) -> Self {
        Self::Other(msg.into())
    }
}

/// Why a connection ended; passed to [`Handler::on_close`](crate::Handler::on_close) and
/// reported to the driver in [`Event::Closed`](crate::Event::Closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed it (a handler, a connection handle, or the protocol on its
    /// behalf).
    #[error("closed locally")]
    Local,
    /// The peer finished sending (EOF); replies were flushed (the ones the protocol still
    /// owed too, see [`Protocol::is_idle`]), then the connection closed.
    #[error("closed by peer")]
    PeerClosed,
    /// No read or write activity for the configured idle timeout.
    #[error("idle timeout")]
    IdleTimeout,
    /// The peer sent bytes the protocol rejected.
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// The application tried to queue more than the send buffer's limit through a
    /// connection handle (a slow consumer).
    #[error("send buffer limit exceeded")]
    SendBufferFull,
    /// The receive buffer reached its limit without the protocol producing a message.
    #[error("receive buffer limit exceeded")]
    RecvBufferFull,
    /// The socket failed (connection reset, broken pipe, …), as reported by the driver.
    #[error("i/o error: {0}")]
    Io(std::io::ErrorKind),
    /// The server is shutting down.
    #[error("server shutdown")]
    Shutdown,
}

// Framing codecs as connection protocols: outgoing payloads are queued without copying.

impl Protocol for crate::codec::Raw {
    type Message = Bytes;
    type Outgoing = Bytes;

    /// As the codec's `decode`, except that a frame of everything buffered takes the whole
    /// buffer (the connection frees an empty receive buffer anyway): the bytes become a
    /// `Bytes` without the shared-ownership header a split would allocate.
    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        if !src.is_empty() && src.len() <= self.max_frame_length() {
            return Ok(Some(std::mem::take(src).freeze()));
        }
        Ok(crate::codec::Decoder::decode(self, src)?)
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(crate::codec::Decoder::decode_eof(self, src)?)
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        cx.send(msg);
        Ok(())
    }
}

impl Protocol for crate::codec::Lines {
    type Message = Bytes;
    type Outgoing = Bytes;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(crate::codec::Decoder::decode(self, src)?)
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(crate::codec::Decoder::decode_eof(self, src)?)
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        let mut line = BytesMut::with_capacity(msg.len() + 1);
        crate::codec::Encoder::encode(self, msg, &mut line)?;
        cx.send(line.freeze());
        Ok(())
    }
}

impl Protocol for crate::codec::LengthDelimited {
    type Message = Bytes;
    type Outgoing = Bytes;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(crate::codec::Decoder::decode(self, src)?)
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(crate::codec::Decoder::decode_eof(self, src)?)
    }

    /// Queues the header and the payload as two chunks: the payload is not copied.
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        let mut header = BytesMut::with_capacity(self.header_len());
        self.encode_header(msg.len(), &mut header)?;
        cx.send(header.freeze());
        cx.send(msg);
        Ok(())
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        crate::codec::Decoder::frame_size_hint(self, src)
    }
}
