//! What a WebSocket handler receives ([`Message`]) and sends ([`Outbound`]), and
//! [`Utf8Bytes`], the zero-copy text type both use.

use std::fmt;

use bytes::Bytes;

use super::close::CloseFrame;
use super::frame::Frame;
use crate::http::RequestHead;

/// What [`Handler::on_message`](crate::Handler::on_message) receives on a WebSocket
/// connection.
///
/// The first message of every connection is [`Open`](Self::Open), once the upgrade is
/// accepted; then data messages and control notifications in arrival order; the last is
/// [`Close`](Self::Close) if the peer closed cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// The upgrade was accepted and the `101` response queued: the request, and the chosen
    /// subprotocol. Sends are accepted from now on.
    Open(Box<Upgraded>),
    /// A whole text message, valid UTF-8 (fragments reassembled).
    Text(Utf8Bytes),
    /// A whole binary message (fragments reassembled).
    Binary(Bytes),
    /// With [`WsConfig::set_raw_frames`](super::WsConfig::set_raw_frames): one data frame
    /// (text, binary or continuation) instead of whole messages. A text message's frames
    /// may split a code point; the message as a whole is still checked to be UTF-8.
    Frame(Frame),
    /// The peer pinged; the pong is already queued.
    Ping(Bytes),
    /// The peer ponged (an answer to a keepalive ping, or unsolicited).
    Pong(Bytes),
    /// The peer closed: its close frame (`None` if it carried no code). The echo is queued
    /// and the connection closes after flushing it, with
    /// [`CloseReason::Local`](crate::CloseReason::Local) (the protocol closes the TCP
    /// connection, as RFC 6455 §7.1.1 asks of servers); sends fail from here.
    Close(Option<CloseFrame>),
}

/// What a handler sends on a WebSocket connection, through
/// [`Context::send`](crate::Context::send) or a [`ConnHandle`](crate::ConnHandle).
///
/// Before the upgrade completes and after a close frame went out, data and pings are dropped
/// (a broadcast may reach a connection in either state); see
/// [`WebSocket`](super::WebSocket#sending).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outbound {
    /// A text message in one frame.
    Text(Utf8Bytes),
    /// A binary message in one frame.
    Binary(Bytes),
    /// A ping (payload at most 125 bytes).
    Ping(Bytes),
    /// An unsolicited pong (payload at most 125 bytes); pings are answered automatically.
    Pong(Bytes),
    /// Starts the closing handshake: sends a close frame (`None`: no code) and keeps reading
    /// until the peer answers with its own, or
    /// [`WsConfig::close_timeout`](super::WsConfig::close_timeout) passes; then the
    /// connection closes. A reason longer than 123 bytes is cut.
    Close(Option<CloseFrame>),
    /// One raw frame, for streaming a message in pieces: the caller keeps the fragmentation
    /// rules (first frame text or binary, then continuations, `fin` on the last; control
    /// frames at most 125 bytes with `fin` set).
    Frame(Frame),
}

impl From<Message> for Option<Outbound> {
    /// The echo of a message: text and binary messages and raw frames map to themselves,
    /// the rest to `None`.
    fn from(msg: Message) -> Self {
        match msg {
            Message::Text(t) => Some(Outbound::Text(t)),
            Message::Binary(b) => Some(Outbound::Binary(b)),
            Message::Frame(f) => Some(Outbound::Frame(f)),
            _ => None,
        }
    }
}

/// The accepted upgrade, delivered in [`Message::Open`].
///
/// Holding it keeps the receive allocation the request head was read into alive (a few KiB):
/// copy out what the connection needs and drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    pub(crate) head: RequestHead,
    pub(crate) subprotocol: Option<Box<str>>,
}

impl Upgraded {
    /// The upgrade request's head: method, target, headers.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The path of the request target, without the query.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query of the request target, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The subprotocol the upgrade hook chose, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Takes the request head.
    pub fn into_head(self) -> RequestHead {
        self.head
    }
}

/// UTF-8 text held in [`Bytes`]: received text messages are split off the receive buffer
/// without copying, and sent ones are queued without copying.
///
/// gale-core has no `unsafe`, so [`as_str`](Self::as_str) re-checks the bytes (at memory
/// speed for ASCII) instead of trusting them: call it once per message, or keep the
/// [`Bytes`] when the text is only passed along (an echo or broadcast never pays it).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Empty text.
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// Static text, without copying.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// Bytes already known to be UTF-8.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text. Re-validates (see the type docs).
    pub fn as_str(&self) -> &str {
        // invariant: every constructor takes a `str` or validates the bytes, so the
        // fallback is never taken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    /// Checks that `bytes` are UTF-8, without copying them.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bytes_round_trips_and_refuses_invalid_bytes() {
        let t = Utf8Bytes::from("héllo");
        assert_eq!(t.as_str(), "héllo");
        assert_eq!(t.len(), 6);
        assert_eq!(t, "héllo");
        assert_eq!(format!("{t} {t:?}"), "héllo \"héllo\"");
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
        let b = Bytes::from_static("ok".as_bytes());
        assert_eq!(Utf8Bytes::try_from(b.clone()).unwrap().into_bytes(), b);
        assert!(Utf8Bytes::new().is_empty());
        assert_eq!(Utf8Bytes::from_static("s"), "s");
    }

    #[test]
    fn echo_conversion_keeps_data_and_drops_control() {
        let text: Option<Outbound> = Message::Text("a".into()).into();
        assert_eq!(text, Some(Outbound::Text("a".into())));
        let ping: Option<Outbound> = Message::Ping(Bytes::new()).into();
        assert_eq!(ping, None);
    }
}
