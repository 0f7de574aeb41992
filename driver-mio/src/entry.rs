//! One connection on a loop: its socket, its [`Connection`], and the I/O that follows the
//! drain rule. Everything here is mechanical; every decision is the connection's.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::time::Instant;

use gale_core::{CloseReason, ConnId, Connection, Event, Handler};
use mio::Interest;

use crate::net::Stream;
use crate::stats::Seen;

/// A connection owned by a loop, stored in its slab.
pub(crate) struct Entry<H: Handler> {
    pub(crate) conn: Connection<H>,
    pub(crate) stream: Stream,
    pub(crate) id: ConnId,
    /// The interest the socket is registered with (`None`: not registered).
    pub(crate) interest: Option<Interest>,
    /// The deadline scheduled in the loop's timer queue.
    pub(crate) deadline: Option<Instant>,
    /// The socket may have bytes to read: set by readiness events, cleared by `WouldBlock`.
    pub(crate) readable: bool,
    /// The socket may accept bytes: cleared by `WouldBlock`, set by readiness events.
    pub(crate) writable: bool,
    /// Whether the key is in the loop's queue of connections with work left.
    pub(crate) queued: bool,
    pub(crate) seen: Seen,
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
    pub(crate) fn new(conn: Connection<H>, stream: Stream, id: ConnId) -> Self {
        Self {
            conn,
            stream,
            id,
            interest: None,
            deadline: None,
            readable: false,
            // A new socket has room: the first write is attempted at once.
            writable: true,
            queued: false,
            seen: Seen::default(),
        }
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
        while self.readable && self.conn.wants_read() && budget > 0 {
            // Read into this thread's scratch buffer and hand core only what arrived: an idle
            // connection owns no receive memory and no read window needs zero-filling.
            let read = SCRATCH.with_borrow_mut(|scratch| match self.stream.read(scratch) {
                Ok(n) if n > 0 => {
                    self.conn.handle_input(now, &scratch[..n]);
                    Ok(n)
                }
                other => other,
            });
            match read {
                Ok(0) => {
                    self.readable = false;
                    self.conn.handle_eof(now);
                }
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.readable = false;
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

    /// Whether the connection could make progress without a new readiness event.
    pub(crate) fn has_work(&self) -> bool {
        (self.readable && self.conn.wants_read()) || (self.writable && self.conn.wants_write())
    }

    /// The interest the socket needs now: readable while the connection reads, writable while
    /// it has bytes queued.
    pub(crate) fn wanted_interest(&self) -> Option<Interest> {
        match (self.conn.wants_read(), self.conn.wants_write()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// The drain rule: events, then vectored writes until the socket would block or nothing
    /// is left (draining events after each write), within `budget` bytes.
    fn drain(&mut self, now: Instant, budget: &mut usize) -> Step {
        loop {
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::ShutdownWrite => {
                        if let Err(e) = self.stream.shutdown_write() {
                            tracing::debug!(id = %self.id, error = %e, "shutdown(Write) failed");
                        }
                    }
                    Event::Closed(reason) => return Step::Closed(reason),
                    other => tracing::debug!(id = %self.id, ?other, "unknown connection event"),
                }
            }
            if !self.writable || *budget == 0 {
                return Step::Idle;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = self.conn.poll_transmit(&mut iov);
            if n == 0 {
                return Step::Idle;
            }
            match self.stream.write_vectored(&iov[..n]) {
                Ok(0) => self.conn.handle_io_error(now, ErrorKind::WriteZero),
                Ok(written) => {
                    *budget = budget.saturating_sub(written);
                    self.conn.handle_written(now, written);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Step::Idle;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.io_error(now, &e),
            }
        }
    }

    fn io_error(&mut self, now: Instant, e: &io::Error) {
        tracing::debug!(id = %self.id, error = %e, "socket error");
        self.conn.handle_io_error(now, e.kind());
    }
}

/// Most slices per vectored write.
const MAX_IOV: usize = 64;

thread_local! {
    /// One read buffer per loop thread, shared by all of its connections.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

/// Size of the per-thread read buffer (the mio floor's is the same).
const SCRATCH_LEN: usize = 64 * 1024;
