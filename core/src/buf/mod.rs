//! Receive and send buffers.
//!
//! - [`RecvBuf`]: the bytes read from the peer that no frame has consumed yet. It owns no heap
//!   until the first read, grows to fit the frame in progress, and gives its memory back once
//!   drained, so an idle connection keeps no receive capacity.
//! - [`SendQueue`]: a queue of [`Bytes`](bytes::Bytes) chunks waiting to be written, exposed as
//!   [`IoSlice`](std::io::IoSlice)s for vectored writes, with partial-write accounting. Queuing a
//!   `Bytes` never copies its payload, so echo and broadcast are zero-copy.
//! - [`ReadPool`]: a read buffer shared by a thread's connections; each read is split off it
//!   and handed to [`Connection::handle_bytes`](crate::Connection::handle_bytes), so received
//!   messages cost neither a copy nor an allocation.

mod pool;
mod recv;
mod send;

pub use pool::{DEFAULT_CHUNK, ReadPool};
pub use recv::RecvBuf;
pub use send::{DETACH_UP_TO, MAX_HEAD, SendQueue};
