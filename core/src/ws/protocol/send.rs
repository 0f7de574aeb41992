//! The sending side: [`Outbound`] values to unmasked frames.

use bytes::{Bytes, BytesMut};

use super::{MAX_CONTROL, State, TIMERS, Timer, WebSocket};
use crate::protocol::ProtocolCx;
use crate::ws::OutboundError;
use crate::ws::close::{CloseCode, encode_close};
use crate::ws::frame::{OpCode, frame_head};
use crate::ws::message::Outbound;

impl WebSocket {
    /// A whole text or binary message: compressed (RSV1 set) when permessage-deflate is
    /// agreed and the message reaches its threshold, as is otherwise.
    fn send_message(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        opcode: OpCode,
        payload: Bytes,
    ) -> Result<(), OutboundError> {
        let Some(pmd) = self
            .cold
            .as_mut()
            .and_then(|c| c.deflate.as_mut())
            .filter(|p| p.should_compress(payload.len()))
        else {
            Self::send_data(cx, true, opcode, payload);
            return Ok(());
        };
        let mut body = BytesMut::new();
        pmd.compress(&payload, &mut body)?;
        let (mut head, used) = frame_head(true, opcode, body.len());
        head[0] |= RSV1;
        cx.send_with_head(&head[..used], body.freeze());
        Ok(())
    }

    /// A frame: its header on the stack, the payload queued behind it without a copy (no
    /// allocation at all when nothing else is queued).
    pub(super) fn send_data(cx: &mut ProtocolCx<'_>, fin: bool, opcode: OpCode, payload: Bytes) {
        let (head, used) = frame_head(fin, opcode, payload.len());
        cx.send_with_head(&head[..used], payload);
    }

    fn send_control(
        cx: &mut ProtocolCx<'_>,
        opcode: OpCode,
        payload: Bytes,
    ) -> Result<(), OutboundError> {
        if payload.len() > MAX_CONTROL {
            return Err(OutboundError::ControlTooLong(payload.len()));
        }
        Self::send_data(cx, true, opcode, payload);
        Ok(())
    }

    pub(super) fn encode_outbound(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        msg: Outbound,
    ) -> Result<(), OutboundError> {
        if self.state != State::Open {
            return Ok(()); // dropped: not upgraded yet, or closing (see the type docs)
        }
        match msg {
            Outbound::Text(text) => self.send_message(cx, OpCode::Text, text.into_bytes())?,
            Outbound::Binary(data) => self.send_message(cx, OpCode::Binary, data)?,
            Outbound::Ping(data) => Self::send_control(cx, OpCode::Ping, data)?,
            Outbound::Pong(data) => Self::send_control(cx, OpCode::Pong, data)?,
            Outbound::Close(frame) => {
                let code = frame.as_ref().map_or(CloseCode::NO_STATUS, |f| f.code);
                if frame.is_some() && !code.is_valid() {
                    return Err(OutboundError::InvalidCloseCode(code.0));
                }
                cx.send(encode_close(frame.as_ref()));
                self.sent_close = Some(code);
                self.state = State::CloseSent;
                self.deadlines = [None; TIMERS];
                self.deadlines[Timer::State as usize] =
                    Some(cx.now() + self.config.close_timeout());
            }
            Outbound::Frame(frame) if frame.opcode == OpCode::Close => {
                return Err(OutboundError::RawClose);
            }
            Outbound::Frame(frame) if frame.opcode.is_control() => {
                if !frame.fin {
                    return Err(OutboundError::FragmentedControl);
                }
                Self::send_control(cx, frame.opcode, frame.payload)?;
            }
            Outbound::Frame(frame) => Self::send_data(cx, frame.fin, frame.opcode, frame.payload),
        }
        Ok(())
    }
}

/// RSV1 in a header's first byte: the permessage-deflate bit.
const RSV1: u8 = 0x40;
