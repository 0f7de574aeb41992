//! How a message goes on the wire, and what the server must send back for it.
//!
//! The echo engine (`echo.rs`) never looks at framing: for each message it asks the [`Wire`]
//! to append the request bytes to the connection's output and the exact reply bytes to the
//! connection's expectation, then checks the received stream byte for byte against the
//! expectation. The latency of a message ends when the last byte of its reply is verified.
//!
//! # Extension point: a `ws` mode (not built yet)
//!
//! A `Ws` wire needs two things:
//! - a handshake phase: add to this trait `fn handshake(&mut self) -> Option<Vec<u8>>` (the
//!   HTTP/1.1 upgrade request with a random `Sec-WebSocket-Key`) and a parser for the `101`
//!   response (its headers vary by server, so parse it and check `Sec-WebSocket-Accept`
//!   rather than matching bytes). The place for it is `conn::open_all`, which already has a
//!   per-connection opening phase (`Opening::Pinging`): a connection counts as open only once
//!   its handshake completed, so `echo.rs` starts messages on upgraded connections only. Bytes
//!   after the `101` response are echo bytes and must go through `Conn`'s verification;
//! - in [`Wire::encode`], append a masked binary frame (FIN, opcode 2, mask bit, 2/4/10-byte
//!   length, random 4-byte mask key, masked payload) to `out`, and the unmasked server frame
//!   (FIN, opcode 2, no mask, same length, payload) to `expect`.
//!
//! Verification, latency and reporting then work unchanged.

/// A wire format for the echo engine.
pub(crate) trait Wire {
    /// Appends one message carrying `payload` to `out` and the exact expected reply to `expect`.
    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>, expect: &mut Vec<u8>);
}

/// Raw bytes: the message is the payload, the reply is the same payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw;

impl Wire for Raw {
    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>, expect: &mut Vec<u8>) {
        out.extend_from_slice(payload);
        expect.extend_from_slice(payload);
    }
}
