//! [`Registry`]: type names to prost message types and back.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;

use super::any::Kind;
use super::{AnyMessage, Outbound, ProtobufError, TypedFrame};

/// Maps the type names of gev frames to prost message types, and message types back to names.
///
/// Decoding a [`TypedFrame`] looks its name up, decodes the payload as the registered type
/// `T` and wraps it into the handler's message type `M` with the function given at
/// registration: an enum variant of your own (`Gev::Msg1`), or `Into::into` for
/// [`AnyMessage`]. Encoding a `T` (or an [`Outbound`] built from one) finds `T`'s name.
///
/// Names are keys: registering a name again replaces what it decodes to. A type may be
/// registered under several names (aliases, for instance gev's short `"msg1"` and protobuf's
/// full `"proto.Msg1"`): all of them decode, and sending uses the most recent one that still
/// maps to the type.
///
/// A frame whose name is not registered is an error by default
/// ([`ProtobufError::UnknownTypeName`], which closes the connection); with
/// [`UnknownType::PassThrough`] it reaches the handler as a raw frame instead.
///
/// Build the registry once, share it behind an [`Arc`](std::sync::Arc) with every connection's
/// [`TypedProtobuf`](super::TypedProtobuf).
///
/// ```
/// use bytes::Bytes;
/// use gale_core::protobuf::example::{Msg1, Msg2};
/// use gale_core::protobuf::{ProtobufError, Registry, TypedFrame, UnknownType};
///
/// #[derive(Debug, PartialEq)]
/// enum Gev {
///     Msg1(Msg1),
///     Msg2(Msg2),
///     Unknown(TypedFrame),
/// }
///
/// let mut registry = Registry::new();
/// registry.register("msg1", Gev::Msg1).register("msg2", Gev::Msg2);
///
/// let frame = registry.encode(&Msg2 { id: 7, ..Default::default() }).unwrap();
/// assert_eq!(frame.name(), "msg2");
/// assert_eq!(registry.decode(frame), Ok(Gev::Msg2(Msg2 { id: 7, ..Default::default() })));
///
/// let stranger = TypedFrame::from_static("msg3", Bytes::new());
/// assert_eq!(
///     registry.decode(stranger.clone()),
///     Err(ProtobufError::UnknownTypeName { type_name: "msg3".into() })
/// );
/// registry.set_unknown(UnknownType::pass_through(Gev::Unknown));
/// assert_eq!(registry.decode(stranger.clone()), Ok(Gev::Unknown(stranger)));
/// ```
pub struct Registry<M = AnyMessage> {
    by_name: HashMap<Box<str>, Entry<M>>,
    by_type: HashMap<TypeId, Bytes>,
    unknown: UnknownType<M>,
}

/// What a [`Registry`] does with a frame whose type name is not registered.
pub enum UnknownType<M> {
    /// Fail with [`ProtobufError::UnknownTypeName`] (the default): the connection closes.
    Error,
    /// Hand the raw frame to the handler, wrapped into `M` by the function.
    PassThrough(Box<dyn Fn(TypedFrame) -> M + Send + Sync>),
}

impl<M> UnknownType<M> {
    /// [`PassThrough`](Self::PassThrough) with `wrap`: `Gev::Unknown`, or `AnyMessage::new`.
    pub fn pass_through(wrap: impl Fn(TypedFrame) -> M + Send + Sync + 'static) -> Self
    where
        M: 'static,
    {
        Self::PassThrough(Box::new(wrap))
    }
}

impl<M> Registry<M> {
    /// An empty registry that rejects unknown type names.
    #[must_use]
    pub fn new() -> Self {
        Self {
            by_name: HashMap::new(),
            by_type: HashMap::new(),
            unknown: UnknownType::Error,
        }
    }

    /// Registers the prost message type `T` under `name`; decoded `T`s become `M`s through
    /// `wrap`.
    pub fn register<T>(
        &mut self,
        name: &str,
        wrap: impl Fn(T) -> M + Send + Sync + 'static,
    ) -> &mut Self
    where
        T: prost::Message + Default + 'static,
        M: 'static,
    {
        let entry = Entry {
            type_id: TypeId::of::<T>(),
            decode: Box::new(move |payload| T::decode(payload).map(&wrap)),
        };
        self.by_name.insert(name.into(), entry);
        self.by_type
            .insert(TypeId::of::<T>(), Bytes::copy_from_slice(name.as_bytes()));
        self
    }

    /// Chooses what happens to frames with unregistered names (default
    /// [`UnknownType::Error`]).
    pub fn set_unknown(&mut self, unknown: UnknownType<M>) -> &mut Self {
        self.unknown = unknown;
        self
    }

    /// Whether `name` is registered.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The name `T` is sent under, if it has one.
    #[must_use]
    pub fn name_of<T: 'static>(&self) -> Option<&str> {
        self.name_bytes(TypeId::of::<T>())
            // invariant: names are stored from `&str`.
            .map(|name| std::str::from_utf8(name).expect("registered names are UTF-8"))
    }

    /// Decodes `frame`'s payload as the type registered under its name.
    ///
    /// # Errors
    ///
    /// [`ProtobufError::UnknownTypeName`] for an unregistered name (unless unknown types pass
    /// through); [`ProtobufError::Decode`], naming the type, when the payload is not a valid
    /// message of the registered type.
    pub fn decode(&self, frame: TypedFrame) -> Result<M, ProtobufError> {
        match (self.by_name.get(frame.name()), &self.unknown) {
            (Some(entry), _) => {
                (entry.decode)(frame.payload().clone()).map_err(|source| ProtobufError::Decode {
                    type_name: frame.name().to_owned(),
                    source,
                })
            }
            (None, UnknownType::PassThrough(wrap)) => Ok(wrap(frame)),
            (None, UnknownType::Error) => Err(ProtobufError::UnknownTypeName {
                type_name: frame.name().to_owned(),
            }),
        }
    }

    /// Encodes `msg` into a frame named after its type.
    ///
    /// # Errors
    ///
    /// [`ProtobufError::UnregisteredType`] when `T` has no name here.
    pub fn encode<T: prost::Message + 'static>(
        &self,
        msg: &T,
    ) -> Result<TypedFrame, ProtobufError> {
        let name = self
            .name_bytes(TypeId::of::<T>())
            .ok_or(ProtobufError::UnregisteredType {
                rust_type: std::any::type_name::<T>(),
            })?;
        Ok(TypedFrame::from_utf8_name(
            name.clone(),
            Bytes::from(msg.encode_to_vec()),
        ))
    }

    /// The frame for `out`: its own for a raw frame, else named after its message's type.
    ///
    /// # Errors
    ///
    /// [`ProtobufError::UnregisteredType`] when the message's type has no name here.
    pub fn frame(&self, out: Outbound) -> Result<TypedFrame, ProtobufError> {
        match out.into_kind() {
            Kind::Frame(frame) => Ok(frame),
            Kind::Message {
                type_id,
                rust_type,
                payload,
            } => match self.name_bytes(type_id) {
                Some(name) => Ok(TypedFrame::from_utf8_name(name.clone(), payload)),
                None => Err(ProtobufError::UnregisteredType { rust_type }),
            },
        }
    }

    /// The name `type_id` is sent under, if that name still decodes to it.
    fn name_bytes(&self, type_id: TypeId) -> Option<&Bytes> {
        let name = self.by_type.get(&type_id)?;
        // invariant: names are stored from `&str`.
        let key = std::str::from_utf8(name).expect("registered names are UTF-8");
        let current = self.by_name.get(key)?;
        (current.type_id == type_id).then_some(name)
    }
}

impl<M> Default for Registry<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> fmt::Debug for Registry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.by_name.keys().map(|k| &**k).collect();
        names.sort_unstable();
        f.debug_struct("Registry")
            .field("names", &names)
            .field("unknown", &self.unknown)
            .finish()
    }
}

impl<M> fmt::Debug for UnknownType<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "Error",
            Self::PassThrough(_) => "PassThrough",
        })
    }
}

/// One registered name: its type, and how to decode and wrap a payload.
struct Entry<M> {
    type_id: TypeId,
    decode: Box<DecodeFn<M>>,
}

type DecodeFn<M> = dyn Fn(Bytes) -> Result<M, prost::DecodeError> + Send + Sync;

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{Registry, UnknownType};
    use crate::protobuf::example::{Msg1, Msg2, Response};
    use crate::protobuf::{AnyMessage, Outbound, ProtobufError, TypedFrame};

    fn any_registry() -> Registry {
        let mut r = Registry::new();
        r.register::<Msg1>("msg1", Into::into)
            .register::<Msg2>("msg2", Into::into);
        r
    }

    #[test]
    fn decodes_by_name_into_any_message() {
        let r = any_registry();
        let frame = TypedFrame::from_static("msg1", &b"\x0a\x02hi\x10\x05"[..]);
        let msg = r.decode(frame).unwrap();
        assert_eq!(
            msg.downcast::<Msg1>().unwrap(),
            Msg1 {
                name: "hi".into(),
                id: 5
            }
        );
    }

    #[test]
    fn unknown_names_error_or_pass_through() {
        let mut r = any_registry();
        let frame = TypedFrame::new("proto.Msg1", &b"\x10\x05"[..]);
        assert_eq!(
            r.decode(frame.clone()).unwrap_err(),
            ProtobufError::UnknownTypeName {
                type_name: "proto.Msg1".into()
            }
        );
        r.set_unknown(UnknownType::pass_through(AnyMessage::new));
        let passed = r.decode(frame.clone()).unwrap();
        assert_eq!(passed.downcast::<TypedFrame>().unwrap(), frame);
        assert!(
            r.decode(TypedFrame::new("msg1", Bytes::new()))
                .unwrap()
                .is::<Msg1>()
        );
        r.set_unknown(UnknownType::Error);
        assert!(r.decode(frame).is_err());
    }

    #[test]
    fn decode_errors_name_the_type() {
        let r = any_registry();
        // Field 1 (string) claims 5 bytes, 2 follow.
        let frame = TypedFrame::from_static("msg2", &b"\x0a\x05ab"[..]);
        let err = r.decode(frame).unwrap_err();
        let ProtobufError::Decode { type_name, source } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(type_name, "msg2");
        assert!(
            err.to_string().starts_with("cannot decode \"msg2\": "),
            "{err}"
        );
        assert!(!source.to_string().is_empty());
    }

    #[test]
    fn encode_uses_the_registered_name() {
        let r = any_registry();
        let frame = r
            .encode(&Msg1 {
                name: "x".into(),
                id: 1,
            })
            .unwrap();
        assert_eq!(
            (frame.name(), &frame.payload()[..]),
            ("msg1", &b"\x0a\x01x\x10\x01"[..])
        );
        assert_eq!(
            r.encode(&Response::default()),
            Err(ProtobufError::UnregisteredType {
                rust_type: std::any::type_name::<Response>()
            })
        );
        assert_eq!(
            r.frame(Outbound::from(Response::default())),
            Err(ProtobufError::UnregisteredType {
                rust_type: std::any::type_name::<Response>()
            })
        );
        let raw = TypedFrame::from_static("anything", &b"\x01"[..]);
        assert_eq!(r.frame(raw.clone().into()), Ok(raw));
        assert_eq!(r.frame(Msg2::default().into()).unwrap().name(), "msg2");
    }

    #[test]
    fn aliases_and_replaced_names() {
        let mut r = any_registry();
        r.register::<Msg1>("proto.Msg1", Into::into);
        assert_eq!(r.name_of::<Msg1>(), Some("proto.Msg1"), "most recent alias");
        assert!(
            r.decode(TypedFrame::new("msg1", Bytes::new()))
                .unwrap()
                .is::<Msg1>()
        );
        // "proto.Msg1" now means Msg2: Msg1 no longer sends under it, and has no other
        // name it was registered with last.
        r.register::<Msg2>("proto.Msg1", Into::into);
        assert_eq!(r.name_of::<Msg1>(), None);
        assert!(r.encode(&Msg1::default()).is_err());
        assert_eq!(r.name_of::<Msg2>(), Some("proto.Msg1"));
        assert!(r.contains("msg1") && r.contains("proto.Msg1") && !r.contains("msg3"));
        // Registering Msg1 again restores a name to send under.
        r.register::<Msg1>("msg1", Into::into);
        assert_eq!(r.name_of::<Msg1>(), Some("msg1"));
    }

    #[test]
    fn debug_lists_names() {
        let r = any_registry();
        assert_eq!(
            format!("{r:?}"),
            r#"Registry { names: ["msg1", "msg2"], unknown: Error }"#
        );
    }
}
