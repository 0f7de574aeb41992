//! The server's metrics, under the names all gale drivers share
//! ([`gale_core::server::metric`]).
//!
//! One set of handles per server, registered when it is built (install a recorder first).
//! Byte and message counts come from each connection's [`ConnStats`]: a task takes a
//! [`Snapshot`] when it is polled and adds the difference afterwards, so the driver counts
//! nothing itself and keeps nothing per connection for it.

use gale_core::server::metric as name;
use gale_core::{ConnStats, Connection, Handler};
use metrics::{Counter, Gauge};

/// A connection's counters and buffered bytes at one moment.
#[derive(Debug, Clone, Copy)]
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

/// The server's metric handles.
pub(crate) struct Metrics {
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

impl Metrics {
    /// Registers the handles with the recorder installed now.
    pub(crate) fn new() -> Self {
        Self {
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
        }
    }

    /// A connection was admitted.
    pub(crate) fn accepted(&self) {
        self.accepted.increment(1);
        self.open.increment(1.0);
    }

    /// A connection was accepted and closed at once (`max_connections`).
    pub(crate) fn refused(&self) {
        self.refused.increment(1);
    }

    /// Adds what `conn` did since `before` was taken.
    pub(crate) fn observe<H: Handler>(&self, before: &Snapshot, conn: &Connection<H>) {
        let now = Snapshot::of(conn);
        for (counter, after, earlier) in [
            (
                &self.bytes_read,
                now.stats.bytes_read,
                before.stats.bytes_read,
            ),
            (
                &self.bytes_written,
                now.stats.bytes_written,
                before.stats.bytes_written,
            ),
            (
                &self.messages_in,
                now.stats.messages_in,
                before.stats.messages_in,
            ),
            (
                &self.messages_out,
                now.stats.messages_out,
                before.stats.messages_out,
            ),
        ] {
            if after > earlier {
                counter.increment(after - earlier);
            }
        }
        move_gauge(&self.send_buffered, before.send, now.send);
        move_gauge(&self.recv_buffered, before.recv, now.recv);
    }

    /// The connection is gone (closed, or its task dropped): forget its buffered bytes.
    pub(crate) fn closed<H: Handler>(&self, conn: &Connection<H>) {
        move_gauge(&self.send_buffered, conn.write_buffer_len(), 0);
        move_gauge(&self.recv_buffered, conn.read_buffer_len(), 0);
        self.closed.increment(1);
        self.open.decrement(1.0);
    }
}

fn move_gauge(gauge: &Gauge, before: usize, now: usize) {
    if now != before {
        gauge.increment(now as f64 - before as f64);
    }
}
