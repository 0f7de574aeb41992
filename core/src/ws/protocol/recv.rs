//! The receiving side of an open connection: frames in, messages out.

use bytes::{Buf, Bytes, BytesMut};

use super::{MAX_CONTROL, State, TIMERS, Timer, WebSocket};
use crate::protocol::{ProtocolCx, ProtocolError};
use crate::ws::WsError;
use crate::ws::close::{BadClose, CloseCode, CloseFrame, encode_close, parse_close};
use crate::ws::frame::{Frame, Header, OpCode, parse_header};
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
                // A fragment to reassemble: copy it straight out of the receive buffer, or
                // inflate it from there.
                if frame.compressed {
                    self.inflate(cx, &src[..frame.len], false)?;
                } else {
                    self.cold_mut()
                        .assembly
                        .extend_from_slice(&src[..frame.len]);
                }
                src.advance(frame.len);
                continue;
            }
            let payload = if frame.len == 0 {
                Bytes::new()
            } else if frame.len == src.len() {
                // The frame is all that is buffered (the common case): take the buffer
                // whole, which is free, where splitting it would allocate a shared header.
                std::mem::take(src).freeze()
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
        // RSV1 marks the first frame of a compressed message, once permessage-deflate is
        // agreed (RFC 7692 §6); RSV2 and RSV3 are never used.
        let compressed = h.rsv() == RSV1 && self.cold.as_ref().is_some_and(|c| c.deflate.is_some());
        if h.rsv() != 0 && !compressed {
            return Err(WsError::ReservedBits);
        }
        let opcode =
            OpCode::from_bits(h.opcode_bits()).ok_or(WsError::ReservedOpcode(h.opcode_bits()))?;
        if compressed && (opcode.is_control() || opcode == OpCode::Continuation) {
            return Err(WsError::ReservedBits);
        }
        let mask = h.mask.ok_or(WsError::UnmaskedFrame)?;
        if opcode.is_control() {
            if !h.fin() {
                return Err(WsError::FragmentedControl);
            }
            if h.payload_len > MAX_CONTROL as u64 {
                return Err(WsError::ControlFrameTooLong(h.payload_len));
            }
            return Ok(InFrame::new(opcode, h, mask, false, false));
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
            compressed,
            size: 0,
            utf8: Utf8Validator::new(),
        });
        msg.size = size;
        // Compressed text is checked as it is inflated, not on the wire.
        let wire_text = msg.text && !msg.compressed;
        Ok(InFrame::new(opcode, h, mask, wire_text, msg.compressed))
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
                    Self::send_data(cx, true, OpCode::Pong, payload.clone());
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
        let (text, compressed) = (msg.text, msg.compressed);
        if compressed {
            self.inflate(cx, &payload, frame.fin)?;
        }
        let Some(msg) = &mut self.message else {
            return Ok(None); // invariant: inflate only ends the message with an error
        };
        if frame.fin {
            if text && msg.utf8.finish().is_err() {
                return Err(self.fail(cx, WsError::InvalidUtf8));
            }
            self.message = None;
        }
        let inflated = match self.cold.as_mut().and_then(|c| c.deflate.as_mut()) {
            Some(pmd) if compressed => Some(pmd.take_inflated()),
            _ => None,
        };
        if self.config.raw_frames() {
            return Ok(Some(Message::Frame(Frame::new(
                frame.fin,
                frame.opcode,
                inflated.unwrap_or(payload),
            ))));
        }
        if let Some(whole) = inflated {
            if !frame.fin {
                return Ok(None); // invariant: decode_frames inflates non-final fragments
            }
            return Ok(Some(if text {
                Message::Text(Utf8Bytes::from_validated(whole))
            } else {
                Message::Binary(whole)
            }));
        }
        if !frame.fin {
            // invariant: decode_frames copies non-final fragments itself; kept for safety.
            self.cold_mut().assembly.extend_from_slice(&payload);
            return Ok(None);
        }
        let whole = match self.cold.as_mut() {
            Some(cold) if !cold.assembly.is_empty() => {
                cold.assembly.extend_from_slice(&payload);
                let whole = std::mem::take(&mut cold.assembly).freeze();
                self.shrink_cold();
                whole
            }
            _ => payload,
        };
        Ok(Some(if text {
            Message::Text(Utf8Bytes::from_validated(whole))
        } else {
            Message::Binary(whole)
        }))
    }

    /// Inflates one fragment of a compressed message (`fin`: its last) and checks text as
    /// it comes out; the inflated bytes wait in the [`PerMessageDeflate`].
    ///
    /// [`PerMessageDeflate`]: crate::deflate::PerMessageDeflate
    fn inflate(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        data: &[u8],
        fin: bool,
    ) -> Result<(), ProtocolError> {
        let max = self.config.max_message_size();
        let pmd = self.cold.as_mut().and_then(|c| c.deflate.as_mut());
        let (Some(pmd), Some(msg)) = (pmd, self.message.as_mut()) else {
            return Ok(()); // invariant: compressed messages exist only with deflate agreed
        };
        let checked = match pmd.decompress_fragment(data, fin, max) {
            Ok(added) if msg.text && msg.utf8.feed(added).is_err() => Err(WsError::InvalidUtf8),
            Ok(_) => Ok(()),
            Err(e) => Err(WsError::Deflate(e)),
        };
        checked.map_err(|e| self.fail(cx, e))
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
        self.free_assembly();
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
    /// Whether the payload belongs to an uncompressed text message (UTF-8 checked as it
    /// arrives).
    text: bool,
    /// Whether the payload belongs to a compressed message.
    compressed: bool,
}

impl InFrame {
    fn new(opcode: OpCode, h: &Header, mask: [u8; 4], text: bool, compressed: bool) -> Self {
        Self {
            opcode,
            fin: h.fin(),
            mask,
            // Checked against the frame limit (a usize) or the control limit before.
            len: usize::try_from(h.payload_len).unwrap_or(usize::MAX),
            done: 0,
            text,
            compressed,
        }
    }
}

#[derive(Debug)]
pub(super) struct InMessage {
    text: bool,
    /// RSV1 was set on its first frame: the payload is DEFLATE data (RFC 7692).
    compressed: bool,
    /// Payload bytes of the frames so far, the current one included.
    size: u64,
    utf8: Utf8Validator,
}

/// RSV1 in a header's first byte: the permessage-deflate bit.
const RSV1: u8 = 0x40;
