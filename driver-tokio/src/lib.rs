//! gale driver on tokio: a task per connection, moving bytes between sockets and
//! [`gale_core::Connection`]. All protocol logic lives in gale-core; this crate only reads,
//! writes, sleeps until the connection's deadline and delivers commands.
//!
//! Two ways in:
//!
//! - the driver API convention shared with gale-mio and gale-smol — [`Server`] starts its own
//!   runtime on background threads, [`ServerHandle`] controls it — so switching drivers
//!   changes one line;
//! - runtime-native: [`serve`] a listener on a runtime you own (current-thread or
//!   multi-thread) and control it with a [`ServeHandle`].
//!
//! ```no_run
//! use bytes::Bytes;
//! use gale_tokio::gale_core::{codec::Lines, Context, Handler};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Protocol = Lines;
//!     type State = ();
//!     fn protocol(&self) -> Lines {
//!         Lines::new()
//!     }
//!     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
//!         let _ = cx.send(line);
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let server = gale_tokio::Server::new(Echo).bind("127.0.0.1:9000")?.start()?;
//! server.wait();
//! # Ok(())
//! # }
//! ```
//!
//! # One connection's task
//!
//! Each connection runs in one task, a hand-written future that looks, in this order, at its
//! mailbox (commands from [`ConnHandle`](gale_core::ConnHandle)s and the server's stop
//! signal), one `Sleep` (boxed once the connection has a deadline, re-armed only for an
//! earlier one), writability and readability (only while the connection
//! [`wants_read`](gale_core::Connection::wants_read): that is the backpressure). Reads go
//! into a per-thread [`ReadPool`](gale_core::buf::ReadPool) through `poll_read`, so a short
//! read clears tokio's readiness and no read is spent to see `WouldBlock`; the bytes are
//! handed over without a copy. Writes are `send`/`sendmsg`, and the drain rule runs after every input. An
//! idle connection costs a 256-byte task cell, its boxed 224-byte connection, a 72-byte
//! mailbox and tokio's 256-byte I/O registration: about 980 bytes in all with the
//! allocator's alignment padding (glibc; the sizes are chosen so that the connection and the
//! mailbox fill the padding of the two 128-byte-aligned allocations).
//!
//! # Long work
//!
//! [`TaskPool`] runs blocking or `async` work admitted by gale-core's task queue; the
//! handler replies later through a [`ConnHandle`](gale_core::ConnHandle).
//!
//! # Observability
//!
//! Logs through [`tracing`] (accept, close with reason, stop); metrics through the
//! [`metrics`] facade under the names in [`gale_core::server::metric`], shared by all gale
//! drivers (install a recorder before starting the server).
//!
//! # Features
//!
//! - `codec`: [`codec::Compat`], gale-core codecs as tokio-util codecs for `Framed`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "codec")]
pub mod codec;
mod conn;
mod net;
mod serve;
mod server;
mod stats;
mod tasks;

pub use gale_core;
pub use net::Listener;
pub use serve::{Serve, ServeHandle, serve};
pub use server::{Server, ServerHandle};
pub use tasks::TaskPool;
