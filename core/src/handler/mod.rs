//! The application side of a connection: the [`Handler`] trait, the [`Context`] its callbacks
//! get, and the [`ConnHandle`] through which other threads reach a connection.

mod context;
mod handle;

pub use context::{Context, SendError, TimerError};
pub use handle::{Command, ConnHandle, ConnId, Mailbox, MailboxClosed};

use crate::protocol::{CloseReason, Protocol};

/// Application code for every connection of a server, run unchanged by every driver.
///
/// One handler value serves all connections (drivers share it across threads behind an
/// `Arc`, hence `Send + Sync`); per-connection data lives in [`State`](Self::State), reached
/// through [`Context::state`]. Callbacks are plain synchronous calls on the driver's thread, as
/// in gev and Netty: never block in them. Hand long work to another thread or a task queue and
/// reply later through a [`ConnHandle`].
///
/// ```
/// use bytes::Bytes;
/// use gale_core::{Context, Handler, codec::Raw};
///
/// /// Echoes every byte back, counting messages per connection.
/// struct Echo;
///
/// impl Handler for Echo {
///     type Protocol = Raw;
///     type State = u64;
///
///     fn protocol(&self) -> Raw {
///         Raw::new()
///     }
///
///     fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
///         *cx.state() += 1;
///         // A full send buffer means the peer does not read; drop the connection.
///         if cx.send(msg).is_err() {
///             cx.close();
///         }
///     }
/// }
/// ```
pub trait Handler: Send + Sync + Sized + 'static {
    /// The framing: a codec from [`codec`](crate::codec) or a protocol of your own.
    type Protocol: Protocol;
    /// Per-connection state, created with `Default` before [`on_connect`](Self::on_connect).
    type State: Default + Send + 'static;

    /// Creates the protocol instance for a new connection.
    fn protocol(&self) -> Self::Protocol;

    /// A connection was accepted. Default: nothing.
    fn on_connect(&self, _cx: &mut Context<'_, Self>) {}

    /// A whole message arrived.
    fn on_message(&self, cx: &mut Context<'_, Self>, msg: <Self::Protocol as Protocol>::Message);

    /// The send buffer fell below the low watermark after having gone above the high one:
    /// the peer is reading again. Default: nothing.
    fn on_writable(&self, _cx: &mut Context<'_, Self>) {}

    /// A timer armed with [`Context::set_timer`] fired. Default: nothing.
    fn on_timer(&self, _cx: &mut Context<'_, Self>, _timer: u64) {}

    /// The connection ended. Called exactly once per connection that saw
    /// [`on_connect`](Self::on_connect); sends from here fail. Default: nothing.
    fn on_close(&self, _cx: &mut Context<'_, Self>, _reason: &CloseReason) {}
}
