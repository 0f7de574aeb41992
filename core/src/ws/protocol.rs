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
use super::frame::{OpCode, parse_header};
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
/// Every open connection holds one of these, so it is kept small (112 bytes on 64-bit
/// targets): what only some connections need (a fragmented message's reassembly buffer, a
/// subprotocol, permessage-deflate, the error that ended the connection) lives in a boxed
/// part allocated on first use and freed when empty, and one deadline slot serves the
/// handshake timeout, the keepalive ping or the close wait, whichever the state needs.
/// The handshake decoder is allocated with the first bytes of the request and dropped at
/// the upgrade; a single-frame message is taken from the receive buffer without copying.
/// An idle open connection holds only this struct.
pub struct WebSocket {
    config: Arc<WsConfig>,
    /// The upgrade request decoder, from the first request bytes until the upgrade.
    handshake: Option<Box<RequestDecoder>>,
    /// What few connections need; see [`Cold`].
    cold: Option<Box<Cold>>,
    /// The frame whose payload is arriving.
    frame: Option<InFrame>,
    /// The data message in progress (between its first frame and its last).
    message: Option<InMessage>,
    deadlines: [Option<Instant>; TIMERS],
    sent_close: Option<CloseCode>,
    peer_close: Option<CloseCode>,
    state: State,
}

/// The part of a [`WebSocket`] that few connections need, boxed and allocated on first use.
#[derive(Default)]
struct Cold {
    /// Fragments of the message in progress, when it has more than one.
    assembly: BytesMut,
    subprotocol: Option<Box<str>>,
    /// permessage-deflate, when negotiated.
    deflate: Option<PerMessageDeflate>,
    error: Option<WsError>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.assembly.capacity() == 0
            && self.subprotocol.is_none()
            && self.deflate.is_none()
            && self.error.is_none()
    }
}

impl WebSocket {
    /// A connection at the start of its handshake.
    pub fn new(config: Arc<WsConfig>) -> Self {
        Self {
            config,
            handshake: None,
            cold: None,
            frame: None,
            message: None,
            deadlines: [None; TIMERS],
            sent_close: None,
            peer_close: None,
            state: State::Handshake,
        }
    }

    /// Starts the handshake timeout at `now` (the connection was accepted). Later calls and
    /// calls after the upgrade do nothing.
    fn arm_handshake_timeout(&mut self, now: Instant) {
        if self.state == State::Handshake && self.deadlines[Timer::State as usize].is_none() {
            self.deadlines[Timer::State as usize] =
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
        self.cold.as_ref()?.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters agreed at the upgrade, if the extension is in use.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.cold
            .as_ref()?
            .deflate
            .as_ref()
            .map(PerMessageDeflate::params)
    }

    /// The connection's permessage-deflate transform, if the extension is in use: its
    /// [`params`](PerMessageDeflate::params), how many messages went out compressed
    /// ([`messages_compressed`](PerMessageDeflate::messages_compressed)) and came in
    /// compressed ([`messages_inflated`](PerMessageDeflate::messages_inflated)), and
    /// whether it holds compressor state. A handler can tell whether the message it is
    /// given arrived compressed by comparing `messages_inflated` with the previous value.
    pub fn permessage_deflate(&self) -> Option<&PerMessageDeflate> {
        self.cold.as_ref()?.deflate.as_ref()
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
        self.cold.as_ref()?.error.as_ref()
    }

    /// Heap bytes this connection's protocol state holds (for the memory tests).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let decoder = self
            .handshake
            .as_ref()
            .map_or(0, |_| size_of::<RequestDecoder>());
        let cold = self.cold.as_ref().map_or(0, |c| {
            size_of::<Cold>()
                + c.assembly.capacity()
                + c.subprotocol.as_ref().map_or(0, |p| p.len())
        });
        decoder + cold
    }

    /// The boxed part, allocated now if it was not.
    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_default()
    }

    /// Frees the boxed part when nothing in it is in use.
    fn shrink_cold(&mut self) {
        if self.cold.as_ref().is_some_and(|c| c.is_empty()) {
            self.cold = None;
        }
    }

    /// Drops a reassembly buffer (the message ended or the connection did).
    fn free_assembly(&mut self) {
        if let Some(cold) = self.cold.as_mut() {
            cold.assembly = BytesMut::new();
        }
        self.shrink_cold();
    }

    fn decode_handshake(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Message>, ProtocolError> {
        self.arm_handshake_timeout(cx.now());
        if src.is_empty() && !eof {
            return Ok(None);
        }
        let limits = *self.config.http_limits();
        let decoder = self
            .handshake
            .get_or_insert_with(|| Box::new(RequestDecoder::with_limits(limits)));
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
                self.handshake = None;
                if let Some(params) = deflate {
                    let pmd = PerMessageDeflate::new(params, self.config.deflate());
                    self.cold_mut().deflate = Some(pmd);
                }
                if subprotocol.is_some() {
                    self.cold_mut().subprotocol.clone_from(&subprotocol);
                }
                self.state = State::Open;
                self.deadlines = [None; TIMERS];
                self.deadlines[Timer::State as usize] =
                    self.config.ping_interval().map(|i| cx.now() + i);
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
        self.free_assembly();
        self.cold_mut().error = Some(e);
        self.state = State::Closed;
        self.deadlines = [None; TIMERS];
        self.frame = None;
        self.message = None;
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
        if self.state == State::Handshake {
            return self.handshake.as_ref()?.frame_size_hint(src);
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
        if due(Timer::State) && self.state == State::Handshake {
            return Err(self.refuse(cx, HandshakeError::Timeout));
        }
        if due(Timer::State) && self.state == State::CloseSent {
            self.state = State::Closed;
            self.deadlines = [None; TIMERS];
            cx.close();
            return Ok(());
        }
        if due(Timer::Pong) {
            return Err(self.fail(cx, WsError::PongTimeout));
        }
        if due(Timer::State)
            && self.state == State::Open
            && let Some(interval) = self.config.ping_interval()
        {
            Self::send_data(cx, true, OpCode::Ping, Bytes::new());
            self.deadlines[Timer::State as usize] = Some(now + interval);
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
        self.free_assembly();
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
            .field("subprotocol", &self.subprotocol())
            .field("sent_close", &self.sent_close)
            .field("peer_close", &self.peer_close)
            .field("error", &self.error())
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
///
/// The states never need the same deadline at once, so one slot serves them all.
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The state's own deadline: `Handshake`, the handshake timeout; `Open`, the next
    /// keepalive ping; `CloseSent`, the wait for the peer's close frame.
    State = 0,
    /// `Open`: the answer to a keepalive ping is due (any bytes count).
    Pong = 1,
}

const TIMERS: usize = 2;

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
