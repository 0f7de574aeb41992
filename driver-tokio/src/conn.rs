//! The task that drives one connection: a hand-written future over the socket's readiness,
//! the connection's mailbox, its deadline and the server's stop signal, all fed into one
//! [`Connection`].
//!
//! Why not an `async fn` with `select!`: that future holds every branch's future (readable,
//! writable, a channel receive, a watch, a `Sleep`) at once, which made a task about 2.3 KiB
//! and its channel another 1.8 KiB. Here an idle connection's task is the boxed
//! [`Connection`], the socket, two `Arc`s and a byte of flags (a 256-byte task cell), plus
//! its 56-byte [`TaskMailbox`]; a `Sleep` is boxed only once the connection has a deadline.
//! Readiness is polled directly (`poll_read`, `poll_write_ready`), which also lets tokio skip
//! the read that would only return `WouldBlock` after a short read.
//!
//! # Memory per connection
//!
//! tokio aligns a task cell and a socket's I/O registration to 128 bytes. glibc serves such
//! an allocation by carving its chunk plus 160 bytes from the heap and freeing the unaligned
//! ends, which only allocations of a fitting size reuse. So the sizes below were chosen by
//! measuring RSS at 10,000 idle connections (`bench/run.sh`), not by adding bytes:
//! - the [`Connection`] is boxed (224 bytes since the send queue holds a frame header
//!   inline; 216 before), so the task cell is 256 bytes, not 384: 128 bytes fewer carved
//!   per connection;
//! - the mailbox's command queue is boxed (the mailbox `Arc` is 72 bytes, an 80-byte chunk).
//!
//! Both chunks then fill the ends left by the two aligned allocations: about 930 bytes per
//! connection against 1,050 before (980 with the 224-byte connection, whose chunk no longer
//! fits exactly). Either change alone measured worse (boxing the connection
//! with the 96-byte mailbox chunk: 1,072). Check both numbers when changing these types.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use gale_core::buf::ReadPool;
use gale_core::{
    CloseReason, Command, ConnId, Connection, Event, Handler, Mailbox, MailboxClosed, Outgoing,
};
use tokio::io::ReadBuf;
use tokio::time::{Sleep, sleep_until};

use crate::net::ConnSocket;
use crate::serve::Shared;
use crate::stats::Snapshot;

/// A connection's mailbox: commands from its [`ConnHandle`](gale_core::ConnHandle)s and the
/// server's stop signal, and the waker of the connection's task.
///
/// Unbounded is safe because the task applies every command at once and a send beyond the
/// connection's send-buffer limit closes it ([`CloseReason::SendBufferFull`]). The queue
/// exists only while commands wait, boxed so that an idle mailbox is 56 bytes (see
/// [Memory per connection](self#memory-per-connection)).
pub(crate) struct TaskMailbox<O> {
    id: ConnId,
    commands: Mutex<Queue<O>>,
    /// [`COMMANDS`], [`DRAIN`], [`FORCE`], [`CLOSED`] (the last written under the lock).
    signal: AtomicU8,
    waker: AtomicWaker,
}

impl<O: Send + 'static> Mailbox<O> for TaskMailbox<O> {
    fn deliver(&self, _id: ConnId, cmd: Command<O>) -> Result<(), MailboxClosed> {
        let mut commands = self.lock();
        if self.signal.load(Ordering::Relaxed) & CLOSED != 0 {
            return Err(MailboxClosed);
        }
        commands.get_or_insert_default().push(cmd);
        drop(commands);
        self.signal.fetch_or(COMMANDS, Ordering::Release);
        self.waker.wake();
        Ok(())
    }
}

impl<O> TaskMailbox<O> {
    pub(crate) fn new(id: ConnId) -> Self {
        Self {
            id,
            commands: Mutex::new(None),
            signal: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        }
    }

    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Tells the task the server is stopping: [`DRAIN`] (flush, then close) or [`FORCE`]
    /// (close at once).
    pub(crate) fn stop(&self, how: u8) {
        self.signal.fetch_or(how, Ordering::Release);
        self.waker.wake();
    }

    /// The commands queued so far, in order.
    fn take(&self) -> Vec<Command<O>> {
        self.signal.fetch_and(!COMMANDS, Ordering::Acquire);
        self.lock()
            .take()
            .map_or_else(Vec::new, |commands| *commands)
    }

    /// Refuses further commands and drops the queued ones (the task is gone).
    fn close(&self) {
        let mut commands = self.lock();
        self.signal.fetch_or(CLOSED, Ordering::Relaxed);
        *commands = None;
    }

    fn lock(&self) -> MutexGuard<'_, Queue<O>> {
        // Every critical section is a push or a take: a panic cannot leave it half-done.
        self.commands.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A mailbox's waiting commands: a thin pointer, so the idle mailbox is 16 bytes smaller
/// than with an inline `Vec` (boxed on purpose, although a `Vec` is on the heap already).
type Queue<O> = Option<Box<Vec<Command<O>>>>;

/// Commands are queued.
const COMMANDS: u8 = 1;
/// The server is stopping: flush, then close with [`CloseReason::Shutdown`].
pub(crate) const DRAIN: u8 = 1 << 1;
/// The stop deadline passed: close at once.
pub(crate) const FORCE: u8 = 1 << 2;
/// The task is gone.
const CLOSED: u8 = 1 << 3;

/// One connection's task. Follows the drain rule of [`Connection`] after every input:
/// events, then writes until the socket would block, then the deadline.
pub(crate) struct ConnTask<H: Handler, S> {
    /// Boxed: see [Memory per connection](self#memory-per-connection).
    conn: Box<Connection<H>>,
    stream: S,
    mailbox: Arc<TaskMailbox<Outgoing<H>>>,
    shared: Arc<Shared<H>>,
    /// Allocated when the connection first has a deadline.
    sleep: Option<Pin<Box<Sleep>>>,
    /// [`STARTED`], [`ARMED`], [`DRAINING`], [`FORCED`].
    flags: u8,
}

/// `handle_connect` was called (on the first poll, on the task's own thread).
const STARTED: u8 = 1 << 3;
/// `sleep` runs until a deadline the connection asked for.
const ARMED: u8 = 1;
/// [`DRAIN`] was applied.
const DRAINING: u8 = 1 << 1;
/// [`FORCE`] was applied.
const FORCED: u8 = 1 << 2;

// Nothing in a `ConnTask` is pinned structurally (the `Sleep` is pinned in its own box), so
// it can move freely whatever the handler's types are.
impl<H: Handler, S> Unpin for ConnTask<H, S> {}

impl<H: Handler, S: ConnSocket> ConnTask<H, S> {
    /// A task for `conn` (which has its handle) over `stream`; the connection must already
    /// be in the server's directory (the task's drop removes it).
    pub(crate) fn new(
        conn: Connection<H>,
        stream: S,
        mailbox: Arc<TaskMailbox<Outgoing<H>>>,
        shared: Arc<Shared<H>>,
    ) -> Self {
        Self {
            conn: Box::new(conn),
            stream,
            mailbox,
            shared,
            sleep: None,
            flags: 0,
        }
    }

    /// Serves every input that is ready; `Ready(reason)` once the connection is over. `now`
    /// is read once per wake-up: the inputs of one wake-up are microseconds apart.
    fn run(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<CloseReason> {
        let mut reads = 0;
        loop {
            if let Some(reason) = self.drain(cx, now) {
                return Poll::Ready(reason);
            }
            let signal = self.mailbox.signal.load(Ordering::Acquire);
            if signal & COMMANDS != 0 {
                for cmd in self.mailbox.take() {
                    self.conn.handle_command(now, cmd);
                    if let Some(reason) = self.drain(cx, now) {
                        return Poll::Ready(reason);
                    }
                }
                continue;
            }
            if signal & FORCE != 0 && self.flags & FORCED == 0 {
                self.flags |= FORCED | DRAINING;
                self.conn.handle_abort(now, CloseReason::Shutdown);
                continue;
            }
            if signal & DRAIN != 0 && self.flags & DRAINING == 0 {
                self.flags |= DRAINING;
                self.conn.handle_shutdown(now);
                continue;
            }
            if self.poll_deadline(cx).is_ready() {
                // A fresh time: the timer may have fired after `now` was read, and a deadline
                // handled before it is due would be re-armed and fire again at once.
                self.conn.handle_timeout(Instant::now());
                continue;
            }
            if !self.conn.wants_read() {
                return Poll::Pending;
            }
            if reads == READS_PER_WAKE {
                // Let the other tasks run; come back at once.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match self.poll_read(cx, now) {
                Poll::Ready(()) => reads += 1,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Arms the timer for an earlier deadline (a later one is picked up when the armed one
    /// fires: `handle_timeout` is harmless early) and polls it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(at) = self.conn.poll_timeout() {
            let armed = self.flags & ARMED != 0;
            match &mut self.sleep {
                Some(sleep) if armed && sleep.deadline().into_std() <= at => {}
                Some(sleep) => sleep.as_mut().reset(at.into()),
                None => self.sleep = Some(Box::pin(sleep_until(at.into()))),
            }
            self.flags |= ARMED;
        }
        match &mut self.sleep {
            Some(sleep) if self.flags & ARMED != 0 => {
                let fired = sleep.as_mut().poll(cx);
                if fired.is_ready() {
                    self.flags &= !ARMED;
                }
                fired
            }
            _ => Poll::Pending,
        }
    }

    /// One read; `Pending` once the socket has nothing. Into this thread's shared read
    /// buffer, whose bytes are handed over without a copy, or, while the connection holds
    /// the start of a frame, straight into its own buffer (sized for the frame).
    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Self { conn, stream, .. } = self;
        let read = if conn.read_buffer_len() > 0 {
            let mut buf = ReadBuf::new(conn.read_buf());
            let read = stream.poll_read_into(cx, &mut buf);
            let n = buf.filled().len();
            read.map_ok(|()| {
                if n > 0 {
                    conn.handle_read(now, n);
                }
                n
            })
        } else {
            let read = READ_POOL.with_borrow_mut(|pool| {
                let mut buf = ReadBuf::new(pool.window());
                let read = stream.poll_read_into(cx, &mut buf);
                let n = buf.filled().len();
                read.map_ok(|()| pool.split(n))
            });
            read.map_ok(|data| {
                let n = data.len();
                if n > 0 {
                    conn.handle_bytes(now, data);
                }
                n
            })
        };
        match read {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => {
                conn.handle_eof(now);
                Poll::Ready(())
            }
            Poll::Ready(Ok(_)) => Poll::Ready(()),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(()),
            Poll::Ready(Err(e)) => {
                conn.handle_io_error(now, e.kind());
                Poll::Ready(())
            }
        }
    }

    /// Steps 1 and 2 of the drain rule: events, then writes until the socket would block
    /// (its writability is then registered with `cx`) or nothing is left. Returns the close
    /// reason once the connection is over.
    fn drain(&mut self, cx: &mut Context<'_>, now: Instant) -> Option<CloseReason> {
        loop {
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::ShutdownWrite => {
                        if let Err(e) = self.stream.shutdown_write() {
                            self.conn.handle_io_error(now, e.kind());
                        }
                    }
                    Event::Closed(reason) => return Some(reason),
                    _ => {}
                }
            }
            if !self.conn.wants_write() {
                return None;
            }
            let written = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = self.conn.poll_transmit(&mut iov);
                self.stream.try_send(&iov[..n])
            };
            match written {
                Ok(0) => self.conn.handle_io_error(now, io::ErrorKind::WriteZero),
                Ok(n) => self.conn.handle_written(now, n),
                // Not writable (as far as tokio knows, or the socket said so, which cleared
                // the readiness): register `cx`, or go on if it became writable meanwhile.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.conn.handle_write_blocked();
                    match self.stream.poll_write_ready(cx) {
                        Poll::Pending => return None,
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => self.conn.handle_io_error(now, e.kind()),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.conn.handle_io_error(now, e.kind()),
            }
        }
    }
}

impl<H: Handler, S: ConnSocket> Future for ConnTask<H, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Registered before looking at the mailbox: no wake-up is lost in between.
        this.mailbox.waker.register(cx.waker());
        let before = Snapshot::of(&this.conn);
        let now = Instant::now();
        if this.flags & STARTED == 0 {
            this.flags |= STARTED;
            this.conn.handle_connect(now);
        }
        let result = this.run(cx, now);
        this.shared.metrics.observe(&before, &this.conn);
        match result {
            Poll::Ready(reason) => {
                tracing::debug!(id = %this.mailbox.id(), peer = %this.conn.peer_addr(), %reason, "connection closed");
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<H: Handler, S> Drop for ConnTask<H, S> {
    /// Takes the connection off the server's books however the task ends (closed, panicked,
    /// or dropped with the runtime).
    fn drop(&mut self) {
        self.mailbox.close();
        self.shared.metrics.closed(&self.conn);
        self.shared.forget(self.mailbox.id());
    }
}

/// Reads per wake-up before other tasks get a turn (quinn's `IO_LOOP_BOUND`).
const READS_PER_WAKE: usize = 32;
/// Slices per vectored write.
const MAX_IOV: usize = 32;

thread_local! {
    /// One read buffer per thread, shared by every connection that thread drives (64 KiB
    /// chunks): an idle connection owns no receive memory, and received messages cost no
    /// copy and no allocation.
    static READ_POOL: std::cell::RefCell<ReadPool> = std::cell::RefCell::new(ReadPool::default());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use gale_core::codec::Raw;
    use gale_core::{Context, Handler, Outgoing};
    use tokio::net::TcpStream;

    use super::{ConnTask, TaskMailbox};

    struct Echo;

    impl Handler for Echo {
        type Protocol = Raw;
        type State = ();
        fn protocol(&self) -> Raw {
            Raw::new()
        }
        fn on_message(&self, cx: &mut Context<'_, Self>, data: Bytes) {
            let _ = cx.send(data);
        }
    }

    /// The sizes the module docs' memory figures were measured with (64-bit).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn idle_connection_sizes() {
        // A task cell adds under 128 bytes to its future: 128 keeps the cell at 256.
        assert!(size_of::<ConnTask<Echo, TcpStream>>() <= 128);
        assert_eq!(size_of::<TaskMailbox<Outgoing<Echo>>>(), 56);
    }
}
