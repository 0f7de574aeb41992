//! Per-loop metric accumulators, flushed to the `metrics` facade once per loop iteration.
//!
//! Byte and message counts come from each connection's [`ConnStats`]: the loop takes a
//! [`Snapshot`] before serving a connection and adds the difference afterwards, so the driver
//! counts nothing itself and keeps nothing per connection for it.

use gale_core::server::metric as name;
use gale_core::{ConnStats, Connection, Handler};
use metrics::{Counter, Gauge};

/// A connection's counters and buffered bytes at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Snapshot {
    stats: ConnStats,
    send: usize,
    recv: usize,
}

impl Snapshot {
    pub(crate) fn of<H: Handler>(conn: &Connection<H>) -> Self {
        Self {
            stats: conn.stats(),
            send: conn.write_buffer_len(),
            recv: conn.read_buffer_len(),
        }
    }
}

/// One loop's handles and the amounts not yet flushed to them.
pub(crate) struct LoopMetrics {
    handles: Handles,
    pending: Pending,
}

struct Handles {
    accepted: Counter,
    refused: Counter,
    closed: Counter,
    open: Gauge,
    bytes_read: Counter,
    bytes_written: Counter,
    messages_in: Counter,
    messages_out: Counter,
    send_buffered: Gauge,
    recv_buffered: Gauge,
}

#[derive(Default)]
struct Pending {
    accepted: u64,
    refused: u64,
    closed: u64,
    open: i64,
    bytes_read: u64,
    bytes_written: u64,
    messages_in: u64,
    messages_out: u64,
    send_buffered: i64,
    recv_buffered: i64,
}

impl LoopMetrics {
    /// Registers the handles with the recorder installed now (install it before `start`).
    pub(crate) fn new() -> Self {
        Self {
            handles: Handles {
                accepted: metrics::counter!(name::CONNECTIONS_ACCEPTED),
                refused: metrics::counter!(name::CONNECTIONS_REFUSED),
                closed: metrics::counter!(name::CONNECTIONS_CLOSED),
                open: metrics::gauge!(name::CONNECTIONS_OPEN),
                bytes_read: metrics::counter!(name::BYTES_READ),
                bytes_written: metrics::counter!(name::BYTES_WRITTEN),
                messages_in: metrics::counter!(name::MESSAGES_IN),
                messages_out: metrics::counter!(name::MESSAGES_OUT),
                send_buffered: metrics::gauge!(name::SEND_BUFFERED_BYTES),
                recv_buffered: metrics::gauge!(name::RECV_BUFFERED_BYTES),
            },
            pending: Pending::default(),
        }
    }

    pub(crate) fn accepted(&mut self) {
        self.pending.accepted += 1;
        self.pending.open += 1;
    }

    pub(crate) fn refused(&mut self) {
        self.pending.refused += 1;
    }

    pub(crate) fn closed(&mut self) {
        self.pending.closed += 1;
        self.pending.open -= 1;
    }

    /// Adds what `conn` did since `before` was taken.
    pub(crate) fn observe<H: Handler>(&mut self, before: &Snapshot, conn: &Connection<H>) {
        let now = Snapshot::of(conn);
        let p = &mut self.pending;
        p.bytes_read += now.stats.bytes_read - before.stats.bytes_read;
        p.bytes_written += now.stats.bytes_written - before.stats.bytes_written;
        p.messages_in += now.stats.messages_in - before.stats.messages_in;
        p.messages_out += now.stats.messages_out - before.stats.messages_out;
        p.send_buffered += delta(now.send, before.send);
        p.recv_buffered += delta(now.recv, before.recv);
    }

    /// Forgets a closed connection's buffered bytes (call after its last `observe`).
    pub(crate) fn forget<H: Handler>(&mut self, conn: &Connection<H>) {
        self.pending.send_buffered -= to_i64(conn.write_buffer_len());
        self.pending.recv_buffered -= to_i64(conn.read_buffer_len());
    }

    /// Hands the accumulated amounts to the recorder.
    pub(crate) fn flush(&mut self) {
        let p = std::mem::take(&mut self.pending);
        let h = &self.handles;
        for (counter, n) in [
            (&h.accepted, p.accepted),
            (&h.refused, p.refused),
            (&h.closed, p.closed),
            (&h.bytes_read, p.bytes_read),
            (&h.bytes_written, p.bytes_written),
            (&h.messages_in, p.messages_in),
            (&h.messages_out, p.messages_out),
        ] {
            if n > 0 {
                counter.increment(n);
            }
        }
        for (gauge, d) in [
            (&h.open, p.open),
            (&h.send_buffered, p.send_buffered),
            (&h.recv_buffered, p.recv_buffered),
        ] {
            if d != 0 {
                gauge.increment(d as f64);
            }
        }
    }
}

fn delta(now: usize, before: usize) -> i64 {
    to_i64(now) - to_i64(before)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
