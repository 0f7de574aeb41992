//! The task that drives one connection: socket readiness, the mailbox, the connection's
//! deadline and the server's stop signals, all fed into one [`Connection`].

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Instant;

use gale_core::{
    CloseReason, Command, ConnId, Connection, Event, Handler, Mailbox, MailboxClosed, Outgoing,
};
use smol::Timer;
use smol::channel::{Receiver, Sender};
use smol::future::{self, FutureExt as _};

use crate::net::Stream;
use crate::serve::Shared;
use crate::stats::ConnMetrics;

/// A connection's mailbox: an unbounded channel to its task. Unbounded is safe because the
/// task applies every command at once and a send beyond the connection's send-buffer limit
/// closes it ([`CloseReason::SendBufferFull`]).
pub(crate) struct TaskMailbox<O>(pub(crate) Sender<Command<O>>);

impl<O: Send + 'static> Mailbox<O> for TaskMailbox<O> {
    fn deliver(&self, _id: ConnId, cmd: Command<O>) -> Result<(), MailboxClosed> {
        self.0.try_send(cmd).map_err(|_| MailboxClosed)
    }
}

/// Removes the connection from the server's books when its task ends, however it ends
/// (closed, panicked, or dropped with the executor).
pub(crate) struct Live<H: Handler> {
    pub(crate) shared: Arc<Shared<H>>,
    pub(crate) id: ConnId,
    pub(crate) metrics: ConnMetrics,
    /// Held, never used: the server waits for every clone to drop when it stops.
    pub(crate) _wait: Sender<()>,
}

impl<H: Handler> Drop for Live<H> {
    fn drop(&mut self) {
        self.shared.registry.remove(self.id);
    }
}

/// What woke the connection task.
enum Wake<O> {
    Command(Option<Command<O>>),
    Draining,
    Forced,
    Timer,
    Writable(io::Result<()>),
    Readable(io::Result<()>),
}

/// Runs `conn` over `stream` until it closes. The drain rule of [`Connection`] is followed
/// after every input: events, then writes until the socket would block, then the deadline.
pub(crate) async fn drive<H: Handler>(
    mut conn: Connection<H>,
    stream: Stream,
    commands: Receiver<Command<Outgoing<H>>>,
    mut live: Live<H>,
) {
    let mut io = Io {
        stream,
        write_blocked: false,
    };
    let shared = Arc::clone(&live.shared);
    conn.handle_connect(Instant::now());
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    let (mut draining, mut forced, mut mailbox_open) = (false, false, true);
    let reason = loop {
        let closed = io.drain(&mut conn);
        live.metrics.observe(&conn);
        if let Some(reason) = closed {
            break reason;
        }
        // Re-arm the one timer only when the deadline moved (quinn's `drive_timer`).
        let deadline = conn.poll_timeout();
        if deadline != armed {
            match deadline {
                Some(at) => timer.set_at(at),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }
        let (wants_read, write_blocked) = (conn.wants_read(), io.write_blocked);
        // Biased to the first ready branch, in this order.
        let wake = async { Wake::Command(when(mailbox_open, commands.recv()).await.ok()) }
            .or(async {
                when(!draining, shared.draining.wait()).await;
                Wake::Draining
            })
            .or(async {
                when(!forced, shared.forced.wait()).await;
                Wake::Forced
            })
            .or(async {
                when(armed.is_some(), &mut timer).await;
                Wake::Timer
            })
            .or(async { Wake::Writable(when(write_blocked, io.stream.writable()).await) })
            .or(async { Wake::Readable(when(wants_read, io.stream.readable()).await) })
            .await;
        let now = Instant::now();
        match wake {
            Wake::Command(Some(cmd)) => conn.handle_command(now, cmd),
            // Cannot happen while the connection holds its own handle.
            Wake::Command(None) => mailbox_open = false,
            Wake::Draining => {
                draining = true;
                conn.handle_shutdown(now);
            }
            Wake::Forced => {
                (draining, forced) = (true, true);
                conn.handle_abort(now, CloseReason::Shutdown);
            }
            Wake::Timer => {
                armed = None;
                conn.handle_timeout(now);
            }
            Wake::Writable(ready) => {
                io.write_blocked = false;
                if let Err(e) = ready {
                    conn.handle_io_error(now, e.kind());
                }
            }
            Wake::Readable(Ok(())) => {
                if let Some(reason) = io.read(&mut conn) {
                    live.metrics.observe(&conn);
                    break reason;
                }
            }
            Wake::Readable(Err(e)) => conn.handle_io_error(now, e.kind()),
        }
    };
    tracing::debug!(id = %live.id, peer = %conn.peer_addr(), %reason, "connection closed");
}

/// `fut` when `enabled`, otherwise a future that never completes (a disabled branch).
async fn when<F: Future>(enabled: bool, fut: F) -> F::Output {
    if enabled {
        fut.await
    } else {
        future::pending().await
    }
}

struct Io {
    stream: Stream,
    /// The last write would have blocked: wait for writability before writing again.
    write_blocked: bool,
}

impl Io {
    /// Reads until the socket would block, the connection stops wanting input, or the
    /// per-wake-up bound; drains after every read.
    fn read<H: Handler>(&mut self, conn: &mut Connection<H>) -> Option<CloseReason> {
        for _ in 0..READS_PER_WAKE {
            if !conn.wants_read() {
                break;
            }
            // Read into this thread's scratch buffer and hand core only what arrived:
            // `read_buf` windows must be zero-filled first, this copies just `n` bytes.
            let read = SCRATCH.with_borrow_mut(|scratch| match self.stream.try_read(scratch) {
                Ok(n) if n > 0 => {
                    conn.handle_input(Instant::now(), &scratch[..n]);
                    Ok(n)
                }
                other => other,
            });
            match read {
                Ok(0) => conn.handle_eof(Instant::now()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => conn.handle_io_error(Instant::now(), e.kind()),
            }
            if let Some(reason) = self.drain(conn) {
                return Some(reason);
            }
        }
        None
    }

    /// Steps 1 and 2 of the drain rule: events, then vectored writes until the socket would
    /// block or nothing is left. Returns the close reason once the connection is over.
    fn drain<H: Handler>(&mut self, conn: &mut Connection<H>) -> Option<CloseReason> {
        loop {
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::ShutdownWrite => {
                        if let Err(e) = self.stream.shutdown_write() {
                            conn.handle_io_error(Instant::now(), e.kind());
                        }
                    }
                    Event::Closed(reason) => return Some(reason),
                    _ => {}
                }
            }
            if self.write_blocked {
                return None;
            }
            let written = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = conn.poll_transmit(&mut iov);
                if n == 0 {
                    return None;
                }
                self.stream.try_write_vectored(&iov[..n])
            };
            match written {
                Ok(0) => conn.handle_io_error(Instant::now(), io::ErrorKind::WriteZero),
                Ok(n) => conn.handle_written(Instant::now(), n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => conn.handle_io_error(Instant::now(), e.kind()),
            }
        }
    }
}

/// Reads per readiness wake-up before other branches get a turn (quinn's `IO_LOOP_BOUND`).
const READS_PER_WAKE: usize = 32;
/// Slices per vectored write.
const MAX_IOV: usize = 64;

thread_local! {
    /// One read buffer per thread, shared by every connection that thread drives: an idle
    /// connection owns no receive memory, and reads need no zero-filling.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

/// Size of the per-thread read buffer.
const SCRATCH_LEN: usize = 64 * 1024;
