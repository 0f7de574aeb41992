//! The connection state machine: [`Connection`].

mod config;
mod inner;
#[cfg(test)]
mod tests;

pub use self::config::ConnConfig;
pub use self::inner::ConnStats;
pub(crate) use self::inner::Core;

use core::net::SocketAddr;
use std::fmt;
use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use self::inner::{Cold, Phase, WriteSide};
use crate::handler::{Command, ConnHandle, ConnId, Context, Handler, SendError};
use crate::protocol::{CloseReason, Protocol, ProtocolCx};

/// The message type a handler sends: its protocol's `Outgoing`.
pub type Outgoing<H> = <<H as Handler>::Protocol as Protocol>::Outgoing;

/// One connection's protocol engine, fed with bytes, EOF and time by a driver.
///
/// A `Connection` never touches a socket or a clock. A driver (or your own event loop) does:
///
/// | input | call |
/// |---|---|
/// | the connection was accepted | [`handle_connect`](Self::handle_connect) |
/// | the socket is readable | [`read_buf`](Self::read_buf), read into it, then [`handle_read`](Self::handle_read) (or [`handle_input`](Self::handle_input) with a slice) |
/// | a read returned 0 (peer's FIN) | [`handle_eof`](Self::handle_eof) |
/// | a write accepted `n` bytes | [`handle_written`](Self::handle_written) |
/// | a read or write failed | [`handle_io_error`](Self::handle_io_error) |
/// | the deadline from [`poll_timeout`](Self::poll_timeout) passed | [`handle_timeout`](Self::handle_timeout) |
/// | a [`Command`] arrived from a [`ConnHandle`] | [`handle_command`](Self::handle_command) |
///
/// # The drain rule
///
/// After **every** input, before the next one, the driver drains the outputs in this order:
///
/// 1. [`poll_event`](Self::poll_event) until `None`: [`Event::ShutdownWrite`] means "shut
///    down the socket's write side now"; [`Event::Closed`] means "close the socket and drop
///    this connection" (it is always the last event);
/// 2. [`poll_transmit`](Self::poll_transmit): write the returned slices (vectored), report
///    what the socket took with [`handle_written`](Self::handle_written), and repeat until
///    the socket would block or nothing is left — `handle_written` is itself an input, so
///    drain events again after it;
/// 3. [`poll_timeout`](Self::poll_timeout): the next deadline; sleep no longer than that.
///    Calling [`handle_timeout`](Self::handle_timeout) early or twice is harmless.
///
/// Then derive socket interest from the state: read while [`wants_read`](Self::wants_read)
/// (false under backpressure, while closing, after EOF), wait for writability while
/// [`wants_write`](Self::wants_write).
///
/// # Backpressure
///
/// When queued bytes exceed the high watermark the connection stops decoding buffered input
/// and `wants_read()` turns false, so a peer that does not read cannot make it buffer more
/// than the high watermark plus one message's reply. Once writes bring the queue to the low
/// watermark, [`Handler::on_writable`] fires and reading resumes.
///
/// # Example: one connection driven entirely in memory
///
/// ```
/// use std::io::IoSlice;
/// use std::sync::Arc;
/// # #[allow(clippy::disallowed_methods)]
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use gale_core::{codec::Lines, ConnConfig, Connection, Context, Event, Handler, PeerAddr};
///
/// struct Shout;
/// impl Handler for Shout {
///     type Protocol = Lines;
///     type State = ();
///     fn protocol(&self) -> Lines {
///         Lines::new()
///     }
///     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
///         let _ = cx.send(Bytes::from(line.to_ascii_uppercase()));
///     }
/// }
///
/// let mut now = Instant::now(); // a driver's clock; tests advance it by hand
/// let mut config = ConnConfig::default();
/// config.set_idle_timeout(Some(Duration::from_secs(30)));
/// let mut conn = Connection::new(Arc::new(Shout), config, PeerAddr::Unknown, now);
/// conn.handle_connect(now);
///
/// // The socket is readable: read into core's buffer.
/// let input = b"hello\nwor";
/// let buf = conn.read_buf();
/// buf[..input.len()].copy_from_slice(input);
/// conn.handle_read(now, input.len());
///
/// // Drain: events, then bytes to write, then the deadline.
/// assert!(conn.poll_event().is_none());
/// let mut out = Vec::new();
/// let mut iov = [IoSlice::new(&[]); 16];
/// let n = conn.poll_transmit(&mut iov);
/// let written: usize = iov[..n].iter().map(|s| s.len()).sum();
/// for s in &iov[..n] {
///     out.extend_from_slice(s);
/// }
/// conn.handle_written(now, written); // the "socket" took everything
/// assert_eq!(out, b"HELLO\n");
/// assert_eq!(conn.poll_timeout(), Some(now + Duration::from_secs(30)));
///
/// // 30 idle seconds later the connection closes itself.
/// now += Duration::from_secs(30);
/// conn.handle_timeout(now);
/// assert!(matches!(conn.poll_event(), Some(Event::Closed(_))));
/// assert!(conn.is_closed());
/// ```
pub struct Connection<H: Handler> {
    handler: Arc<H>,
    protocol: H::Protocol,
    core: Core<H::State, Outgoing<H>>,
}

/// What a driver must act on; see the drain rule on [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Everything queued before [`Context::shutdown_write`] was written: shut down the
    /// socket's write side (send FIN) and keep reading.
    ShutdownWrite,
    /// The connection is over: close the socket and drop the `Connection`. Always last.
    Closed(CloseReason),
}

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix domain socket peer, with its path when it has one.
    Unix(Option<PathBuf>),
    /// Not known (in-memory connections, tests).
    Unknown,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            Self::Unix(None) => f.write_str("unix:(unnamed)"),
            Self::Unknown => f.write_str("(unknown)"),
        }
    }
}

impl<H: Handler> Connection<H> {
    /// A new connection to `peer`, with a protocol from [`Handler::protocol`] and default
    /// state. Nothing runs until [`handle_connect`](Self::handle_connect).
    ///
    /// `config` is a [`ConnConfig`] or an `Arc<ConnConfig>`; drivers share one `Arc` among
    /// all their connections, so that each connection holds a pointer, not a copy.
    ///
    /// The connection keeps no clock of its own: every input brings its `now`, and deadlines
    /// start counting at [`handle_connect`](Self::handle_connect). `_now` (the time of the
    /// accept) is not needed today and is kept for API stability.
    pub fn new(
        handler: Arc<H>,
        config: impl Into<Arc<ConnConfig>>,
        peer: PeerAddr,
        _now: Instant,
    ) -> Self {
        let protocol = handler.protocol();
        Self {
            handler,
            protocol,
            core: Core::new(H::State::default(), config.into(), peer),
        }
    }

    /// Gives the connection the handle that [`Context::handle`] hands out. Drivers call this
    /// before [`handle_connect`](Self::handle_connect).
    pub fn set_handle(&mut self, handle: ConnHandle<Outgoing<H>>) {
        self.core.handle = Some(handle);
    }

    /// Starts the connection: arms the idle timer, calls
    /// [`Protocol::handle_connect`] (a WebSocket handshake timeout starts here), then
    /// [`Handler::on_connect`]. Other inputs call it first if the driver did not.
    pub fn handle_connect(&mut self, now: Instant) {
        if self.core.phase != Phase::New {
            return;
        }
        self.core.phase = Phase::Open;
        self.core.activity(now);
        let mut close = false;
        self.protocol.handle_connect(
            &mut ProtocolCx::new(now, &mut self.core.send, &mut close),
            now,
        );
        if close {
            self.core.request_close(CloseReason::Local);
        }
        self.handler.on_connect(&mut Context {
            core: &mut self.core,
            protocol: &mut self.protocol,
            now,
        });
        self.settle(now);
    }

    /// A window of the receive buffer to read into; follow with
    /// [`handle_read`](Self::handle_read). Sized for the frame in progress when the protocol
    /// knows it. If the read fails or would block, just don't call `handle_read`: the unused
    /// window is discarded by the next call on the connection.
    ///
    /// The window is zero-filled first (gale-core has no `unsafe`); drivers that read into a
    /// scratch buffer of their own and call [`handle_input`](Self::handle_input) skip that
    /// cost.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let hint = self
            .protocol
            .frame_size_hint(self.core.recv.bytes_mut())
            .map(|h| h.min(self.core.config.max_recv_buffer()));
        self.core.recv.read_buf(hint)
    }

    /// `n` bytes were read into the window from [`read_buf`](Self::read_buf). A read of 0
    /// bytes from a socket is EOF: call [`handle_eof`](Self::handle_eof) instead.
    pub fn handle_read(&mut self, now: Instant, n: usize) {
        self.begin_input(now);
        self.core.recv.handle_read(n);
        self.after_read(now, n);
    }

    /// Bytes arrived in a slice of the caller's; only those bytes are copied into the
    /// receive buffer.
    ///
    /// This is the fastest path for drivers that read into one scratch buffer per thread
    /// (gale's drivers do): [`read_buf`](Self::read_buf) must zero its window first, because
    /// gale-core has no `unsafe`, while this copies just what arrived.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.begin_input(now);
        if self.core.phase == Phase::Open && !self.core.eof {
            let hint = self.protocol.frame_size_hint(self.core.recv.bytes_mut());
            self.core.recv.append(hint, data);
            self.after_read(now, data.len());
        }
    }

    /// Bytes arrived in a buffer the connection may keep: the fastest path, for drivers that
    /// read into large shared buffers and split each read off them
    /// ([`BytesMut::split_to`]).
    ///
    /// When nothing is buffered (the common case), the bytes are decoded where they are:
    /// messages split off them share `data`'s allocation, with no copy and no allocation
    /// per message. Whatever is left after decoding (the start of a frame) is copied into
    /// the connection's own buffer, so a waiting connection holds none of the caller's
    /// memory. When bytes are already buffered, `data` is appended to them.
    ///
    /// Messages a handler keeps keep the whole allocation `data` was split from alive; see
    /// the driver's documentation for its read buffer size.
    pub fn handle_bytes(&mut self, now: Instant, data: BytesMut) {
        self.begin_input(now);
        if self.core.phase == Phase::Open && !self.core.eof {
            let n = data.len();
            let hint = self.frame_hint();
            let adopted = self.core.recv.adopt(hint, data);
            self.after_read(now, n);
            if adopted {
                let hint = self.frame_hint();
                self.core.recv.unshare(hint);
            }
        }
    }

    /// The size of the frame in progress, as far as the protocol knows it, capped by the
    /// receive buffer limit.
    fn frame_hint(&mut self) -> Option<usize> {
        self.protocol
            .frame_size_hint(self.core.recv.bytes_mut())
            .map(|h| h.min(self.core.config.max_recv_buffer()))
    }

    /// The peer finished sending (a read returned 0). Buffered input is decoded, replies are
    /// flushed, then the connection closes with [`CloseReason::PeerClosed`]. Replies the
    /// protocol still owes ([`Protocol::is_idle`] is false: an answer a worker thread will
    /// send through a [`ConnHandle`]) are waited for first, within the protocol's own
    /// deadline.
    pub fn handle_eof(&mut self, now: Instant) {
        self.begin_input(now);
        self.core.eof = true;
        self.settle(now);
    }

    /// A socket operation failed with `kind` (reset, broken pipe, …): the connection closes
    /// at once, dropping what is queued.
    pub fn handle_io_error(&mut self, now: Instant, kind: std::io::ErrorKind) {
        self.begin_input(now);
        self.finish(now, CloseReason::Io(kind));
    }

    /// Ends the connection at once with `reason`, dropping what is queued; `on_close` runs
    /// as usual. For drivers giving up on a connection, for example when a graceful stop's
    /// deadline passes ([`CloseReason::Shutdown`]).
    pub fn handle_abort(&mut self, now: Instant, reason: CloseReason) {
        self.begin_input(now);
        self.finish(now, reason);
    }

    /// The socket accepted `n` bytes of what [`poll_transmit`](Self::poll_transmit) offered.
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        self.begin_input(now);
        self.core.send.advance(n);
        if n > 0 {
            self.core.stats.bytes_written += n as u64;
            self.core.activity(now);
        }
        if self.core.above_high && self.core.send.len() <= self.core.config.low_watermark() {
            self.core.above_high = false;
            self.core.writable_pending = true;
        }
        self.settle(now);
    }

    /// A write would block with bytes still queued (the socket's buffer is full): the peer
    /// is falling behind. Call it on every `WouldBlock` (or short write) that leaves
    /// [`write_buffer_len`](Self::write_buffer_len) non-zero; repeated calls are cheap.
    ///
    /// Replies are often slices of a shared read buffer (an echo is a slice of the
    /// [`ReadPool`](crate::buf::ReadPool) chunk its request was read into) and keep that
    /// whole buffer alive while they wait. From this call until the queue drains, queued
    /// chunks of up to [`DETACH_UP_TO`](crate::buf::DETACH_UP_TO) bytes are copied into
    /// buffers of their own ([`SendQueue::detach`](crate::buf::SendQueue::detach)), so a
    /// peer that stops reading holds what was queued for it (bounded by the high watermark)
    /// and not the read buffers its replies came from. Replies written at once are never
    /// copied.
    pub fn handle_write_blocked(&mut self) {
        self.core.send.detach();
    }

    /// Time passed: fires every deadline at or before `now` (idle timeout, close linger, user
    /// timers, the protocol's timers). Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.begin_input(now);
        let due = self.core.deadline.is_some_and(|t| t <= now);
        if due && self.core.phase == Phase::Closing {
            // The close linger passed: give up flushing.
            let reason = self.core.take_reason();
            self.finish(now, reason);
            return;
        }
        if due && self.core.phase == Phase::Open {
            self.core.deadline = None;
            self.core.request_close(CloseReason::IdleTimeout);
        }
        while let Some(timer) = self.core.pop_due_user_timer(now) {
            if !self.core.is_open() {
                break;
            }
            self.handler.on_timer(
                &mut Context {
                    core: &mut self.core,
                    protocol: &mut self.protocol,
                    now,
                },
                timer,
            );
        }
        if self.protocol.poll_timeout().is_some_and(|t| t <= now) {
            let mut close = false;
            let result = self.protocol.handle_timeout(
                &mut ProtocolCx::new(now, &mut self.core.send, &mut close),
                now,
            );
            if let Err(e) = result {
                self.core.request_close(CloseReason::Protocol(e));
            } else if close {
                self.core.request_close(CloseReason::Local);
            }
            self.core.check_high_watermark();
        }
        self.settle(now);
    }

    /// Applies a command from a [`ConnHandle`] (or from the driver itself, for example a
    /// broadcast on the owning thread). A send that finds the send buffer full closes the
    /// connection at once, dropping what is queued, with [`CloseReason::SendBufferFull`];
    /// commands for a closing connection are dropped.
    pub fn handle_command(&mut self, now: Instant, cmd: Command<Outgoing<H>>) {
        self.begin_input(now);
        match cmd {
            Command::Send(msg) => match self.core.send_message(now, &mut self.protocol, msg) {
                Ok(()) | Err(SendError::Closed) => {}
                // The peer is not reading: flushing would only wait for the linger timeout.
                Err(SendError::BufferFull { .. }) => {
                    self.finish(now, CloseReason::SendBufferFull);
                }
                Err(SendError::Encode(e)) => self.core.request_close(CloseReason::Protocol(e)),
            },
            Command::Close => self.core.request_close(CloseReason::Local),
            Command::ShutdownWrite => self.core.request_shutdown_write(),
        }
        self.settle(now);
    }

    /// Closes the connection because the server is stopping: queued bytes are flushed
    /// (within the close linger), then [`CloseReason::Shutdown`].
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.begin_input(now);
        self.core.request_close(CloseReason::Shutdown);
        self.settle(now);
    }

    /// The next thing the driver must act on. See the drain rule.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.core.shutdown_event {
            self.core.shutdown_event = false;
            return Some(Event::ShutdownWrite);
        }
        if self.core.closed_event {
            self.core.closed_event = false;
            return Some(Event::Closed(self.core.take_reason()));
        }
        None
    }

    /// Fills `dst` with the bytes to write next, as slices for a vectored write, and returns
    /// how many slices it filled (0: nothing to write). Report what the socket took with
    /// [`handle_written`](Self::handle_written).
    #[must_use]
    pub fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        if !self.wants_write() {
            return 0;
        }
        self.core.send.io_slices(dst)
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.core.phase == Phase::Closed {
            return None;
        }
        let proto = self.protocol.poll_timeout();
        [self.core.next_deadline(), proto]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the driver should read from the socket now.
    pub fn wants_read(&self) -> bool {
        self.core.phase == Phase::Open
            && !self.core.has_reason()
            && !self.core.eof
            && !self.core.above_high
            && self.core.recv.len() < self.core.config.max_recv_buffer()
    }

    /// Whether there are bytes to write (the driver waits for writability while true).
    pub fn wants_write(&self) -> bool {
        self.core.phase != Phase::Closed
            && self.core.write != WriteSide::Shutdown
            && !self.core.send.is_empty()
    }

    /// False while queued bytes are above the watermark (see [`Context::is_writable`]).
    pub fn is_writable(&self) -> bool {
        !self.core.above_high && self.core.can_send()
    }

    /// Whether the connection is over ([`Event::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.core.phase == Phase::Closed
    }

    /// Bytes received and not yet consumed by a message.
    pub fn read_buffer_len(&self) -> usize {
        self.core.recv.len()
    }

    /// Bytes queued and not yet written.
    pub fn write_buffer_len(&self) -> usize {
        self.core.send.len()
    }

    /// Heap bytes held by the receive buffer (for memory accounting).
    pub fn recv_capacity(&self) -> usize {
        self.core.recv.capacity()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.core.peer
    }

    /// The id of the handle given with [`set_handle`](Self::set_handle), if any.
    pub fn id(&self) -> Option<ConnId> {
        self.core.handle.as_ref().map(ConnHandle::id)
    }

    /// The connection's typed state.
    pub fn state(&mut self) -> &mut H::State {
        &mut self.core.state
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnStats {
        self.core.stats
    }

    /// The connection's configuration.
    pub fn config(&self) -> &ConnConfig {
        &self.core.config
    }

    fn begin_input(&mut self, now: Instant) {
        if self.core.phase == Phase::New {
            self.handle_connect(now);
        }
    }

    fn after_read(&mut self, now: Instant, n: usize) {
        if n > 0 {
            self.core.stats.bytes_read += n as u64;
            self.core.activity(now);
        }
        self.decode_input(now);
        self.settle(now);
    }

    /// Decodes and delivers buffered messages while the connection is open and not under
    /// backpressure.
    fn decode_input(&mut self, now: Instant) {
        while self.core.phase == Phase::Open && !self.core.has_reason() && !self.core.above_high {
            let core = &mut self.core;
            let mut close = false;
            let mut cx = ProtocolCx::new(now, &mut core.send, &mut close);
            let src = core.recv.bytes_mut();
            let decoded = if core.eof {
                self.protocol.decode_eof(&mut cx, src)
            } else {
                self.protocol.decode(&mut cx, src)
            };
            if close {
                core.request_close(CloseReason::Local);
            }
            core.check_high_watermark();
            match decoded {
                Ok(Some(msg)) => {
                    core.stats.messages_in += 1;
                    self.handler.on_message(
                        &mut Context {
                            core: &mut self.core,
                            protocol: &mut self.protocol,
                            now,
                        },
                        msg,
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    core.request_close(CloseReason::Protocol(e));
                    break;
                }
            }
        }
        self.core.recv.release();
        if self.core.recv.len() >= self.core.config.max_recv_buffer() {
            self.core.request_close(CloseReason::RecvBufferFull);
        }
    }

    /// Applies what callbacks requested and advances the close / shutdown state until
    /// nothing changes.
    fn settle(&mut self, now: Instant) {
        loop {
            if self.core.close_pending() {
                self.begin_close(now);
            }
            if self.core.writable_pending && self.core.phase == Phase::Open {
                self.core.writable_pending = false;
                self.handler.on_writable(&mut Context {
                    core: &mut self.core,
                    protocol: &mut self.protocol,
                    now,
                });
                self.decode_input(now);
                continue;
            }
            if self.core.eof
                && self.core.phase == Phase::Open
                && !self.core.has_reason()
                && !self.core.above_high
            {
                self.decode_input(now);
                if self.core.has_reason() {
                    continue;
                }
                // Replies the protocol still owes keep the connection open (every input
                // comes back here); the protocol bounds the wait with a deadline of its own.
                if !self.core.above_high && self.protocol.is_idle() {
                    self.core.request_close(CloseReason::PeerClosed);
                    continue;
                }
            }
            if self.core.write == WriteSide::ShutdownRequested
                && self.core.send.is_empty()
                && self.core.phase != Phase::Closed
            {
                self.core.write = WriteSide::Shutdown;
                self.core.shutdown_event = true;
            }
            if self.core.phase == Phase::Closing
                && (self.core.send.is_empty() || self.core.write == WriteSide::Shutdown)
            {
                let reason = self.core.take_reason();
                self.finish(now, reason);
            }
            if !self.core.close_pending() {
                break;
            }
        }
    }

    /// Applies the close a callback requested (`close_pending`): the protocol may queue a
    /// goodbye, then queued bytes are flushed within the close linger.
    fn begin_close(&mut self, now: Instant) {
        let core = &mut self.core;
        let Some(reason) = core.cold.as_ref().and_then(|c| c.reason.as_ref()) else {
            return;
        };
        let mut close = false;
        self.protocol.handle_close(
            &mut ProtocolCx::new(now, &mut core.send, &mut close),
            reason,
        );
        core.deadline = Some(now + core.config.close_linger());
        core.phase = Phase::Closing;
    }

    fn finish(&mut self, now: Instant, reason: CloseReason) {
        if self.core.phase == Phase::Closed {
            return;
        }
        let connected = self.core.phase != Phase::New;
        self.core.phase = Phase::Closed;
        self.core.cold = None;
        self.core.send.clear();
        self.core.deadline = None;
        if connected {
            self.handler.on_close(
                &mut Context {
                    core: &mut self.core,
                    protocol: &mut self.protocol,
                    now,
                },
                &reason,
            );
        }
        self.core.recv = crate::buf::RecvBuf::new(self.core.config.read_chunk());
        self.core.cold = Some(Box::new(Cold {
            reason: Some(reason),
            user_timers: Vec::new(),
        }));
        self.core.closed_event = true;
    }
}

impl<H: Handler> fmt::Debug for Connection<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.core.peer)
            .field("phase", &self.core.phase)
            .field("read_buffer_len", &self.core.recv.len())
            .field("write_buffer_len", &self.core.send.len())
            .finish_non_exhaustive()
    }
}
