//! The task that drives one connection: socket readiness, the mailbox, the connection's
//! deadline and the server's stop signal, all fed into one [`Connection`].

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Instant;

use gale_core::{
    CloseReason, Command, ConnId, Connection, Event, Handler, Mailbox, MailboxClosed, Outgoing,
};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::net::Stream;
use crate::serve::{RunState, Shared};
use crate::stats::ConnMetrics;

/// A connection's mailbox: an unbounded channel to its task. Unbounded is safe because the
/// task applies every command at once and a send beyond the connection's send-buffer limit
/// closes it ([`CloseReason::SendBufferFull`]).
pub(crate) struct TaskMailbox<O>(pub(crate) mpsc::UnboundedSender<Command<O>>);

impl<O: Send + 'static> Mailbox<O> for TaskMailbox<O> {
    fn deliver(&self, _id: ConnId, cmd: Command<O>) -> Result<(), MailboxClosed> {
        self.0.send(cmd).map_err(|_| MailboxClosed)
    }
}

/// Removes the connection from the server's books when its task ends, however it ends
/// (closed, panicked, or dropped with the runtime).
pub(crate) struct Live<H: Handler> {
    pub(crate) shared: Arc<Shared<H>>,
    pub(crate) id: ConnId,
    pub(crate) metrics: ConnMetrics,
    /// Held, never used: the server waits for every clone to drop when it stops.
    pub(crate) _wait: mpsc::Sender<()>,
}

impl<H: Handler> Drop for Live<H> {
    fn drop(&mut self) {
        self.shared.registry.remove(self.id);
    }
}

/// Runs `conn` over `stream` until it closes. The drain rule of [`Connection`] is followed
/// after every input: events, then writes until the socket would block, then the deadline.
pub(crate) async fn drive<H: Handler>(
    mut conn: Connection<H>,
    stream: Stream,
    mut commands: mpsc::UnboundedReceiver<Command<Outgoing<H>>>,
    mut run_state: watch::Receiver<RunState>,
    mut live: Live<H>,
) {
    let mut io = Io {
        stream,
        write_blocked: false,
    };
    conn.handle_connect(Instant::now());
    let start = Instant::now();
    let sleep = sleep_until(start.into());
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    let mut forced = false;
    let mut mailbox_open = true;
    let reason = loop {
        let closed = io.drain(&mut conn);
        live.metrics.observe(&conn);
        if let Some(reason) = closed {
            break reason;
        }
        // Re-arm the one timer only when the deadline moved (quinn's `drive_timer`).
        let deadline = conn.poll_timeout();
        if deadline != armed {
            if let Some(at) = deadline {
                sleep.as_mut().reset(at.into());
            }
            armed = deadline;
        }
        tokio::select! {
            biased;
            cmd = commands.recv(), if mailbox_open => match cmd {
                Some(cmd) => conn.handle_command(Instant::now(), cmd),
                None => mailbox_open = false,
            },
            changed = run_state.changed(), if !forced => {
                let state = match changed {
                    Ok(()) => *run_state.borrow_and_update(),
                    Err(_) => RunState::Forced,
                };
                match state {
                    RunState::Running => {}
                    // Flush, then close with `CloseReason::Shutdown` (bounded by the linger).
                    RunState::Draining(_) => conn.handle_shutdown(Instant::now()),
                    // The stop deadline passed: close at once, dropping what is queued.
                    RunState::Forced | RunState::Stopped => {
                        forced = true;
                        conn.handle_abort(Instant::now(), CloseReason::Shutdown);
                    }
                }
            },
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                conn.handle_timeout(Instant::now());
            },
            ready = io.stream.writable(), if io.write_blocked => {
                io.write_blocked = false;
                if let Err(e) = ready {
                    conn.handle_io_error(Instant::now(), e.kind());
                }
            },
            ready = io.stream.readable(), if conn.wants_read() => match ready {
                Ok(()) => {
                    if let Some(reason) = io.read(&mut conn) {
                        live.metrics.observe(&conn);
                        break reason;
                    }
                }
                Err(e) => conn.handle_io_error(Instant::now(), e.kind()),
            },
        }
    };
    tracing::debug!(id = %live.id, peer = %conn.peer_addr(), %reason, "connection closed");
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
