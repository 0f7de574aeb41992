//! WebSocket servers ([RFC 6455](https://www.rfc-editor.org/rfc/rfc6455)) as a connection
//! [`Protocol`](crate::Protocol): [`WebSocket`].
//!
//! A connection starts as HTTP/1.1: the upgrade request is read with core's
//! [`RequestDecoder`](crate::http::RequestDecoder) (so [`HttpLimits`](crate::http::HttpLimits)
//! bound it), checked ([`handshake`](UpgradeRequest::new)), shown to the application's
//! [`WsConfig::set_on_upgrade`] hook, and answered with `101 Switching Protocols` or an HTTP
//! error. From then on bytes are frames:
//!
//! - every client frame must be masked, RSV bits clear (except RSV1 on the first frame of a
//!   compressed message, once permessage-deflate is agreed), opcodes known; control frames
//!   at most 125 bytes and never fragmented, but allowed between the fragments of a
//!   message; otherwise close 1002;
//! - permessage-deflate ([RFC 7692](https://www.rfc-editor.org/rfc/rfc7692), off by
//!   default, [`WsConfig::deflate_mut`]): the first acceptable offer is answered in the 101;
//!   compressed messages are inflated fragment by fragment within `max_message_size`
//!   (close 1009 past it, 1007 for invalid data), text checked as it is inflated; outgoing
//!   text and binary messages at or above the threshold go out compressed
//!   ([`crate::deflate`]);
//! - fragments are reassembled ([`Message::Text`], [`Message::Binary`]), or handed over one
//!   by one with [`WsConfig::set_raw_frames`] ([`Message::Frame`]);
//! - text is checked to be UTF-8 as it arrives, across fragments and reads, and fails on the
//!   first invalid byte (close 1007);
//! - frame and message sizes are checked from the header, before buffering (close 1009;
//!   for compressed messages the header bounds the wire bytes, the inflater the rest);
//! - pings are answered; a peer's close frame is validated and echoed, then the connection
//!   closes; [`Outbound::Close`] runs the closing handshake from this side;
//! - deadlines: handshake timeout (slowloris), keepalive pings with a pong timeout, and the
//!   wait for the peer's close frame.
//!
//! # A handler
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use gale_core::testing::Harness;
//! use gale_core::ws::{Message, Outbound, WebSocket, WsConfig};
//! use gale_core::{ConnConfig, Context, Handler};
//!
//! struct Echo {
//!     config: Arc<WsConfig>,
//! }
//!
//! impl Handler for Echo {
//!     type Protocol = WebSocket;
//!     type State = ();
//!
//!     fn protocol(&self) -> WebSocket {
//!         WebSocket::new(self.config.clone())
//!     }
//!
//!     fn on_message(&self, cx: &mut Context<'_, Self>, msg: Message) {
//!         match msg {
//!             Message::Open(upgraded) => println!("connected to {}", upgraded.path()),
//!             Message::Text(text) => drop(cx.send(Outbound::Text(text))),
//!             Message::Binary(data) => drop(cx.send(Outbound::Binary(data))),
//!             _ => {} // pings are answered and closes echoed automatically
//!         }
//!     }
//! }
//!
//! let echo = Arc::new(Echo { config: Arc::new(WsConfig::default()) });
//! # #[allow(clippy::disallowed_methods)]
//! let mut h = Harness::new(echo, ConnConfig::default(), Instant::now());
//! h.peer_send(
//!     b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
//! );
//! assert!(h.take_written().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! // A masked text frame "Hello" (RFC 6455 §5.7) comes back unmasked.
//! h.peer_send(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! assert_eq!(&h.take_written()[..], b"\x81\x05Hello");
//! ```
//!
//! The `Open` message carries the request (path, query, headers) and the subprotocol the
//! hook chose; [`WebSocket::subprotocol`] keeps the latter for the connection's life. On
//! close, [`WebSocket::error`], [`WebSocket::peer_close_code`] and
//! [`WebSocket::sent_close_code`] (through [`Context::protocol`](crate::Context::protocol))
//! say how it ended.

mod close;
mod config;
mod error;
mod frame;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz;
mod handshake;
mod mask;
mod message;
mod protocol;
#[cfg(test)]
mod tests;
mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_REASON};
pub use config::{UpgradeHook, WsConfig};
pub use error::{OutboundError, WsError};
pub use frame::{Frame, OpCode};
#[cfg(feature = "fuzzing")]
pub use fuzz::{fuzz_ws_frames, fuzz_ws_handshake};
pub use handshake::{HandshakeError, UpgradeDecision, UpgradeRequest, accept_key};
pub use mask::apply_mask;
pub use message::{Message, Outbound, Upgraded, Utf8Bytes};
pub use protocol::WebSocket;
pub use utf8::{InvalidUtf8, Utf8Validator};
