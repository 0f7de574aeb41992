//! Type-erased messages: [`AnyMessage`] (received) and [`Outbound`] (to send).

use std::any::{Any, TypeId};
use std::fmt;

use bytes::Bytes;

use super::TypedFrame;

/// A decoded message of any registered type, for handlers that do not define an enum of
/// their own: check it with [`is`](Self::is) or [`downcast_ref`](Self::downcast_ref), take it
/// with [`downcast`](Self::downcast).
///
/// Every prost message converts into one (`Into::into`, the usual wrap function for
/// [`Registry::register`](super::Registry::register)); [`new`](Self::new) wraps anything else
/// that is `Debug + Send`, for example the raw [`TypedFrame`] of an unknown type passed
/// through.
///
/// ```
/// use gale_core::protobuf::AnyMessage;
/// use gale_core::protobuf::example::{Msg1, Msg2};
///
/// let msg = AnyMessage::from(Msg1 { name: "a".into(), id: 1 });
/// assert!(msg.is::<Msg1>() && msg.downcast_ref::<Msg2>().is_none());
/// let msg = msg.downcast::<Msg2>().unwrap_err(); // not a Msg2: given back
/// assert_eq!(msg.downcast::<Msg1>().unwrap().id, 1);
/// ```
pub struct AnyMessage {
    inner: Box<dyn Payload>,
    rust_type: &'static str,
}

impl AnyMessage {
    /// Wraps `value`.
    pub fn new<T: Any + fmt::Debug + Send>(value: T) -> Self {
        Self {
            inner: Box::new(value),
            rust_type: std::any::type_name::<T>(),
        }
    }

    /// Whether the message is a `T`.
    #[must_use]
    pub fn is<T: Any>(&self) -> bool {
        self.as_any().is::<T>()
    }

    /// The message, if it is a `T`.
    #[must_use]
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// Takes the message out if it is a `T`; gives it back otherwise.
    ///
    /// # Errors
    ///
    /// `self`, unchanged, when the message is not a `T`.
    pub fn downcast<T: Any>(self) -> Result<T, Self> {
        if !self.is::<T>() {
            return Err(self);
        }
        let any: Box<dyn Any> = self.inner;
        // invariant: `is::<T>()` was just checked.
        Ok(*any.downcast::<T>().expect("checked type"))
    }

    /// The Rust type's name of the message, for logs.
    #[must_use]
    pub fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    fn as_any(&self) -> &dyn Any {
        &*self.inner
    }
}

impl<T: prost::Message + fmt::Debug + 'static> From<T> for AnyMessage {
    fn from(msg: T) -> Self {
        Self::new(msg)
    }
}

impl fmt::Debug for AnyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// A message to send through [`TypedProtobuf`](super::TypedProtobuf): any prost message
/// whose type is registered (the [`Registry`](super::Registry) supplies its name), or a raw
/// [`TypedFrame`] sent as is.
///
/// The message is encoded when the `Outbound` is built, on the thread that builds it (a
/// [`ConnHandle`](crate::ConnHandle) sender's, not the connection's loop); the connection
/// only adds the header.
///
/// ```
/// use gale_core::protobuf::{Outbound, TypedFrame};
/// use gale_core::protobuf::example::Msg2;
///
/// let typed: Outbound = Msg2 { id: 2, ..Default::default() }.into();
/// assert_eq!(&typed.payload()[..], b"\x18\x02");
/// let raw = Outbound::from(TypedFrame::from_static("msg2", &b"\x18\x02"[..]));
/// assert_eq!(raw.payload(), typed.payload());
/// ```
#[derive(Debug, Clone)]
pub struct Outbound {
    kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// A prost message, encoded; its name comes from the registry.
    Message {
        type_id: TypeId,
        rust_type: &'static str,
        payload: Bytes,
    },
    /// A frame with its own name.
    Frame(TypedFrame),
}

impl Outbound {
    /// Encodes `msg` for sending.
    pub fn new<T: prost::Message + 'static>(msg: &T) -> Self {
        Self {
            kind: Kind::Message {
                type_id: TypeId::of::<T>(),
                rust_type: std::any::type_name::<T>(),
                payload: Bytes::from(msg.encode_to_vec()),
            },
        }
    }

    /// The encoded message.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        match &self.kind {
            Kind::Message { payload, .. } => payload,
            Kind::Frame(frame) => frame.payload(),
        }
    }

    pub(super) fn into_kind(self) -> Kind {
        self.kind
    }
}

impl<T: prost::Message + 'static> From<T> for Outbound {
    fn from(msg: T) -> Self {
        Self::new(&msg)
    }
}

impl From<TypedFrame> for Outbound {
    fn from(frame: TypedFrame) -> Self {
        Self {
            kind: Kind::Frame(frame),
        }
    }
}

/// What [`AnyMessage`] boxes: anything it can downcast and print.
trait Payload: Any + fmt::Debug + Send {}

impl<T: Any + fmt::Debug + Send> Payload for T {}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{AnyMessage, Outbound};
    use crate::protobuf::TypedFrame;
    use crate::protobuf::example::{Msg1, Msg2};

    #[test]
    fn downcasts_see_the_inner_type_not_the_box() {
        let msg = AnyMessage::new(TypedFrame::from_static("x", Bytes::new()));
        assert!(msg.is::<TypedFrame>());
        assert!(!msg.is::<Box<dyn std::any::Any>>());
        assert_eq!(msg.rust_type(), std::any::type_name::<TypedFrame>());
        assert_eq!(msg.downcast_ref::<TypedFrame>().unwrap().name(), "x");
    }

    #[test]
    fn debug_prints_the_message() {
        let msg = AnyMessage::from(Msg1 {
            name: "n".into(),
            id: 3,
        });
        assert_eq!(format!("{msg:?}"), r#"Msg1 { name: "n", id: 3 }"#);
    }

    #[test]
    fn outbound_encodes_at_once() {
        let msg = Msg2 {
            name: "a".into(),
            alias: "b".into(),
            id: 1,
        };
        let out = Outbound::from(msg.clone());
        assert_eq!(&out.payload()[..], b"\x0a\x01a\x12\x01b\x18\x01");
        assert_eq!(Outbound::new(&msg).payload(), out.payload());
    }
}
