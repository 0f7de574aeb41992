//! [`WebSocket`]: the server side of RFC 6455 as a connection [`Protocol`].

mod recv;
mod send;

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use self::recv::{InFrame, InMessage};
use super::WsConfig;
use super::close::{CloseCode, CloseFrame, encode_close};
use super::error::WsError;
use super::frame::{OpCode, encode_frame, parse_header};
use super::handshake::{HandshakeError, UpgradeDecision, UpgradeRequest};
use super::message::{Message, Outbound, Upgraded, Utf8Bytes};
use crate::deflate::{DeflateParams, PerMessageDeflate};
use crate::http::{Request, RequestDecoder};
use crate::protocol::{CloseReason, Protocol, ProtocolCx, ProtocolError};

/// The server side of a WebSocket connection: the upgrade, then frames.
///
/// ```text
///   Handshake ──101──► Open ──Outbound::Close──► CloseSent ──peer's close / close_timeout──┐
///      │                │                                                                  ▼
///      └─ refused ─┐    └─ peer's close (echoed) / protocol error (close frame) ────────► Closed
///                  └─► HTTP error response, then the connection closes
/// ```
///
/// Create one per connection in [`Handler::protocol`](crate::Handler::protocol) from a shared
/// [`WsConfig`]. The handshake clock starts when the connection is accepted
/// ([`Protocol::handle_connect`]), so a client that never finishes its request is answered
/// 408 and closed.
///
/// # Receiving
///
/// The handler gets [`Message::Open`] first, then messages. Pings are answered
/// automatically; a peer's close frame is validated, echoed with its code, handed over as
/// [`Message::Close`], and the connection closes once the echo is written. Peer errors send
/// the close code of the [`WsError`] and close.
///
/// # Sending
///
/// [`Outbound`] values are written as single unmasked frames; payloads above 1 KiB are
/// queued without copying. Before the upgrade and after a close frame went out, data and
/// pings are dropped (a broadcast can reach a connection in either state); malformed control
/// frames are refused with an [`OutboundError`](super::OutboundError). [`Context::close`](crate::Context::close)
/// sends close 1000 and closes once it is written, without waiting for the peer's answer;
/// [`Outbound::Close`] waits for it (up to [`WsConfig::close_timeout`]).
///
/// # Memory
///
/// Nothing is allocated up front. The handshake decoder is dropped at the upgrade, a
/// fragmented message's buffer after the message; a single-frame message is split off the
/// receive buffer without copying. An idle open connection holds only this struct.
pub struct WebSocket {
    config: Arc<WsConfig>,
    state: State,
    /// The upgrade request decoder, until the upgrade.
    handshake: Option<Box<RequestDecoder>>,
    /// The frame whose payload is arriving.
    frame: Option<InFrame>,
    /// The data message in progress (between its first frame and its last).
    message: Option<InMessage>,
    /// Fragments of the message in progress, when it has more than one.
    assembly: BytesMut,
    deadlines: [Option<Instant>; TIMERS],
    subprotocol: Option<Box<str>>,
    /// permessage-deflate, when negotiated (boxed: most connections go without).
    deflate: Option<Box<PerMessageDeflate>>,
    sent_close: Option<CloseCode>,
    peer_close: Option<CloseCode>,
    error: Option<WsError>,
}

impl WebSocket {
    /// A connection at the start of its handshake.
    pub fn new(config: Arc<WsConfig>) -> Self {
        let decoder = RequestDecoder::with_limits(*config.http_limits());
        Self {
            config,
            state: State::Handshake,
            handshake: Some(Box::new(decoder)),
            frame: None,
            message: None,
            assembly: BytesMut::new(),
            deadlines: [None; TIMERS],
            subprotocol: None,
            deflate: None,
            sent_close: None,
            peer_close: None,
            error: None,
        }
    }

    /// Starts the handshake timeout at `now` (the connection was accepted). Later calls and
    /// calls after the upgrade do nothing.
    fn arm_handshake_timeout(&mut self, now: Instant) {
        if self.state == State::Handshake && self.deadlines[Timer::Handshake as usize].is_none() {
            self.deadlines[Timer::Handshake as usize] =
                self.config.handshake_timeout().map(|t| now + t);
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Whether the upgrade is done and no close frame has been sent or received.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The subprotocol chosen at the upgrade.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters agreed at the upgrade, if the extension is in use.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_deref().map(PerMessageDeflate::params)
    }

    /// The connection's permessage-deflate transform, if the extension is in use: its
    /// [`params`](PerMessageDeflate::params), how many messages went out compressed
    /// ([`messages_compressed`](PerMessageDeflate::messages_compressed)) and came in
    /// compressed ([`messages_inflated`](PerMessageDeflate::messages_inflated)), and
    /// whether it holds compressor state. A handler can tell whether the message it is
    /// given arrived compressed by comparing `messages_inflated` with the previous value.
    pub fn permessage_deflate(&self) -> Option<&PerMessageDeflate> {
        self.deflate.as_deref()
    }

    /// The code of the close frame this side sent, if any.
    pub fn sent_close_code(&self) -> Option<CloseCode> {
        self.sent_close
    }

    /// The code of the peer's close frame, if one arrived
    /// ([`CloseCode::NO_STATUS`] for an empty one).
    pub fn peer_close_code(&self) -> Option<CloseCode> {
        self.peer_close
    }

    /// What the peer did wrong, if the connection was failed because of it.
    pub fn error(&self) -> Option<&WsError> {
        self.error.as_ref()
    }

    /// Heap bytes this connection's protocol state holds (for the memory tests).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let decoder = self
            .handshake
            .as_ref()
            .map_or(0, |_| size_of::<RequestDecoder>());
        decoder + self.assembly.capacity() + self.subprotocol.as_ref().map_or(0, |p| p.len())
    }

    fn decode_handshake(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Message>, ProtocolError> {
        self.arm_handshake_timeout(cx.now());
        let Some(decoder) = self.handshake.as_mut() else {
            return Ok(None);
        };
        let decoded = if eof {
            decoder.decode_eof(src)
        } else {
            decoder.decode(src)
        };
        let request = match decoded {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.refuse(cx, e.into())),
        };
        match self.upgrade(&request) {
            Ok((response, subprotocol, deflate)) => {
                cx.send(response);
                self.deflate =
                    deflate.map(|p| Box::new(PerMessageDeflate::new(p, self.config.deflate())));
                self.handshake = None;
                self.state = State::Open;
                self.deadlines = [None; TIMERS];
                self.deadlines[Timer::Ping as usize] =
                    self.config.ping_interval().map(|i| cx.now() + i);
                self.subprotocol.clone_from(&subprotocol);
                let (head, _) = request.into_parts();
                Ok(Some(Message::Open(Box::new(Upgraded {
                    head,
                    subprotocol,
                }))))
            }
            Err(e) => Err(self.refuse(cx, e)),
        }
    }

    #[allow(clippy::type_complexity)]
    fn upgrade(
        &self,
        request: &Request,
    ) -> Result<(Bytes, Option<Box<str>>, Option<DeflateParams>), HandshakeError> {
        let req = UpgradeRequest::new(request.head())?;
        let decision = match self.config.on_upgrade() {
            Some(hook) => hook(&req),
            None => UpgradeDecision::accept(),
        };
        let (mut response, subprotocol) = req.accept(decision)?;
        let deflate = self
            .config
            .deflate()
            .negotiate(request.headers().get_all("sec-websocket-extensions"));
        if let Some(params) = &deflate {
            // invariant: the value is tokens, digits, "; " and "=": a valid field value.
            response = response.with_header("Sec-WebSocket-Extensions", params.to_string());
        }
        let mut out = BytesMut::new();
        response.encode(&mut out);
        Ok((out.freeze(), subprotocol, deflate))
    }

    /// Answers a refused upgrade and ends the protocol.
    fn refuse(&mut self, cx: &mut ProtocolCx<'_>, e: HandshakeError) -> ProtocolError {
        cx.send(e.encoded_response());
        self.handshake = None;
        self.end(WsError::Handshake(e))
    }

    /// Fails the connection for a peer error: sends its close code (unless a close frame
    /// already went out) and ends the protocol.
    fn fail(&mut self, cx: &mut ProtocolCx<'_>, e: WsError) -> ProtocolError {
        if let Some(code) = e.close_code()
            && self.sent_close.is_none()
        {
            let reason = Utf8Bytes::from(e.to_string());
            cx.send(encode_close(Some(&CloseFrame::new(code, reason))));
            self.sent_close = Some(code);
        }
        self.end(e)
    }

    fn end(&mut self, e: WsError) -> ProtocolError {
        let err = ProtocolError::WebSocket(e.clone());
        self.error = Some(e);
        self.state = State::Closed;
        self.deadlines = [None; TIMERS];
        self.frame = None;
        self.message = None;
        self.assembly = BytesMut::new();
        err
    }
}

impl Protocol for WebSocket {
    type Message = Message;
    type Outgoing = Outbound;

    /// Starts the handshake timeout: a client that connects and never finishes its request
    /// (slowloris) is answered 408 and closed.
    fn handle_connect(&mut self, _cx: &mut ProtocolCx<'_>, now: Instant) {
        self.arm_handshake_timeout(now);
    }

    fn decode(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        match self.state {
            State::Handshake => self.decode_handshake(cx, src, false),
            State::Open | State::CloseSent => self.decode_frames(cx, src),
            State::Closed => Ok(None),
        }
    }

    /// The peer finished sending: an unfinished upgrade request is answered with 400; an
    /// unfinished frame is dropped (the connection ends as
    /// [`CloseReason::PeerClosed`], close code 1006 in RFC terms).
    fn decode_eof(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        match self.state {
            State::Handshake => self.decode_handshake(cx, src, true),
            _ => self.decode(cx, src),
        }
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Outbound) -> Result<(), ProtocolError> {
        self.encode_outbound(cx, msg)
            .map_err(|e| ProtocolError::other(e.to_string()))
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        if let Some(decoder) = &self.handshake {
            return decoder.frame_size_hint(src);
        }
        if let Some(frame) = &self.frame {
            return Some(frame.len);
        }
        let h = parse_header(src)?;
        let payload = h.payload_len.min(self.config.max_frame_size() as u64) as usize;
        Some(h.len + payload)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    fn handle_timeout(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let due = |t: Timer| self.deadlines[t as usize].is_some_and(|at| at <= now);
        if due(Timer::Handshake) {
            return Err(self.refuse(cx, HandshakeError::Timeout));
        }
        if due(Timer::Close) {
            self.state = State::Closed;
            self.deadlines = [None; TIMERS];
            cx.close();
            return Ok(());
        }
        if due(Timer::Pong) {
            return Err(self.fail(cx, WsError::PongTimeout));
        }
        if due(Timer::Ping)
            && let Some(interval) = self.config.ping_interval()
        {
            cx.send(encode_frame(true, OpCode::Ping, b""));
            self.deadlines[Timer::Ping as usize] = Some(now + interval);
            let pong = &mut self.deadlines[Timer::Pong as usize];
            if pong.is_none() {
                *pong = Some(now + self.config.pong_timeout());
            }
        }
        Ok(())
    }

    /// Queues the close frame for a close the protocol did not start: 1000 when the
    /// application closes, 1001 for a server shutdown or idle timeout, 1009 when the
    /// receive buffer overflowed, 1002 for other protocol errors; nothing after peer EOF or
    /// before the upgrade.
    fn handle_close(&mut self, cx: &mut ProtocolCx<'_>, reason: &CloseReason) {
        if self.state == State::Open && self.sent_close.is_none() {
            let code = match reason {
                CloseReason::PeerClosed => None,
                CloseReason::Local => Some(CloseCode::NORMAL),
                CloseReason::Shutdown | CloseReason::IdleTimeout => Some(CloseCode::GOING_AWAY),
                CloseReason::RecvBufferFull => Some(CloseCode::TOO_BIG),
                CloseReason::Protocol(_) => Some(CloseCode::PROTOCOL_ERROR),
                _ => Some(CloseCode::INTERNAL_ERROR),
            };
            if let Some(code) = code {
                cx.send(encode_close(Some(&CloseFrame::new(code, Utf8Bytes::new()))));
                self.sent_close = Some(code);
            }
        }
        self.state = State::Closed;
        self.handshake = None;
        self.deadlines = [None; TIMERS];
        self.assembly = BytesMut::new();
    }
}

impl Default for WebSocket {
    /// A connection with the default [`WsConfig`].
    fn default() -> Self {
        Self::new(Arc::new(WsConfig::default()))
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.state)
            .field("subprotocol", &self.subprotocol)
            .field("sent_close", &self.sent_close)
            .field("peer_close", &self.peer_close)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Open,
    CloseSent,
    Closed,
}

/// One entry per protocol deadline; `poll_timeout` is the min over this table.
#[derive(Debug, Clone, Copy)]
enum Timer {
    Handshake = 0,
    Ping = 1,
    Pong = 2,
    Close = 3,
}

const TIMERS: usize = 4;

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
