//! One connection's metrics, under the names all gale drivers share
//! ([`gale_core::server::metric`]).
//!
//! Byte and message counts come from the connection's [`ConnStats`]: after every drain the
//! task adds the difference since the last look, so the driver counts nothing itself.

use gale_core::server::metric as name;
use gale_core::{ConnStats, Connection, Handler};
use metrics::{Counter, Gauge};

/// Handles registered once per connection, and what was last reported.
pub(crate) struct ConnMetrics {
    bytes_read: Counter,
    bytes_written: Counter,
    messages_in: Counter,
    messages_out: Counter,
    send_buffered: Gauge,
    recv_buffered: Gauge,
    seen: ConnStats,
    send: usize,
    recv: usize,
}

impl ConnMetrics {
    /// A connection was admitted.
    pub(crate) fn accepted() -> Self {
        metrics::counter!(name::CONNECTIONS_ACCEPTED).increment(1);
        metrics::gauge!(name::CONNECTIONS_OPEN).increment(1.0);
        Self {
            bytes_read: metrics::counter!(name::BYTES_READ),
            bytes_written: metrics::counter!(name::BYTES_WRITTEN),
            messages_in: metrics::counter!(name::MESSAGES_IN),
            messages_out: metrics::counter!(name::MESSAGES_OUT),
            send_buffered: metrics::gauge!(name::SEND_BUFFERED_BYTES),
            recv_buffered: metrics::gauge!(name::RECV_BUFFERED_BYTES),
            seen: ConnStats::default(),
            send: 0,
            recv: 0,
        }
    }

    /// A connection was accepted and closed at once (`max_connections`).
    pub(crate) fn refused() {
        metrics::counter!(name::CONNECTIONS_REFUSED).increment(1);
    }

    /// Reports what `conn` did since the last call.
    pub(crate) fn observe<H: Handler>(&mut self, conn: &Connection<H>) {
        let now = conn.stats();
        for (counter, after, before) in [
            (&self.bytes_read, now.bytes_read, self.seen.bytes_read),
            (
                &self.bytes_written,
                now.bytes_written,
                self.seen.bytes_written,
            ),
            (&self.messages_in, now.messages_in, self.seen.messages_in),
            (&self.messages_out, now.messages_out, self.seen.messages_out),
        ] {
            if after > before {
                counter.increment(after - before);
            }
        }
        self.seen = now;
        let (send, recv) = (conn.write_buffer_len(), conn.read_buffer_len());
        move_gauge(&self.send_buffered, &mut self.send, send);
        move_gauge(&self.recv_buffered, &mut self.recv, recv);
    }
}

impl Drop for ConnMetrics {
    /// The connection is gone (closed, or its task dropped): forget its buffered bytes.
    fn drop(&mut self) {
        move_gauge(&self.send_buffered, &mut self.send, 0);
        move_gauge(&self.recv_buffered, &mut self.recv, 0);
        metrics::counter!(name::CONNECTIONS_CLOSED).increment(1);
        metrics::gauge!(name::CONNECTIONS_OPEN).decrement(1.0);
    }
}

fn move_gauge(gauge: &Gauge, last: &mut usize, now: usize) {
    if now != *last {
        gauge.increment(now as f64 - *last as f64);
        *last = now;
    }
}
