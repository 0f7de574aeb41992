//! gale driver on smol / async-io: a task per connection, moving bytes between sockets and
//! [`gale_core::Connection`]. All protocol logic lives in gale-core; this crate only reads,
//! writes, sleeps until the connection's deadline and delivers commands.
//!
//! Two ways in:
//!
//! - the driver API convention shared with gale-mio and gale-tokio — [`Server`] starts an
//!   [`Executor`](smol::Executor) on background threads, [`ServerHandle`] controls it — so
//!   switching drivers changes one line;
//! - runtime-native: [`serve`] a listener on smol's global executor or an executor you own,
//!   and control it with a [`ServeHandle`].
//!
//! ```no_run
//! use bytes::Bytes;
//! use gale_smol::gale_core::{codec::Lines, Context, Handler};
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
//! let server = gale_smol::Server::new(Echo).bind("127.0.0.1:9000")?.start()?;
//! server.wait();
//! # Ok(())
//! # }
//! ```
//!
//! # One connection's task
//!
//! Each connection runs in one task, a hand-written future that looks, in this order, at its
//! mailbox (commands from [`ConnHandle`](gale_core::ConnHandle)s and the server's stop
//! signal), one async-io [`Timer`](smol::Timer) (boxed once the connection has a deadline,
//! re-armed only for an earlier one), writability (only after a write would have blocked)
//! and readability (only while the connection
//! [`wants_read`](gale_core::Connection::wants_read): that is the backpressure). Reads go
//! into a per-thread [`ReadPool`](gale_core::buf::ReadPool) and are handed over without a
//! copy; a short read means the socket is empty, so the task waits for readiness instead of
//! reading again. Writes are `send`/`sendmsg`, and the drain rule runs after every input.
//! An idle connection costs its task, its 88-byte mailbox and a 40-byte readiness record:
//! about 0.59 KiB of RSS in all (`bench/run.sh`).
//!
//! Connection sockets are registered once, edge-triggered, with a poller of the server's
//! own (a `mio::Poll`) whose descriptor async-io watches; one task takes its events and
//! wakes the connection tasks. async-io registers sources one-shot, which costs an
//! `epoll_ctl` per wait, so per message in a ping-pong; this way it is one per batch of
//! events. The listener, timers and everything else stay on async-io, and the server runs
//! on whatever executor you give it. Unix only (the poller is watched as a descriptor).
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
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;
mod net;
mod poller;
mod serve;
mod server;
mod stats;
mod tasks;

pub use gale_core;
pub use net::Listener;
pub use serve::{Serve, ServeHandle, serve};
pub use server::{Server, ServerHandle};
pub use tasks::TaskPool;
