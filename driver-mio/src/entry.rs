//! One connection on a loop: its socket, its [`Connection`], and the I/O that follows the
//! drain rule. Everything here is mechanical; every decision is the connection's.

use std::io::{self, ErrorKind, IoSlice, Read};
use std::time::Instant;

use gale_core::buf::ReadPool;
use gale_core::{CloseReason, ConnId, Connection, Event, Handler};
use mio::Interest;

use crate::net::Stream;

/// A connection owned by a loop, stored in its slab.
///
/// Every open connection costs one of these (plus four bytes in the loop's live table), so
/// it holds only what the loop cannot find elsewhere: the id is in the connection's handle,
/// the deadline in the loop's timer queue, metric baselines are taken around each turn, and
/// the loop's own state is one byte of [`Flags`].
pub(crate) struct Entry<H: Handler> {
    pub(crate) conn: Connection<H>,
    pub(crate) stream: Stream,
    pub(crate) flags: Flags,
}

/// A loop's bookkeeping for one connection, packed into a byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags(u8);

impl Flags {
    /// The socket may have bytes to read: set by readiness events; cleared by `WouldBlock`,
    /// and by a short read unless [`READ_CLOSED`](Self::READ_CLOSED) (edge-triggered
    /// readiness reports any byte that arrives after a read that emptied the socket).
    pub(crate) const READABLE: u8 = 1;
    /// The last readiness event reported the peer's FIN or an error: read until the read
    /// says so (0 or an error), even after short reads.
    pub(crate) const READ_CLOSED: u8 = 1 << 1;
    /// The socket may accept bytes: cleared by `WouldBlock`, set by readiness events.
    pub(crate) const WRITABLE: u8 = 1 << 2;
    /// The key is in the loop's queue of connections with work left.
    pub(crate) const QUEUED: u8 = 1 << 3;
    /// The key has a deadline in the loop's timer queue.
    pub(crate) const TIMER: u8 = 1 << 6;
    /// The socket is registered for readable events.
    const REG_READ: u8 = 1 << 4;
    /// The socket is registered for writable events.
    const REG_WRITE: u8 = 1 << 5;

    pub(crate) fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    pub(crate) fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.0 |= flag;
        } else {
            self.0 &= !flag;
        }
    }

    /// The interest the socket is registered with (`None`: not registered).
    pub(crate) fn interest(self) -> Option<Interest> {
        interest(self.has(Self::REG_READ), self.has(Self::REG_WRITE))
    }

    pub(crate) fn set_interest(&mut self, interest: Option<Interest>) {
        self.set(Self::REG_READ, interest.is_some_and(Interest::is_readable));
        self.set(Self::REG_WRITE, interest.is_some_and(Interest::is_writable));
    }
}

/// How a connection stands after the loop served it.
pub(crate) enum Step {
    /// Waiting for readiness or a deadline.
    Idle,
    /// Stopped at the work bound with more to do: serve it again after the others.
    Yield,
    /// The connection is over: close the socket and drop the entry.
    Closed(CloseReason),
}

impl<H: Handler> Entry<H> {
    pub(crate) fn new(conn: Connection<H>, stream: Stream) -> Self {
        Self {
            conn,
            stream,
            // A new socket has room: the first write is attempted at once.
            flags: Flags(Flags::WRITABLE),
        }
    }

    /// The connection's id, for logs.
    pub(crate) fn id(&self) -> ConnId {
        self.conn.id().unwrap_or(ConnId(0))
    }

    /// Applies one input (`f` calls a `handle_*` method), then drains, moving at most
    /// `budget` bytes.
    pub(crate) fn apply(
        &mut self,
        now: Instant,
        mut budget: usize,
        f: impl FnOnce(&mut Connection<H>),
    ) -> Step {
        f(&mut self.conn);
        self.drain(now, &mut budget)
    }

    /// Serves readiness: writes what is queued, reads until `WouldBlock` (draining after each
    /// read), moving at most `budget` bytes.
    pub(crate) fn serve(&mut self, now: Instant, mut budget: usize) -> Step {
        if let Step::Closed(reason) = self.drain(now, &mut budget) {
            return Step::Closed(reason);
        }
        while self.flags.has(Flags::READABLE) && self.conn.wants_read() && budget > 0 {
            let read = if self.conn.read_buffer_len() > 0 {
                // The start of a frame is buffered: read the rest straight into the
                // connection's own buffer, which is sized for the frame.
                let window = self.conn.read_buf();
                let len = window.len();
                self.stream.read(window).inspect(|&n| {
                    if n > 0 {
                        self.conn.handle_read(now, n);
                    }
                    self.read_done(n, len);
                })
            } else {
                // Read into this thread's shared buffer and hand the bytes over without a
                // copy: messages share it, and an idle connection owns no receive memory.
                let read = READ_POOL.with_borrow_mut(|pool| {
                    let window = pool.window();
                    let len = window.len();
                    let n = self.stream.read(window)?;
                    Ok::<_, io::Error>((pool.split(n), len))
                });
                read.map(|(data, len)| {
                    let n = data.len();
                    if n > 0 {
                        self.conn.handle_bytes(now, data);
                    }
                    self.read_done(n, len);
                    n
                })
            };
            match read {
                Ok(0) => {
                    self.flags.set(Flags::READABLE, false);
                    self.conn.handle_eof(now);
                }
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.flags.set(Flags::READABLE, false)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.flags.set(Flags::READABLE, false);
                    self.io_error(now, &e);
                }
            }
            if let Step::Closed(reason) = self.drain(now, &mut budget) {
                return Step::Closed(reason);
            }
        }
        if self.has_work() {
            Step::Yield
        } else {
            Step::Idle
        }
    }

    /// After a read of `n` bytes into a window of `len`: a short read emptied the socket, so
    /// the next byte brings a new event and no read is spent to see `WouldBlock` (as tokio
    /// does).
    fn read_done(&mut self, n: usize, len: usize) {
        if n > 0 && n < len && !self.flags.has(Flags::READ_CLOSED) {
            self.flags.set(Flags::READABLE, false);
        }
    }

    /// Whether the connection could make progress without a new readiness event.
    pub(crate) fn has_work(&self) -> bool {
        (self.flags.has(Flags::READABLE) && self.conn.wants_read())
            || (self.flags.has(Flags::WRITABLE) && self.conn.wants_write())
    }

    /// The interest the socket needs now: readable while the connection reads, writable while
    /// it has bytes queued.
    pub(crate) fn wanted_interest(&self) -> Option<Interest> {
        interest(self.conn.wants_read(), self.conn.wants_write())
    }

    /// The drain rule: events, then vectored writes until the socket would block or nothing
    /// is left (draining events after each write), within `budget` bytes.
    fn drain(&mut self, now: Instant, budget: &mut usize) -> Step {
        loop {
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::ShutdownWrite => {
                        if let Err(e) = self.stream.shutdown_write() {
                            tracing::debug!(id = %self.id(), error = %e, "shutdown(Write) failed");
                        }
                    }
                    Event::Closed(reason) => return Step::Closed(reason),
                    other => tracing::debug!(id = %self.id(), ?other, "unknown connection event"),
                }
            }
            if !self.flags.has(Flags::WRITABLE) || *budget == 0 || !self.conn.wants_write() {
                return Step::Idle;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = self.conn.poll_transmit(&mut iov);
            if n == 0 {
                return Step::Idle;
            }
            match self.stream.send(&iov[..n]) {
                Ok(0) => self.conn.handle_io_error(now, ErrorKind::WriteZero),
                Ok(written) => {
                    *budget = budget.saturating_sub(written);
                    self.conn.handle_written(now, written);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.flags.set(Flags::WRITABLE, false);
                    self.conn.handle_write_blocked();
                    return Step::Idle;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.io_error(now, &e),
            }
        }
    }

    fn io_error(&mut self, now: Instant, e: &io::Error) {
        tracing::debug!(id = %self.id(), error = %e, "socket error");
        self.conn.handle_io_error(now, e.kind());
    }
}

fn interest(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

/// Most slices per vectored write.
const MAX_IOV: usize = 32;

thread_local! {
    /// One read buffer per loop thread, shared by all of its connections (64 KiB chunks; the
    /// mio floor reads 64 KiB at a time too).
    static READ_POOL: std::cell::RefCell<ReadPool> = std::cell::RefCell::new(ReadPool::default());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use gale_core::codec::Raw;
    use gale_core::{Context, Handler};

    use super::*;

    struct RawEcho;

    impl Handler for RawEcho {
        type Protocol = Raw;
        type State = ();
        fn protocol(&self) -> Raw {
            Raw::new()
        }
        fn on_message(&self, _: &mut Context<'_, Self>, _: Bytes) {}
    }

    /// A slab slot is the whole per-connection cost of a loop (plus 4 bytes of live table):
    /// the loop's own state must stay within the connection's alignment padding (224 bytes
    /// for a raw echo in all, its slab slot included).
    #[test]
    fn an_entry_is_a_connection_and_a_socket() {
        let conn = size_of::<Connection<RawEcho>>();
        let stream = size_of::<Stream>();
        let entry = size_of::<Entry<RawEcho>>();
        assert!(
            entry <= conn + 8 && stream == 4,
            "Entry is {entry} bytes, Connection {conn}, Stream {stream}"
        );
    }

    #[test]
    fn flags_hold_interest_and_state_independently() {
        let mut f = Flags::default();
        assert_eq!(f.interest(), None);
        f.set(Flags::QUEUED, true);
        f.set_interest(Some(Interest::READABLE | Interest::WRITABLE));
        assert_eq!(f.interest(), Some(Interest::READABLE | Interest::WRITABLE));
        f.set_interest(Some(Interest::WRITABLE));
        assert_eq!(f.interest(), Some(Interest::WRITABLE));
        assert!(f.has(Flags::QUEUED));
        f.set(Flags::QUEUED, false);
        assert!(!f.has(Flags::QUEUED) && !f.has(Flags::READABLE));
    }
}
