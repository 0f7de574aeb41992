//! The task that drives one connection: a hand-written future over the socket's readiness,
//! the connection's mailbox, its deadline and the server's stop signal, all fed into one
//! [`Connection`].
//!
//! Why not an `async fn` racing futures with `or`: that future holds every branch's future
//! (readable, writable, a channel receive, two stop signals, a `Timer`) at once, which made
//! a task about 2.1 KiB and its channel another 0.8 KiB. Here an idle connection's task is
//! the [`Connection`], the socket, two `Arc`s and a byte of flags, plus its
//! [`TaskMailbox`]; a `Timer` is boxed only once the connection has a deadline. Readiness
//! is polled directly (`poll_readable`, `poll_writable`), and a short read is taken to mean
//! the socket is empty: the task waits for readiness instead of spending a read to see
//! `WouldBlock` (the socket is registered edge-triggered, so data that arrives after the
//! read is reported as a new event).

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
use smol::Timer;

use crate::net::ConnSocket;
use crate::serve::Shared;
use crate::stats::Snapshot;

/// A connection's mailbox: commands from its [`ConnHandle`](gale_core::ConnHandle)s and the
/// server's stop signal, and the waker of the connection's task.
///
/// Unbounded is safe because the task applies every command at once and a send beyond the
/// connection's send-buffer limit closes it ([`CloseReason::SendBufferFull`]). The command
/// vector allocates only while commands wait.
pub(crate) struct TaskMailbox<O> {
    id: ConnId,
    commands: Mutex<Vec<Command<O>>>,
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
        commands.push(cmd);
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
            commands: Mutex::new(Vec::new()),
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
        std::mem::take(&mut *self.lock())
    }

    /// Refuses further commands and drops the queued ones (the task is gone).
    fn close(&self) {
        let mut commands = self.lock();
        self.signal.fetch_or(CLOSED, Ordering::Relaxed);
        *commands = Vec::new();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Command<O>>> {
        // Every critical section is a push or a take: a panic cannot leave it half-done.
        self.commands.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
    conn: Connection<H>,
    stream: S,
    mailbox: Arc<TaskMailbox<Outgoing<H>>>,
    shared: Arc<Shared<H>>,
    /// Allocated when the connection first has a deadline.
    timer: Option<Box<Deadline>>,
    /// [`STARTED`], [`ARMED`], [`DRAINING`], [`FORCED`], [`READABLE`], [`WRITE_BLOCKED`].
    flags: u8,
}

/// A timer and the instant it is set for.
struct Deadline {
    timer: Timer,
    at: Instant,
}

/// `timer` runs until a deadline the connection asked for.
const ARMED: u8 = 1;
/// [`DRAIN`] was applied.
const DRAINING: u8 = 1 << 1;
/// [`FORCE`] was applied.
const FORCED: u8 = 1 << 2;
/// `handle_connect` was called (on the first poll, on the task's own thread).
const STARTED: u8 = 1 << 3;
/// The socket may have bytes: read without asking the poller first.
const READABLE: u8 = 1 << 4;
/// A write would have blocked: wait for writability before writing again.
const WRITE_BLOCKED: u8 = 1 << 5;

// Nothing in a `ConnTask` is pinned structurally (the `Timer` is `Unpin`), so it can move
// freely whatever the handler's types are.
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
            conn,
            stream,
            mailbox,
            shared,
            timer: None,
            // A new socket may already hold the client's first bytes.
            flags: READABLE,
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
            match &mut self.timer {
                Some(d) if armed && d.at <= at => {}
                Some(d) => {
                    d.timer.set_at(at);
                    d.at = at;
                }
                None => {
                    self.timer = Some(Box::new(Deadline {
                        timer: Timer::at(at),
                        at,
                    }));
                }
            }
            self.flags |= ARMED;
        }
        match &mut self.timer {
            Some(d) if self.flags & ARMED != 0 => {
                let fired = Pin::new(&mut d.timer).poll(cx);
                if fired.is_ready() {
                    self.flags &= !ARMED;
                }
                fired.map(|_| ())
            }
            _ => Poll::Pending,
        }
    }

    /// One read, into this thread's shared read buffer or, while the connection holds the
    /// start of a frame, its own; `Pending` once the socket has nothing (readability is then
    /// registered with `cx`).
    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        if self.flags & READABLE == 0 {
            match self.stream.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.conn.handle_io_error(now, e.kind());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => self.flags |= READABLE,
            }
        }
        let Self {
            conn,
            stream,
            flags,
            ..
        } = self;
        let read = if conn.read_buffer_len() > 0 {
            // The start of a frame is buffered: read the rest straight into the
            // connection's own buffer, which is sized for the frame.
            let window = conn.read_buf();
            let len = window.len();
            stream.try_read(window).map(|n| {
                if n > 0 {
                    conn.handle_read(now, n);
                }
                (n, len)
            })
        } else {
            // Into this thread's shared buffer; the bytes are handed over without a copy.
            let read = READ_POOL.with_borrow_mut(|pool| {
                let window = pool.window();
                let len = window.len();
                stream.try_read(window).map(|n| (pool.split(n), len))
            });
            read.map(|(data, len)| {
                let n = data.len();
                if n > 0 {
                    conn.handle_bytes(now, data);
                }
                (n, len)
            })
        };
        match read {
            Ok((0, _)) => {
                *flags &= !READABLE;
                conn.handle_eof(now);
            }
            Ok((n, len)) => {
                // A short read emptied the socket: wait for the poller before reading again.
                if n < len {
                    *flags &= !READABLE;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *flags &= !READABLE,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                *flags &= !READABLE;
                conn.handle_io_error(now, e.kind());
            }
        }
        Poll::Ready(())
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
            if self.flags & WRITE_BLOCKED != 0 {
                match self.stream.poll_writable(cx) {
                    Poll::Pending => return None,
                    Poll::Ready(Err(e)) => {
                        self.conn.handle_io_error(now, e.kind());
                        continue;
                    }
                    Poll::Ready(Ok(())) => self.flags &= !WRITE_BLOCKED,
                }
            }
            let written = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = self.conn.poll_transmit(&mut iov);
                self.stream.try_send(&iov[..n])
            };
            match written {
                Ok(0) => self.conn.handle_io_error(now, io::ErrorKind::WriteZero),
                Ok(n) => self.conn.handle_written(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flags |= WRITE_BLOCKED;
                    self.conn.handle_write_blocked();
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
                tracing::debug!(
                    id = %this.mailbox.id(),
                    peer = %this.conn.peer_addr(),
                    %reason,
                    "connection closed"
                );
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<H: Handler, S> Drop for ConnTask<H, S> {
    /// Takes the connection off the server's books however the task ends (closed, panicked,
    /// or dropped with the executor).
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
