//! gale-core: the sans-IO protocol engine of gale.
//!
//! gale-core is pure state machines: buffers, framing codecs, the connection engine, timers.
//! It has **no networking code and never reads the clock**: drivers (gale-mio, gale-tokio,
//! gale-smol, or your own event loop) move bytes between sockets and a [`Connection`], pass the
//! current time in, and sleep until the connection's next deadline. Because of that, every
//! protocol rule, limit and timeout in gale is tested here on a virtual clock, in
//! microseconds, and the same [`Handler`] runs unchanged on every driver.
//!
//! # The run loop
//!
//! ```text
//!   driver                               gale-core
//!   ──────                               ─────────
//!   accept ─────────────────────────────► Connection::new + handle_connect
//!   readable: read into read_buf() ─────► handle_read(now, n) ─► Protocol::decode ─► Handler::on_message
//!   EOF ────────────────────────────────► handle_eof(now)
//!   deadline passed ────────────────────► handle_timeout(now)
//!   command from a ConnHandle ──────────► handle_command(now, cmd)
//!   ◄──────────────────────────────────── poll_event()     (shutdown write side / closed)
//!   write vectored ◄──────────────────── poll_transmit()  ─► handle_written(now, n)
//!   sleep until ◄─────────────────────── poll_timeout()
//! ```
//!
//! The drain rule and polling order are documented on [`Connection`]; [`testing::Harness`]
//! drives a connection against a scripted peer on a virtual clock.
//!
//! # Errors
//!
//! Peer misbehaviour never panics: decoders return typed errors ([`codec::CodecError`],
//! [`ProtocolError`]) and the connection turns them into a close whose [`CloseReason`] reaches
//! [`Handler::on_close`]. Caller misuse (sending on a closed connection, too many timers) is a
//! separate, typed error returned to the caller ([`SendError`], [`TimerError`]).
//!
//! # Features
//!
//! - `fuzzing`: exposes [`fuzzing`], the helpers the cargo-fuzz targets in `fuzz/` wrap. Not a
//!   stable API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buf;
pub mod codec;
mod conn;
pub mod deflate;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handler;
pub mod http;
pub mod protobuf;
mod protocol;
pub mod server;
pub mod task;
pub mod testing;
pub mod timer;
pub mod ws;

pub use conn::{ConnConfig, ConnStats, Connection, Event, Outgoing, PeerAddr};
pub use handler::{
    Command, ConnHandle, ConnId, Context, Handler, Mailbox, MailboxClosed, SendError, TimerError,
};
pub use protocol::{CloseReason, Protocol, ProtocolCx, ProtocolError};

/// The origin of the virtual clock used by gale-core's own tests: the one clock read in this
/// crate, made once per test; every other instant is this plus a `Duration`.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn t0() -> std::time::Instant {
    std::time::Instant::now()
}
