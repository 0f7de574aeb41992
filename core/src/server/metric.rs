//! Names of the metrics every gale driver reports through the `metrics` facade.
//!
//! gale-core has no metrics dependency: these are plain names, defined once so that a
//! dashboard built on one driver works unchanged on another. Counters end in `_total`.
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | [`CONNECTIONS_ACCEPTED`] | counter | connections admitted (reached the handler) |
//! | [`CONNECTIONS_REFUSED`] | counter | connections accepted and closed at once because of `max_connections` |
//! | [`CONNECTIONS_CLOSED`] | counter | admitted connections that ended, for any reason |
//! | [`CONNECTIONS_OPEN`] | gauge | admitted connections not yet closed |
//! | [`BYTES_READ`] | counter | bytes read from peers |
//! | [`BYTES_WRITTEN`] | counter | bytes written to peers |
//! | [`MESSAGES_IN`] | counter | messages decoded and handed to handlers |
//! | [`MESSAGES_OUT`] | counter | messages handlers queued |
//! | [`SEND_BUFFERED_BYTES`] | gauge | bytes queued for writing, over all connections |
//! | [`RECV_BUFFERED_BYTES`] | gauge | bytes received and not yet decoded, over all connections |

/// Counter: connections admitted (they reached the handler).
pub const CONNECTIONS_ACCEPTED: &str = "gale_connections_accepted_total";
/// Counter: connections accepted and closed at once because the server was at
/// [`max_connections`](super::ServerConfig::max_connections); they never reach the handler.
pub const CONNECTIONS_REFUSED: &str = "gale_connections_refused_total";
/// Counter: admitted connections that ended, for any reason.
pub const CONNECTIONS_CLOSED: &str = "gale_connections_closed_total";
/// Gauge: admitted connections not yet closed.
pub const CONNECTIONS_OPEN: &str = "gale_connections_open";
/// Counter: bytes read from peers.
pub const BYTES_READ: &str = "gale_bytes_read_total";
/// Counter: bytes written to peers.
pub const BYTES_WRITTEN: &str = "gale_bytes_written_total";
/// Counter: messages decoded and handed to handlers.
pub const MESSAGES_IN: &str = "gale_messages_in_total";
/// Counter: messages handlers queued.
pub const MESSAGES_OUT: &str = "gale_messages_out_total";
/// Gauge: bytes queued for writing, summed over all connections.
pub const SEND_BUFFERED_BYTES: &str = "gale_send_buffered_bytes";
/// Gauge: bytes received and not yet decoded, summed over all connections.
pub const RECV_BUFFERED_BYTES: &str = "gale_recv_buffered_bytes";

/// Every name above, for exporters that pre-register or describe them.
pub const ALL: [&str; 10] = [
    CONNECTIONS_ACCEPTED,
    CONNECTIONS_REFUSED,
    CONNECTIONS_CLOSED,
    CONNECTIONS_OPEN,
    BYTES_READ,
    BYTES_WRITTEN,
    MESSAGES_IN,
    MESSAGES_OUT,
    SEND_BUFFERED_BYTES,
    RECV_BUFFERED_BYTES,
];
