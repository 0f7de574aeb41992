//! gev's protobuf example, with replies: the server handler ([`ProtobufServer`]) and the
//! client that checks it ([`client`]), shared by the `protobuf` / `protobuf-client` examples
//! and by `tests/protobuf.rs`.
//!
//! The messages are gev's `example/protobuf/proto/user.proto`, as the hand-written prost
//! structs of [`gale_core::protobuf::example`] (no `protoc`, nothing to regenerate):
//!
//! | gev proto | wire name | Rust type | who sends it |
//! |---|---|---|---|
//! | `proto.Msg1 { string name = 1; int32 id = 2; }` | `"msg1"` | [`Msg1`] | client |
//! | `proto.Msg2 { string name = 1; string alias = 2; int32 id = 3; }` | `"msg2"` | [`Msg2`] | client |
//! | `proto.Response { string content = 1; }` | `"response"` ([`RESPONSE`]) | [`Response`] | server |
//!
//! gev's example server only logs what it receives; this one also answers every message with
//! a `Response` whose `content` is [`reply`]'s text, so a client (in any language) can check
//! the round trip field by field:
//!
//! ```text
//! msg1 { name: "ada", id: 7 }                → response { content: "msg1 id=7 name=ada" }
//! msg2 { name: "ada", alias: "a", id: -1 }   → response { content: "msg2 id=-1 name=ada alias=a" }
//! ```

pub mod client;

use std::sync::Arc;

use gale_core::protobuf::example::{self, Msg1, Msg2, Response};
use gale_core::protobuf::{Registry, TypedProtobuf};
use gale_core::{CloseReason, Context, Handler};

/// The type name replies travel under. gev's example never sends a `Response`, so it names
/// none; this follows its lower-case convention (`"msg1"`, `"msg2"`).
pub const RESPONSE: &str = "response";

/// Every message of gev's example, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GevMessage {
    /// A `"msg1"` frame.
    Msg1(Msg1),
    /// A `"msg2"` frame.
    Msg2(Msg2),
    /// A `"response"` frame (what the server sends).
    Response(Response),
}

impl From<Msg1> for GevMessage {
    fn from(msg: Msg1) -> Self {
        Self::Msg1(msg)
    }
}

impl From<Msg2> for GevMessage {
    fn from(msg: Msg2) -> Self {
        Self::Msg2(msg)
    }
}

/// Core's example registry (`"msg1"`, `"msg2"`) plus `Response` under [`RESPONSE`]: the
/// server decodes requests and names its replies with it, the client the other way round.
#[must_use]
pub fn registry() -> Registry<GevMessage> {
    let mut registry = example::registry::<GevMessage>();
    registry.register::<Response>(RESPONSE, GevMessage::Response);
    registry
}

/// The server's answer to `msg`, or `None` for a `Response` (which only servers send).
#[must_use]
pub fn reply(msg: &GevMessage) -> Option<Response> {
    let content = match msg {
        GevMessage::Msg1(m) => format!("msg1 id={} name={}", m.id, m.name),
        GevMessage::Msg2(m) => format!("msg2 id={} name={} alias={}", m.id, m.name, m.alias),
        GevMessage::Response(_) => return None,
    };
    Some(Response { content })
}

/// The `protobuf` example's handler: decodes gev's `msg1` / `msg2` frames with
/// [`TypedProtobuf`], logs each one, and answers it with a [`Response`] (see [`reply`]).
///
/// A frame that breaks the framing limits, has an unknown type name or does not decode closes
/// the connection (`CloseReason::Protocol`, logged at `warn`); so does a `response` sent to
/// the server.
#[derive(Debug, Clone)]
pub struct ProtobufServer {
    registry: Arc<Registry<GevMessage>>,
}

impl ProtobufServer {
    /// A server using [`registry`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            registry: Arc::new(registry()),
        }
    }
}

impl Default for ProtobufServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Handler for ProtobufServer {
    type Protocol = TypedProtobuf<GevMessage>;
    type State = ();

    fn protocol(&self) -> TypedProtobuf<GevMessage> {
        TypedProtobuf::new(Arc::clone(&self.registry))
    }

    fn on_connect(&self, cx: &mut Context<'_, Self>) {
        tracing::debug!(peer = %cx.peer_addr(), "connected");
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: GevMessage) {
        // gev's server: `log.Println(msgType, msg)`. Strings are logged quoted and escaped
        // (`?`): they come from the peer and may hold control characters.
        let peer = cx.peer_addr();
        match &msg {
            GevMessage::Msg1(m) => tracing::info!(%peer, id = m.id, name = ?m.name, "msg1"),
            GevMessage::Msg2(m) => {
                tracing::info!(%peer, id = m.id, name = ?m.name, alias = ?m.alias, "msg2");
            }
            GevMessage::Response(m) => {
                tracing::warn!(%peer, content = ?m.content, "a client sent a response; closing");
            }
        }
        let Some(response) = reply(&msg) else {
            cx.close();
            return;
        };
        // The registry names it "response"; a full send buffer means the peer does not read.
        if cx.send(response.into()).is_err() {
            cx.close();
        }
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        if let CloseReason::Protocol(e) = reason {
            tracing::warn!(peer = %cx.peer_addr(), error = %e, "protocol error");
        } else {
            tracing::debug!(peer = %cx.peer_addr(), %reason, "closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use gale_core::protobuf::example::{Msg1, Msg2, Response};

    use super::{GevMessage, RESPONSE, registry, reply};

    #[test]
    fn replies_name_every_field() {
        let msg1 = GevMessage::Msg1(Msg1 {
            name: "ada".into(),
            id: 7,
        });
        assert_eq!(reply(&msg1).unwrap().content, "msg1 id=7 name=ada");
        let msg2 = GevMessage::Msg2(Msg2 {
            name: "ada".into(),
            alias: "a".into(),
            id: -1,
        });
        assert_eq!(reply(&msg2).unwrap().content, "msg2 id=-1 name=ada alias=a");
        assert_eq!(reply(&GevMessage::Response(Response::default())), None);
    }

    #[test]
    fn the_registry_knows_all_three_names() {
        let registry = registry();
        assert_eq!(registry.name_of::<Msg1>(), Some("msg1"));
        assert_eq!(registry.name_of::<Msg2>(), Some("msg2"));
        assert_eq!(registry.name_of::<Response>(), Some(RESPONSE));
    }
}
