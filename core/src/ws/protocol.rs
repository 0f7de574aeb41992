//! [`WebSocket`]: the server side of RFC 6455 as a connection [`Protocol`].

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::WsConfig;
use super::close::{BadClose, CloseCode, CloseFrame, encode_close, parse_close};
use super::error::{OutboundError, WsError};
use super::frame::{Frame, Header, OpCode, encode_frame, header_len, parse_header, put_header};
use super::handshake::{HandshakeError, UpgradeDecision, UpgradeRequest};
use super::mask::apply_mask;
use super::message::{Message, Outbound, Upgraded, Utf8Bytes};
use super::utf8::Utf8Validator;
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
/// [`WsConfig`], and start its handshake clock in
/// [`Handler::on_connect`](crate::Handler::on_connect) with
/// [`handle_connect`](Self::handle_connect) (until the `Protocol` trait has a connect hook,
/// the clock otherwise starts with the first bytes, and a client that sends nothing is only
/// bounded by the connection's idle timeout).
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
/// frames are refused with an [`OutboundError`]. [`Context::close`](crate::Context::close)
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
            sent_close: None,
            peer_close: None,
            error: None,
        }
    }

    /// Starts the handshake timeout at `now` (the connection was accepted). Later calls and
    /// calls after the upgrade do nothing.
    pub fn handle_connect(&mut self, now: Instant) {
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
        self.handle_connect(cx.now());
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
            Ok((response, subprotocol)) => {
                cx.send(response);
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

    fn upgrade(&self, request: &Request) -> Result<(Bytes, Option<Box<str>>), HandshakeError> {
        let req = UpgradeRequest::new(request.head())?;
        let decision = match self.config.on_upgrade() {
            Some(hook) => hook(&req),
            None => UpgradeDecision::accept(),
        };
        let (response, subprotocol) = req.accept(decision)?;
        let mut out = BytesMut::new();
        response.encode(&mut out);
        Ok((out.freeze(), subprotocol))
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

    fn decode_frames(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Message>, ProtocolError> {
        if !src.is_empty() {
            // Any bytes from the peer prove it alive.
            self.deadlines[Timer::Pong as usize] = None;
        }
        loop {
            let frame = match &mut self.frame {
                Some(frame) => frame,
                None => {
                    let Some(header) = parse_header(src) else {
                        return Ok(None);
                    };
                    let frame = self.start_frame(&header).map_err(|e| self.fail(cx, e))?;
                    src.advance(header.len);
                    self.frame.insert(frame)
                }
            };
            // Unmask (and for text, validate) what arrived since the last call, so invalid
            // UTF-8 fails before the rest of the frame is read.
            let avail = src.len().min(frame.len);
            if avail > frame.done {
                let fresh = &mut src[frame.done..avail];
                apply_mask(fresh, frame.mask, frame.done);
                frame.done = avail;
                if frame.text
                    && let Some(msg) = &mut self.message
                    && msg.utf8.feed(fresh).is_err()
                {
                    return Err(self.fail(cx, WsError::InvalidUtf8));
                }
            }
            if frame.done < frame.len {
                return Ok(None);
            }
            let frame = *frame;
            self.frame = None;
            if !frame.fin && !frame.opcode.is_control() && !self.config.raw_frames() {
                // A fragment to reassemble: copy it straight out of the receive buffer.
                self.assembly.extend_from_slice(&src[..frame.len]);
                src.advance(frame.len);
                continue;
            }
            let payload = if frame.len == 0 {
                Bytes::new()
            } else {
                src.split_to(frame.len).freeze()
            };
            if let Some(msg) = self.finish_frame(cx, frame, payload)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Judges a header against the protocol's rules and the limits, before any payload is
    /// buffered.
    fn start_frame(&mut self, h: &Header) -> Result<InFrame, WsError> {
        if h.rsv() != 0 {
            return Err(WsError::ReservedBits);
        }
        let opcode =
            OpCode::from_bits(h.opcode_bits()).ok_or(WsError::ReservedOpcode(h.opcode_bits()))?;
        let mask = h.mask.ok_or(WsError::UnmaskedFrame)?;
        if opcode.is_control() {
            if !h.fin() {
                return Err(WsError::FragmentedControl);
            }
            if h.payload_len > MAX_CONTROL as u64 {
                return Err(WsError::ControlFrameTooLong(h.payload_len));
            }
            return Ok(InFrame::new(opcode, h, mask, false));
        }
        if h.payload_len >> 63 != 0 {
            return Err(WsError::InvalidLength);
        }
        let max = self.config.max_frame_size();
        if h.payload_len > max as u64 {
            return Err(WsError::FrameTooLarge {
                len: h.payload_len,
                max,
            });
        }
        let so_far = match (opcode, &self.message) {
            (OpCode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
            (OpCode::Continuation, Some(msg)) => msg.size,
            (_, Some(_)) => return Err(WsError::ExpectedContinuation),
            (_, None) => 0,
        };
        let size = so_far + h.payload_len;
        let max = self.config.max_message_size();
        if size > max as u64 {
            return Err(WsError::MessageTooLarge { len: size, max });
        }
        let msg = self.message.get_or_insert(InMessage {
            text: opcode == OpCode::Text,
            size: 0,
            utf8: Utf8Validator::new(),
        });
        msg.size = size;
        Ok(InFrame::new(opcode, h, mask, msg.text))
    }

    /// Acts on a whole frame; returns what the handler gets, if anything.
    fn finish_frame(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        frame: InFrame,
        payload: Bytes,
    ) -> Result<Option<Message>, ProtocolError> {
        match frame.opcode {
            OpCode::Ping => {
                if self.state == State::Open {
                    cx.send(encode_frame(true, OpCode::Pong, &payload));
                }
                Ok(Some(Message::Ping(payload)))
            }
            OpCode::Pong => Ok(Some(Message::Pong(payload))),
            OpCode::Close => self.peer_closed(cx, payload).map(Some),
            _ => self.finish_data(cx, frame, payload),
        }
    }

    fn finish_data(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        frame: InFrame,
        payload: Bytes,
    ) -> Result<Option<Message>, ProtocolError> {
        let Some(msg) = &mut self.message else {
            // invariant: start_frame opens a message for every data frame it accepts.
            return Ok(None);
        };
        let text = msg.text;
        if frame.fin {
            if text && msg.utf8.finish().is_err() {
                return Err(self.fail(cx, WsError::InvalidUtf8));
            }
            self.message = None;
        }
        if self.config.raw_frames() {
            return Ok(Some(Message::Frame(Frame::new(
                frame.fin,
                frame.opcode,
                payload,
            ))));
        }
        if !frame.fin {
            // invariant: decode_frames copies non-final fragments itself; kept for safety.
            self.assembly.extend_from_slice(&payload);
            return Ok(None);
        }
        let whole = if self.assembly.is_empty() {
            payload
        } else {
            self.assembly.extend_from_slice(&payload);
            std::mem::take(&mut self.assembly).freeze()
        };
        Ok(Some(if text {
            Message::Text(Utf8Bytes::from_validated(whole))
        } else {
            Message::Binary(whole)
        }))
    }

    /// The peer's close frame: validate, echo its code (unless we closed first), close.
    fn peer_closed(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        payload: Bytes,
    ) -> Result<Message, ProtocolError> {
        let frame = match parse_close(payload) {
            Ok(frame) => frame,
            Err(BadClose::Truncated) => return Err(self.fail(cx, WsError::TruncatedClose)),
            Err(BadClose::Code(c)) => return Err(self.fail(cx, WsError::InvalidCloseCode(c))),
            Err(BadClose::Reason) => return Err(self.fail(cx, WsError::InvalidCloseReason)),
        };
        let code = frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code);
        self.peer_close = Some(code);
        if self.sent_close.is_none() {
            let echo = frame
                .as_ref()
                .map(|f| CloseFrame::new(f.code, Utf8Bytes::new()));
            cx.send(encode_close(echo.as_ref()));
            self.sent_close = Some(code);
        }
        self.state = State::Closed;
        self.deadlines = [None; TIMERS];
        self.message = None;
        self.assembly = BytesMut::new();
        cx.close();
        Ok(Message::Close(frame))
    }

    fn send_data(cx: &mut ProtocolCx<'_>, fin: bool, opcode: OpCode, payload: Bytes) {
        if payload.len() <= COPY_UP_TO {
            cx.send(encode_frame(fin, opcode, &payload));
        } else {
            let mut header = BytesMut::with_capacity(header_len(payload.len()));
            put_header(&mut header, fin, opcode, payload.len());
            cx.send(header.freeze());
            cx.send(payload);
        }
    }

    fn send_control(
        cx: &mut ProtocolCx<'_>,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), OutboundError> {
        if payload.len() > MAX_CONTROL {
            return Err(OutboundError::ControlTooLong(payload.len()));
        }
        cx.send(encode_frame(true, opcode, payload));
        Ok(())
    }

    fn encode_outbound(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        msg: Outbound,
    ) -> Result<(), OutboundError> {
        if self.state != State::Open {
            return Ok(()); // dropped: not upgraded yet, or closing (see the type docs)
        }
        match msg {
            Outbound::Text(text) => Self::send_data(cx, true, OpCode::Text, text.into_bytes()),
            Outbound::Binary(data) => Self::send_data(cx, true, OpCode::Binary, data),
            Outbound::Ping(data) => Self::send_control(cx, OpCode::Ping, &data)?,
            Outbound::Pong(data) => Self::send_control(cx, OpCode::Pong, &data)?,
            Outbound::Close(frame) => {
                let code = frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code);
                if frame.is_some() && !code.is_valid() {
                    return Err(OutboundError::InvalidCloseCode(code.0));
                }
                cx.send(encode_close(frame.as_ref()));
                self.sent_close = Some(code);
                self.state = State::CloseSent;
                self.deadlines = [None; TIMERS];
                self.deadlines[Timer::Close as usize] =
                    Some(cx.now() + self.config.close_timeout());
            }
            Outbound::Frame(frame) if frame.opcode == OpCode::Close => {
                return Err(OutboundError::RawClose);
            }
            Outbound::Frame(frame) if frame.opcode.is_control() => {
                if !frame.fin {
                    return Err(OutboundError::FragmentedControl);
                }
                Self::send_control(cx, frame.opcode, &frame.payload)?;
            }
            Outbound::Frame(frame) => Self::send_data(cx, frame.fin, frame.opcode, frame.payload),
        }
        Ok(())
    }
}

impl Protocol for WebSocket {
    type Message = Message;
    type Outgoing = Outbound;

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

#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload length (bounded by the frame limit, so it fits in memory).
    len: usize,
    /// Payload bytes already unmasked at the front of the buffer.
    done: usize,
    /// Whether the payload belongs to a text message (UTF-8 checked as it arrives).
    text: bool,
}

impl InFrame {
    fn new(opcode: OpCode, h: &Header, mask: [u8; 4], text: bool) -> Self {
        Self {
            opcode,
            fin: h.fin(),
            mask,
            // Checked against the frame limit (a usize) or the control limit before.
            len: usize::try_from(h.payload_len).unwrap_or(usize::MAX),
            done: 0,
            text,
        }
    }
}

#[derive(Debug)]
struct InMessage {
    text: bool,
    /// Payload bytes of the frames so far, the current one included.
    size: u64,
    utf8: Utf8Validator,
}

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
/// Data payloads up to this size are copied next to their header (one chunk, one
/// allocation); larger ones are queued as a second chunk without copying.
const COPY_UP_TO: usize = 1024;
