//! The receiving side of an open connection: frames in, messages out.

use bytes::{Buf, Bytes, BytesMut};

use super::{MAX_CONTROL, State, TIMERS, Timer, WebSocket};
use crate::protocol::{ProtocolCx, ProtocolError};
use crate::ws::WsError;
use crate::ws::close::{BadClose, CloseCode, CloseFrame, encode_close, parse_close};
use crate::ws::frame::{Frame, Header, OpCode, encode_frame, parse_header};
use crate::ws::mask::apply_mask;
use crate::ws::message::{Message, Utf8Bytes};
use crate::ws::utf8::Utf8Validator;

impl WebSocket {
    pub(super) fn decode_frames(
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
        let size = so_far.saturating_add(h.payload_len);
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
}

#[derive(Debug, Clone, Copy)]
pub(super) struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload length (bounded by the frame limit, so it fits in memory).
    pub(super) len: usize,
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
pub(super) struct InMessage {
    text: bool,
    /// Payload bytes of the frames so far, the current one included.
    size: u64,
    utf8: Utf8Validator,
}
