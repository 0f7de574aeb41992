//! A virtual-clock harness that drives one [`Connection`] against a scripted peer, in the
//! spirit of Netty's `EmbeddedChannel` and quinn-proto's test `Pair`.
//!
//! No sockets, no threads, no sleeping: the peer's bytes go straight into the connection, the
//! connection's output is collected in memory, and time moves only when the test says so —
//! [`Harness::advance`] jumps from deadline to deadline, firing each at its exact instant.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use gale_core::{codec::Lines, CloseReason, ConnConfig, Context, Handler};
//! use gale_core::testing::Harness;
//!
//! struct Echo;
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
//! let mut config = ConnConfig::default();
//! config.set_idle_timeout(Some(Duration::from_secs(10)));
//! # #[allow(clippy::disallowed_methods)]
//! let mut h = Harness::new(Arc::new(Echo), config, Instant::now());
//! h.peer_send(b"ping\n");
//! assert_eq!(h.take_written(), b"ping\n"[..]);
//! h.advance(Duration::from_secs(9));
//! assert!(h.closed().is_none());
//! h.advance(Duration::from_secs(1));
//! assert_eq!(h.closed(), Some(&CloseReason::IdleTimeout));
//! ```

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::{
    CloseReason, Command, ConnConfig, ConnHandle, ConnId, Connection, Event, Handler, Mailbox,
    MailboxClosed, Outgoing, PeerAddr,
};

/// One connection, a scripted peer and a virtual clock.
pub struct Harness<H: Handler> {
    conn: Connection<H>,
    now: Instant,
    written: BytesMut,
    /// Bytes the peer sent that the connection has not read yet (a socket's receive queue).
    unread: BytesMut,
    peer_window: Option<usize>,
    /// `Some(chunk)`: reads go through a shared buffer of `chunk` bytes (`handle_bytes`).
    shared_reads: Option<usize>,
    pool: BytesMut,
    mailbox: Arc<LocalMailbox<Outgoing<H>>>,
    eof_pending: bool,
    write_shut: bool,
    closed: Option<CloseReason>,
}

impl<H: Handler> Harness<H> {
    /// Connects a new connection at `now`, with a [`ConnHandle`] whose commands the harness
    /// delivers on every step.
    pub fn new(handler: Arc<H>, config: ConnConfig, now: Instant) -> Self {
        let mut conn = Connection::new(handler, config, PeerAddr::Unknown, now);
        let mailbox = Arc::new(LocalMailbox::default());
        conn.set_handle(ConnHandle::new(ConnId(1), mailbox.clone()));
        conn.handle_connect(now);
        let mut h = Self {
            conn,
            now,
            written: BytesMut::new(),
            unread: BytesMut::new(),
            peer_window: None,
            shared_reads: None,
            pool: BytesMut::new(),
            mailbox,
            eof_pending: false,
            write_shut: false,
            closed: None,
        };
        h.step();
        h
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The connection under test.
    pub fn conn(&mut self) -> &mut Connection<H> {
        &mut self.conn
    }

    /// The peer sends `data`. The connection reads it in windows, as a driver would, while
    /// it [wants to read](Connection::wants_read); the rest waits, as in a socket's receive
    /// queue, until reading resumes.
    pub fn peer_send(&mut self, data: &[u8]) {
        self.unread.extend_from_slice(data);
        self.step();
    }

    /// Bytes the peer sent that the connection has not read (it stopped reading).
    pub fn unread(&self) -> usize {
        self.unread.len()
    }

    /// The peer shuts down its write side: the connection reads EOF once it has read
    /// everything sent before.
    pub fn peer_eof(&mut self) {
        self.eof_pending = true;
        self.step();
    }

    /// Limits how many bytes the peer accepts from now on (`None`: unlimited). With a window
    /// of 0 the peer has stopped reading.
    pub fn set_peer_window(&mut self, window: Option<usize>) {
        self.peer_window = window;
        self.step();
    }

    /// Reads as gale's drivers do: into a buffer of `chunk` bytes shared by every read,
    /// handing each read over with [`Connection::handle_bytes`], and into the connection's
    /// own window ([`Connection::read_buf`]) while it holds the start of a frame. A read
    /// takes at most what is left of the shared buffer, which is replaced when used up, so
    /// small chunks split frames at every position. `None` (the default): every read goes
    /// into the connection's own window.
    pub fn set_shared_reads(&mut self, chunk: Option<usize>) {
        self.shared_reads = chunk.map(|c| c.max(1));
    }

    /// Delivers mailbox commands and unread input, writes what the peer accepts, and
    /// collects events, until nothing changes.
    pub fn step(&mut self) {
        loop {
            let mut progressed = false;
            while !self.unread.is_empty() && self.conn.wants_read() {
                match self.shared_reads {
                    Some(chunk) if self.conn.read_buffer_len() == 0 => {
                        if self.pool.is_empty() {
                            self.pool = BytesMut::zeroed(chunk);
                        }
                        let n = self.pool.len().min(self.unread.len());
                        self.pool[..n].copy_from_slice(&self.unread.split_to(n));
                        let data = self.pool.split_to(n);
                        self.conn.handle_bytes(self.now, data);
                    }
                    _ => {
                        let window = self.conn.read_buf();
                        let n = window.len().min(self.unread.len());
                        window[..n].copy_from_slice(&self.unread.split_to(n));
                        self.conn.handle_read(self.now, n);
                    }
                }
                progressed = true;
            }
            if self.eof_pending && self.unread.is_empty() && !self.conn.is_closed() {
                self.eof_pending = false;
                self.conn.handle_eof(self.now);
                progressed = true;
            }
            for cmd in self.mailbox.take() {
                self.conn.handle_command(self.now, cmd);
                progressed = true;
            }
            progressed |= self.drain_events();
            let budget = self.peer_window.unwrap_or(usize::MAX);
            let mut iov = [IoSlice::new(&[]); 64];
            let n = self.conn.poll_transmit(&mut iov);
            let mut taken = 0;
            for slice in &iov[..n] {
                let room = budget - taken;
                let k = slice.len().min(room);
                self.written.extend_from_slice(&slice[..k]);
                taken += k;
                if k < slice.len() {
                    break;
                }
            }
            let offered: usize = iov[..n].iter().map(|s| s.len()).sum();
            if taken > 0 {
                if let Some(w) = &mut self.peer_window {
                    *w -= taken;
                }
                self.conn.handle_written(self.now, taken);
                progressed = true;
            }
            if taken < offered {
                // The socket would block with bytes left, as drivers report it.
                self.conn.handle_write_blocked();
            }
            progressed |= self.drain_events();
            if !progressed {
                break;
            }
        }
    }

    /// Moves the virtual clock forward by `by`, firing every deadline on the way at its exact
    /// instant.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(deadline) = self.conn.poll_timeout() {
            if deadline > until {
                break;
            }
            self.now = self.now.max(deadline);
            self.conn.handle_timeout(self.now);
            self.step();
        }
        self.now = until;
        self.step();
    }

    /// Takes the bytes the connection wrote to the peer so far.
    pub fn take_written(&mut self) -> Bytes {
        self.written.split().freeze()
    }

    /// Bytes the connection wrote that the test has not taken.
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    /// Whether the connection shut down its write side ([`Event::ShutdownWrite`]).
    pub fn write_shut_down(&self) -> bool {
        self.write_shut
    }

    /// Why the connection closed, once it has.
    pub fn closed(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// A handle to the connection, as another thread would hold it.
    pub fn handle(&self) -> ConnHandle<Outgoing<H>> {
        ConnHandle::new(ConnId(1), self.mailbox.clone())
    }

    fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            match event {
                Event::ShutdownWrite => self.write_shut = true,
                Event::Closed(reason) => {
                    self.closed = Some(reason);
                    self.mailbox.close();
                }
            }
        }
        any
    }
}

/// A [`Mailbox`] that queues commands in memory until the owner takes them; the simplest
/// possible driver-side implementation, usable by embedders with one thread.
#[derive(Debug)]
pub struct LocalMailbox<O> {
    inner: Mutex<(VecDeque<Command<O>>, bool)>,
}

impl<O> Default for LocalMailbox<O> {
    fn default() -> Self {
        Self {
            inner: Mutex::new((VecDeque::new(), false)),
        }
    }
}

impl<O> LocalMailbox<O> {
    /// Takes every queued command, oldest first.
    pub fn take(&self) -> Vec<Command<O>> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.drain(..).collect()
    }

    /// Refuses further commands (the connection is gone).
    pub fn close(&self) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1 = true;
        guard.0.clear();
    }
}

impl<O: Send + 'static> Mailbox<O> for LocalMailbox<O> {
    fn deliver(&self, _id: ConnId, cmd: Command<O>) -> Result<(), MailboxClosed> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.1 {
            return Err(MailboxClosed);
        }
        guard.0.push_back(cmd);
        Ok(())
    }
}
