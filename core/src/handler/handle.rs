use std::fmt;
use std::sync::Arc;

/// Identifies a connection within one server; assigned by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A command for a connection, delivered through its driver's [`Mailbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<O> {
    /// Encode and queue a message ([`Context::send`](crate::Context::send)).
    Send(O),
    /// Close after flushing what is queued ([`Context::close`](crate::Context::close)).
    Close,
    /// Flush, then shut down the write side
    /// ([`Context::shutdown_write`](crate::Context::shutdown_write)).
    ShutdownWrite,
}

/// The connection is gone (or its driver stopped); the command was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection closed")]
pub struct MailboxClosed;

/// How a driver delivers [`Command`]s from any thread to the thread that owns a connection.
///
/// gale-mio implements it with a per-loop queue and a `mio::Waker`; gale-tokio and gale-smol
/// with a channel per connection task. The driver then applies each command with
/// [`Connection::handle_command`](crate::Connection::handle_command).
pub trait Mailbox<O>: Send + Sync + 'static {
    /// Hands `cmd` for connection `id` to its owner and wakes it.
    fn deliver(&self, id: ConnId, cmd: Command<O>) -> Result<(), MailboxClosed>;
}

/// A `Send + Clone` reference to a connection, usable from any thread (gev's
/// `Connection.Send`): send to it, close it, or shut down its write side.
///
/// Commands are applied in order on the connection's own thread. They fail with
/// [`MailboxClosed`] once the driver knows the connection is gone; a command that races with
/// the close is dropped silently.
pub struct ConnHandle<O: 'static> {
    id: ConnId,
    mailbox: Arc<dyn Mailbox<O>>,
}

impl<O: 'static> ConnHandle<O> {
    /// A handle for connection `id` whose commands go through `mailbox`.
    pub fn new(id: ConnId, mailbox: Arc<dyn Mailbox<O>>) -> Self {
        Self { id, mailbox }
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Queues `msg` for the connection.
    pub fn send(&self, msg: O) -> Result<(), MailboxClosed> {
        self.mailbox.deliver(self.id, Command::Send(msg))
    }

    /// Closes the connection after flushing what is queued.
    pub fn close(&self) -> Result<(), MailboxClosed> {
        self.mailbox.deliver(self.id, Command::Close)
    }

    /// Flushes what is queued, then shuts down the connection's write side.
    pub fn shutdown_write(&self) -> Result<(), MailboxClosed> {
        self.mailbox.deliver(self.id, Command::ShutdownWrite)
    }
}

impl<O: 'static> Clone for ConnHandle<O> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            mailbox: Arc::clone(&self.mailbox),
        }
    }
}

impl<O: 'static> fmt::Debug for ConnHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnHandle").field("id", &self.id).finish()
    }
}
