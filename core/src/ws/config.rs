//! [`WsConfig`]: the limits, timeouts and upgrade hook shared by a server's WebSocket
//! connections.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::handshake::{UpgradeDecision, UpgradeRequest};
use crate::deflate::DeflateConfig;
use crate::http::HttpLimits;

/// The upgrade hook: sees every valid upgrade request and accepts or refuses it.
pub type UpgradeHook = Arc<dyn Fn(&UpgradeRequest<'_>) -> UpgradeDecision + Send + Sync>;

/// Configuration of a server's WebSocket connections, shared (behind an `Arc`) by all of them.
///
/// Every limit a peer controls has a documented default and a setter:
///
/// ```
/// use std::time::Duration;
/// use gale_core::ws::{UpgradeDecision, WsConfig};
///
/// let mut config = WsConfig::default();
/// config
///     .set_max_message_size(1024 * 1024)
///     .set_ping_interval(Some(Duration::from_secs(30)))
///     .set_on_upgrade(|req| {
///         if req.path() != "/chat" {
///             return UpgradeDecision::reject(404, "no such endpoint");
///         }
///         match req.subprotocols().find(|p| *p == "chat.v2") {
///             Some(p) => UpgradeDecision::accept().with_subprotocol(p),
///             None => UpgradeDecision::accept(),
///         }
///     });
/// assert_eq!(config.max_frame_size(), 16 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct WsConfig {
    max_frame_size: usize,
    max_message_size: usize,
    handshake_timeout: Option<Duration>,
    close_timeout: Duration,
    ping_interval: Option<Duration>,
    pong_timeout: Duration,
    raw_frames: bool,
    http_limits: HttpLimits,
    deflate: DeflateConfig,
    on_upgrade: Option<UpgradeHook>,
}

impl Default for WsConfig {
    fn default() -> Self {
        let mut http_limits = HttpLimits::default();
        http_limits.max_body(0);
        Self {
            max_frame_size: 16 * 1024 * 1024,
            max_message_size: 64 * 1024 * 1024,
            handshake_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            pong_timeout: Duration::from_secs(10),
            raw_frames: false,
            http_limits,
            deflate: DeflateConfig::default(),
            on_upgrade: None,
        }
    }
}

impl WsConfig {
    /// Largest frame payload accepted. A bigger one is refused from its header, before any
    /// of it is buffered, with close code 1009.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Sets [`max_frame_size`](Self::max_frame_size). Default 16 MiB. It also bounds the
    /// receive buffer, so keep [`ConnConfig::max_recv_buffer`](crate::ConnConfig) above it.
    pub fn set_max_frame_size(&mut self, bytes: usize) -> &mut Self {
        self.max_frame_size = bytes;
        self
    }

    /// Largest message (all fragments together) accepted. A frame that would take the
    /// message past it is refused from its header with close code 1009. Also applies with
    /// raw frames.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Sets [`max_message_size`](Self::max_message_size). Default 64 MiB.
    pub fn set_max_message_size(&mut self, bytes: usize) -> &mut Self {
        self.max_message_size = bytes;
        self
    }

    /// How long a client has, from the connection's start, to complete its upgrade request.
    /// When it passes the server answers `408 Request Timeout` and closes (slowloris).
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout). Default 10 s; `None`: no limit.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// After the server sent a close frame ([`Outbound::Close`](super::Outbound::Close)),
    /// how long it waits for the peer's close frame before closing the connection anyway.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// Sets [`close_timeout`](Self::close_timeout). Default 5 s.
    pub fn set_close_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.close_timeout = timeout;
        self
    }

    /// Keepalive: send a ping this often once the connection is open.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.ping_interval
    }

    /// Sets [`ping_interval`](Self::ping_interval). Default `None` (no keepalive pings).
    pub fn set_ping_interval(&mut self, interval: Option<Duration>) -> &mut Self {
        self.ping_interval = interval.filter(|d| !d.is_zero());
        self
    }

    /// With keepalive on: how long after a ping the peer has to send anything (the pong, or
    /// any other bytes) before it is declared dead: the server then sends close 1001 and
    /// closes the connection with [`WsError::PongTimeout`](super::WsError::PongTimeout).
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }

    /// Sets [`pong_timeout`](Self::pong_timeout). Default 10 s.
    pub fn set_pong_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pong_timeout = timeout;
        self
    }

    /// Whether data frames are handed over one by one ([`Message::Frame`](super::Message))
    /// instead of as reassembled messages.
    pub fn raw_frames(&self) -> bool {
        self.raw_frames
    }

    /// Sets [`raw_frames`](Self::raw_frames). Default `false`.
    pub fn set_raw_frames(&mut self, raw: bool) -> &mut Self {
        self.raw_frames = raw;
        self
    }

    /// Limits on the upgrade request (head size, header count; see [`HttpLimits`]).
    pub fn http_limits(&self) -> &HttpLimits {
        &self.http_limits
    }

    /// The upgrade request limits, to change. Default: [`HttpLimits::default`] (8 KiB head,
    /// 64 fields) with `max_body` 0: an upgrade request has no body.
    pub fn http_limits_mut(&mut self) -> &mut HttpLimits {
        &mut self.http_limits
    }

    /// permessage-deflate (RFC 7692): whether offers are accepted and on what terms. Off by
    /// default; see [`DeflateConfig`] for what it costs per connection.
    pub fn deflate(&self) -> &DeflateConfig {
        &self.deflate
    }

    /// The permessage-deflate settings, to change, e.g.
    /// `config.deflate_mut().set_enabled(true)`.
    pub fn deflate_mut(&mut self) -> &mut DeflateConfig {
        &mut self.deflate
    }

    /// The upgrade hook, if one is set.
    pub fn on_upgrade(&self) -> Option<&UpgradeHook> {
        self.on_upgrade.as_ref()
    }

    /// Sets the hook that sees every valid upgrade request (path, query, headers, origin,
    /// offered subprotocols) and accepts it, choosing a subprotocol and adding response
    /// fields, or refuses it with a status. Default: accept everything, no subprotocol.
    pub fn set_on_upgrade(
        &mut self,
        hook: impl Fn(&UpgradeRequest<'_>) -> UpgradeDecision + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_upgrade = Some(Arc::new(hook));
        self
    }
}

impl fmt::Debug for WsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConfig")
            .field("max_frame_size", &self.max_frame_size)
            .field("max_message_size", &self.max_message_size)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("raw_frames", &self.raw_frames)
            .field("http_limits", &self.http_limits)
            .field("deflate", &self.deflate)
            .field("on_upgrade", &self.on_upgrade.as_ref().map(|_| "Fn"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        let c = WsConfig::default();
        assert_eq!(c.max_frame_size(), 16 << 20);
        assert_eq!(c.max_message_size(), 64 << 20);
        assert_eq!(c.handshake_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.close_timeout(), Duration::from_secs(5));
        assert_eq!(c.ping_interval(), None);
        assert_eq!(c.pong_timeout(), Duration::from_secs(10));
        assert!(!c.raw_frames());
        assert_eq!(c.http_limits().body_limit(), 0);
        assert_eq!(c.http_limits().head_size_limit(), 8 * 1024);
        assert!(c.on_upgrade().is_none());
    }

    #[test]
    fn setters_chain_and_zero_interval_means_off() {
        let mut c = WsConfig::default();
        c.set_max_frame_size(1)
            .set_max_message_size(2)
            .set_handshake_timeout(None)
            .set_close_timeout(Duration::from_secs(1))
            .set_ping_interval(Some(Duration::ZERO))
            .set_pong_timeout(Duration::from_secs(2))
            .set_raw_frames(true);
        c.http_limits_mut().max_headers(3);
        assert_eq!((c.max_frame_size(), c.max_message_size()), (1, 2));
        assert_eq!(c.handshake_timeout(), None);
        assert_eq!(c.ping_interval(), None);
        assert!(c.raw_frames());
        assert_eq!(c.http_limits().headers_limit(), 3);
        assert!(format!("{c:?}").contains("max_frame_size: 1"));
    }
}
