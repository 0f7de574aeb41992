//! How a message goes on the wire, and what the server must send back for it.
//!
//! The echo engine (`echo.rs`) never looks at framing: for each message it asks the [`Wire`]
//! to append the request bytes to the connection's output and the exact reply bytes to the
//! connection's expectation, then checks the received stream byte for byte against the
//! expectation. The latency of a message ends when the last byte of its reply is verified.
//!
//! # WebSocket
//!
//! [`crate::ws::Ws`] frames messages as masked binary frames. A wire whose
//! [`Wire::upgrades`] is true makes `conn::open_all` do the HTTP/1.1 upgrade handshake on every
//! connection first (parsed, `Sec-WebSocket-Accept` checked); a connection counts as open only
//! once its `101` arrived, and bytes after the `101` head go through the echo verification.

use crate::deflate::{ClientDeflate, Offer};
use crate::payload::Payload;

/// A wire format for the echo engine.
pub(crate) trait Wire {
    /// Appends one message carrying `payload` to `out` and the exact expected reply to
    /// `expect`; `deflate` is the connection's permessage-deflate state, if agreed.
    fn encode(
        &mut self,
        payload: &[u8],
        deflate: Option<&mut ClientDeflate>,
        out: &mut Vec<u8>,
        expect: &mut Vec<u8>,
    );

    /// Whether connections must do the WebSocket upgrade handshake before any message.
    fn upgrades(&self) -> bool {
        false
    }

    /// What messages carry.
    fn payload(&self) -> Payload {
        Payload::Random
    }

    /// The permessage-deflate offer of the upgrade, if any (the server must accept it).
    fn offer(&self) -> Option<Offer> {
        None
    }
}

/// Raw bytes: the message is the payload, the reply is the same payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw;

impl Wire for Raw {
    fn encode(
        &mut self,
        payload: &[u8],
        _deflate: Option<&mut ClientDeflate>,
        out: &mut Vec<u8>,
        expect: &mut Vec<u8>,
    ) {
        out.extend_from_slice(payload);
        expect.extend_from_slice(payload);
    }
}
