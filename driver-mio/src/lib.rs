//! gale-mio: gev's multi-reactor server on [`mio`].
//!
//! One acceptor thread and N reactor threads ("loops"), each with its own `mio::Poll`, a slab
//! of connections and a timer queue. A single loop (or SO_REUSEPORT mode) accepts TCP
//! connections itself, without the acceptor; [`Server::run`] runs loop 0 on the calling
//! thread, so a one-loop server can keep its process single-threaded. The driver only moves bytes and time between sockets and
//! [`gale_core::Connection`]: framing, backpressure, timeouts and close semantics all live in
//! gale-core, so a [`Handler`](gale_core::Handler) behaves the same on every gale driver.
//!
//! ```text
//!             ┌──────────────── gale-mio-accept ───────────────┐
//!  listeners ─┤ accept · max_connections · Balancer::pick      │
//!             └───────┬───────────────────┬────────────────────┘
//!                     │ mailbox + waker   │
//!        ┌────────────▼───────┐  ┌────────▼───────────┐
//!        │ gale-mio-loop-0    │  │ gale-mio-loop-1    │   …  (SO_REUSEPORT mode: each loop
//!        │ Poll · Slab<conn>  │  │ Poll · Slab<conn>  │        accepts on its own listener)
//!        │ TimerQueue<key>    │  │ TimerQueue<key>    │
//!        │ run_after/every    │  │                    │
//!        └────────────────────┘  └────────────────────┘
//! ```
//!
//! - **Loops** follow the drain rule of [`gale_core::Connection`] after every input: read
//!   until `WouldBlock` into the connection's buffer (at most [`Server::work_budget`] bytes
//!   moved per connection per turn, then the others are served first), write at once with
//!   vectored writes, register `WRITABLE` interest only while bytes are queued and `READABLE`
//!   only while the connection reads (re-registering only when that changes), and reschedule
//!   the connection's deadline in the loop's [`TimerQueue`](gale_core::timer::TimerQueue).
//! - **Mailboxes**: a [`ConnHandle`](gale_core::ConnHandle) from any thread pushes its
//!   command into the owning loop's queue and wakes it; commands to closed connections fail
//!   with [`MailboxClosed`](gale_core::MailboxClosed).
//! - **Timers**: [`ServerHandle::run_after`] and [`ServerHandle::run_every`] run on loop 0.
//! - **Tasks**: [`TaskPool`] runs long work on worker threads and replies later through a
//!   [`ConnHandle`](gale_core::ConnHandle).
//! - **Metrics** go to the [`metrics`] facade under the names in [`metrics_names`]; install a
//!   recorder before [`Server::start`]. Logs go to [`tracing`]; the library never prints.
//!
//! Platforms: Unix (Linux, macOS, the BSDs).
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use bytes::Bytes;
//! use gale_core::{Context, Handler, codec::Raw, server::ServerConfig};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Protocol = Raw;
//!     type State = ();
//!     fn protocol(&self) -> Raw {
//!         Raw::new()
//!     }
//!     fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
//!         if cx.send(msg).is_err() {
//!             cx.close();
//!         }
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let mut config = ServerConfig::default();
//! config.set_loops(Some(2));
//! let server = gale_mio::Server::new(Echo)
//!     .config(config)
//!     .bind("127.0.0.1:0")?
//!     .start()?;
//!
//! let mut client = std::net::TcpStream::connect(server.local_addr().unwrap())?;
//! client.write_all(b"hello")?;
//! let mut reply = [0; 5];
//! client.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"hello");
//!
//! server.stop();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod acceptor;
mod entry;
mod mailbox;
mod net;
mod reactor;
mod server;
mod stats;
mod tasks;

pub use gale_core;
pub use gale_core::server::metric as metrics_names;
pub use server::{Server, ServerHandle};
pub use tasks::TaskPool;
