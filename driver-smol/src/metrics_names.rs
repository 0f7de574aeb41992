//! Names of the metrics gale drivers record through the [`metrics`] facade.
//!
//! Every gale driver uses these same names, so dashboards do not depend on the driver. Nothing
//! is recorded unless the application installs a `metrics` recorder (for example
//! `metrics-exporter-prometheus`).

/// Counter: connections accepted and handed to the handler.
pub const CONNECTIONS_ACCEPTED: &str = "gale_connections_accepted_total";
/// Counter: connections accepted and closed at once because `max_connections` was reached.
pub const CONNECTIONS_REFUSED: &str = "gale_connections_refused_total";
/// Counter: connections closed, labelled `reason` (`local`, `peer_closed`, `idle_timeout`,
/// `protocol`, `send_buffer_full`, `recv_buffer_full`, `io`, `shutdown`).
pub const CONNECTIONS_CLOSED: &str = "gale_connections_closed_total";
/// Gauge: connections open now.
pub const CONNECTIONS_ACTIVE: &str = "gale_connections_active";
/// Counter: bytes read from peers.
pub const BYTES_READ: &str = "gale_bytes_read_total";
/// Counter: bytes written to peers.
pub const BYTES_WRITTEN: &str = "gale_bytes_written_total";
/// Counter: failed `accept` calls (out of file descriptors, …).
pub const ACCEPT_ERRORS: &str = "gale_accept_errors_total";

/// The `reason` label value of [`CONNECTIONS_CLOSED`] for `reason`.
pub fn close_label(reason: &gale_core::CloseReason) -> &'static str {
    use gale_core::CloseReason;
    match reason {
        CloseReason::Local => "local",
        CloseReason::PeerClosed => "peer_closed",
        CloseReason::IdleTimeout => "idle_timeout",
        CloseReason::Protocol(_) => "protocol",
        CloseReason::SendBufferFull => "send_buffer_full",
        CloseReason::RecvBufferFull => "recv_buffer_full",
        CloseReason::Io(_) => "io",
        CloseReason::Shutdown => "shutdown",
        _ => "other",
    }
}
