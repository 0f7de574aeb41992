use std::time::{Duration, Instant};

use super::{ConnHandle, ConnId, Handler};
use crate::conn::{Core, Outgoing, PeerAddr};
use crate::protocol::{Protocol, ProtocolError};

/// What a [`Handler`] callback can do with its connection.
///
/// Everything here acts on the connection's in-memory state; the driver performs the I/O
/// after the callback returns.
pub struct Context<'a, H: Handler> {
    pub(crate) core: &'a mut Core<H::State, Outgoing<H>>,
    pub(crate) protocol: &'a mut H::Protocol,
    pub(crate) now: Instant,
}

impl<H: Handler> Context<'_, H> {
    /// The time given by the driver with the current input.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Encodes `msg` with the connection's protocol and queues it.
    ///
    /// Fails with [`SendError::Closed`] once a close or write shutdown was requested, and with
    /// [`SendError::BufferFull`] while the queued bytes are at or above
    /// [`ConnConfig::max_send_buffer`](crate::ConnConfig::max_send_buffer) (check
    /// [`is_writable`](Self::is_writable) to stop earlier, at the high watermark).
    pub fn send(&mut self, msg: <H::Protocol as Protocol>::Outgoing) -> Result<(), SendError> {
        self.core.send_message(self.now, self.protocol, msg)
    }

    /// Closes the connection once everything queued has been written (or the close linger
    /// timeout passed). Reading stops at once.
    pub fn close(&mut self) {
        self.core.request_close(crate::CloseReason::Local);
    }

    /// gev's `ShutdownWrite`: flush what is queued, then shut down the write side (the peer
    /// reads EOF) while this side keeps reading. Later sends fail.
    pub fn shutdown_write(&mut self) {
        self.core.request_shutdown_write();
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.core.peer
    }

    /// The connection's id, when its driver gave it a handle.
    pub fn id(&self) -> Option<ConnId> {
        self.core.handle.as_ref().map(ConnHandle::id)
    }

    /// A `Send + Clone` handle to this connection for other threads, when the driver
    /// provides one (every gale driver does).
    pub fn handle(&self) -> Option<ConnHandle<Outgoing<H>>> {
        self.core.handle.clone()
    }

    /// The connection's typed state.
    pub fn state(&mut self) -> &mut H::State {
        &mut self.core.state
    }

    /// The connection's protocol, for protocol-specific operations.
    pub fn protocol(&mut self) -> &mut H::Protocol {
        self.protocol
    }

    /// Bytes received and not yet consumed by a message (gev's `ReadBufferLength`).
    pub fn read_buffer_len(&self) -> usize {
        self.core.recv.len()
    }

    /// Bytes queued and not yet written (gev's `WriteBufferLength`).
    pub fn write_buffer_len(&self) -> usize {
        self.core.send.len()
    }

    /// False from the moment queued bytes exceed the high watermark until they fall to the
    /// low watermark ([`Handler::on_writable`] then fires).
    pub fn is_writable(&self) -> bool {
        !self.core.above_high && self.core.can_send()
    }

    /// Arms (or re-arms) the connection timer `timer` to fire at `at`, calling
    /// [`Handler::on_timer`]. At most
    /// [`ConnConfig::max_user_timers`](crate::ConnConfig::max_user_timers) can be armed.
    pub fn set_timer(&mut self, timer: u64, at: Instant) -> Result<(), TimerError> {
        self.core.set_user_timer(timer, at)
    }

    /// Arms `timer` to fire `after` from now.
    pub fn set_timer_after(&mut self, timer: u64, after: Duration) -> Result<(), TimerError> {
        let at = self.now + after;
        self.core.set_user_timer(timer, at)
    }

    /// Disarms `timer`; returns whether it was armed.
    pub fn cancel_timer(&mut self, timer: u64) -> bool {
        self.core.cancel_user_timer(timer)
    }
}

/// Why [`Context::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed, or its write side was shut down.
    #[error("connection is closing")]
    Closed,
    /// The send buffer is at its limit: the peer is not reading.
    #[error("send buffer full: {queued} bytes queued, limit {limit}")]
    BufferFull {
        /// Bytes queued now.
        queued: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The protocol could not encode the message.
    #[error("cannot encode message: {0}")]
    Encode(ProtocolError),
}

/// Why [`Context::set_timer`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// The per-connection timer limit is reached.
    #[error("too many timers armed (limit {limit})")]
    TooMany {
        /// The configured limit.
        limit: usize,
    },
    /// The connection is closed.
    #[error("connection is closed")]
    Closed,
}
