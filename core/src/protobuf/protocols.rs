//! The protobuf codecs as connection [`Protocol`]s: raw frames ([`GevProtobuf`],
//! [`VarintDelimited`]) and typed messages ([`TypedProtobuf`], [`VarintProtobuf`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{
    AnyMessage, GevProtobuf, Outbound, ProtobufError, Registry, TypedFrame, VarintDelimited,
};
use crate::codec::Decoder;
use crate::protocol::{Protocol, ProtocolCx, ProtocolError};

/// gev's typed framing with a [`Registry`]: the handler receives decoded messages (`M`: an
/// enum of your own or [`AnyMessage`]) and sends [`Outbound`]s, which any registered prost
/// message converts into.
///
/// Limits are [`GevProtobuf`]'s (4 MiB frames, 256-byte names by default), reachable through
/// [`codec_mut`](Self::codec_mut). A frame that breaks them, an unknown type name (unless the
/// registry passes unknown types through) and a payload that does not decode close the
/// connection with [`CloseReason::Protocol`](crate::CloseReason::Protocol) carrying the
/// [`ProtobufError`]. Sending a message whose type is not registered fails with
/// [`SendError::Encode`](crate::SendError::Encode) and sends nothing.
///
/// ```
/// use std::sync::Arc;
/// use gale_core::protobuf::example::{Msg1, Msg2};
/// use gale_core::protobuf::{AnyMessage, Registry, TypedProtobuf};
/// use gale_core::{Context, Handler};
///
/// /// Answers every `msg1` with a `msg2`, as a gev server would.
/// struct Server {
///     registry: Arc<Registry>,
/// }
///
/// impl Handler for Server {
///     type Protocol = TypedProtobuf;
///     type State = ();
///
///     fn protocol(&self) -> TypedProtobuf {
///         TypedProtobuf::new(self.registry.clone())
///     }
///
///     fn on_message(&self, cx: &mut Context<'_, Self>, msg: AnyMessage) {
///         if let Ok(msg1) = msg.downcast::<Msg1>() {
///             let alias = format!("big {}", msg1.name);
///             let _ = cx.send(Msg2 { name: msg1.name, alias, id: msg1.id + 1 }.into());
///         }
///     }
/// }
///
/// let mut registry = Registry::new();
/// registry.register::<Msg1>("msg1", Into::into).register::<Msg2>("msg2", Into::into);
/// let server = Server { registry: Arc::new(registry) };
/// ```
pub struct TypedProtobuf<M = AnyMessage> {
    codec: GevProtobuf,
    registry: Arc<Registry<M>>,
}

impl<M> TypedProtobuf<M> {
    /// A protocol decoding through `registry`, with the default limits.
    #[must_use]
    pub fn new(registry: Arc<Registry<M>>) -> Self {
        Self::with_codec(registry, GevProtobuf::new())
    }

    /// A protocol decoding through `registry`, framing with `codec` (its limits).
    #[must_use]
    pub fn with_codec(registry: Arc<Registry<M>>, codec: GevProtobuf) -> Self {
        Self { codec, registry }
    }

    /// The framing codec.
    #[must_use]
    pub fn codec(&self) -> &GevProtobuf {
        &self.codec
    }

    /// The framing codec, to change its limits.
    pub fn codec_mut(&mut self) -> &mut GevProtobuf {
        &mut self.codec
    }

    /// The registry.
    #[must_use]
    pub fn registry(&self) -> &Arc<Registry<M>> {
        &self.registry
    }
}

impl<M> fmt::Debug for TypedProtobuf<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedProtobuf")
            .field("codec", &self.codec)
            .field("registry", &self.registry)
            .finish()
    }
}

impl<M: Send + 'static> Protocol for TypedProtobuf<M> {
    type Message = M;
    type Outgoing = Outbound;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<M>, ProtocolError> {
        match Decoder::decode(&mut self.codec, src)? {
            Some(frame) => Ok(Some(self.registry.decode(frame)?)),
            None => Ok(None),
        }
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<M>, ProtocolError> {
        match Decoder::decode_eof(&mut self.codec, src)? {
            Some(frame) => Ok(Some(self.registry.decode(frame)?)),
            None => Ok(None),
        }
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Outbound) -> Result<(), ProtocolError> {
        let frame = self.registry.frame(msg)?;
        send_gev(&self.codec, cx, &frame)
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        Decoder::frame_size_hint(&self.codec, src)
    }
}

/// Varint-delimited messages of one prost type `M`, the Netty / Java `writeDelimitedTo` way:
/// the handler receives and sends `M`s.
///
/// Limits are [`VarintDelimited`]'s (4 MiB messages by default), reachable through
/// [`codec_mut`](Self::codec_mut). A payload that does not decode as `M` closes the connection
/// with [`ProtobufError::Decode`] naming `M`'s Rust type.
///
/// ```
/// use gale_core::protobuf::VarintProtobuf;
/// use gale_core::protobuf::example::Msg2;
/// use gale_core::{Context, Handler};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type Protocol = VarintProtobuf<Msg2>;
///     type State = ();
///
///     fn protocol(&self) -> VarintProtobuf<Msg2> {
///         VarintProtobuf::new()
///     }
///
///     fn on_message(&self, cx: &mut Context<'_, Self>, msg: Msg2) {
///         let _ = cx.send(msg);
///     }
/// }
/// ```
pub struct VarintProtobuf<M> {
    codec: VarintDelimited,
    message: PhantomData<fn() -> M>,
}

impl<M> VarintProtobuf<M> {
    /// A protocol with the default limit.
    #[must_use]
    pub fn new() -> Self {
        Self::with_codec(VarintDelimited::new())
    }

    /// A protocol framing with `codec` (its limit).
    #[must_use]
    pub fn with_codec(codec: VarintDelimited) -> Self {
        Self {
            codec,
            message: PhantomData,
        }
    }

    /// The framing codec.
    #[must_use]
    pub fn codec(&self) -> &VarintDelimited {
        &self.codec
    }

    /// The framing codec, to change its limit.
    pub fn codec_mut(&mut self) -> &mut VarintDelimited {
        &mut self.codec
    }

    fn decode_message(payload: Bytes) -> Result<M, ProtobufError>
    where
        M: prost::Message + Default,
    {
        M::decode(payload).map_err(|source| ProtobufError::Decode {
            type_name: std::any::type_name::<M>().to_owned(),
            source,
        })
    }
}

impl<M> Default for VarintProtobuf<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Clone for VarintProtobuf<M> {
    fn clone(&self) -> Self {
        Self::with_codec(self.codec.clone())
    }
}

impl<M> fmt::Debug for VarintProtobuf<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VarintProtobuf")
            .field("message", &std::any::type_name::<M>())
            .field("codec", &self.codec)
            .finish()
    }
}

impl<M: prost::Message + Default + 'static> Protocol for VarintProtobuf<M> {
    type Message = M;
    type Outgoing = M;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<M>, ProtocolError> {
        match Decoder::decode(&mut self.codec, src)? {
            Some(payload) => Ok(Some(Self::decode_message(payload)?)),
            None => Ok(None),
        }
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<M>, ProtocolError> {
        match Decoder::decode_eof(&mut self.codec, src)? {
            Some(payload) => Ok(Some(Self::decode_message(payload)?)),
            None => Ok(None),
        }
    }

    /// Encodes the varint and the message into one chunk.
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: M) -> Result<(), ProtocolError> {
        let len = msg.encoded_len();
        let mut buf = BytesMut::with_capacity(prost::length_delimiter_len(len) + len);
        self.codec.encode_header(len, &mut buf)?;
        msg.encode(&mut buf)
            .map_err(|_| ProtobufError::Encode("message encoding failed"))?;
        cx.send(buf.freeze());
        Ok(())
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        Decoder::frame_size_hint(&self.codec, src)
    }
}

impl Protocol for GevProtobuf {
    type Message = TypedFrame;
    type Outgoing = TypedFrame;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<TypedFrame>, ProtocolError> {
        Ok(Decoder::decode(self, src)?)
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<TypedFrame>, ProtocolError> {
        Ok(Decoder::decode_eof(self, src)?)
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: TypedFrame) -> Result<(), ProtocolError> {
        send_gev(self, cx, &msg)
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        Decoder::frame_size_hint(self, src)
    }
}

impl Protocol for VarintDelimited {
    type Message = Bytes;
    type Outgoing = Bytes;

    fn decode(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(Decoder::decode(self, src)?)
    }

    fn decode_eof(
        &mut self,
        _cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(Decoder::decode_eof(self, src)?)
    }

    /// Queues the varint and the payload as two chunks: the payload is not copied.
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        let mut header = BytesMut::with_capacity(Self::MAX_VARINT_LEN);
        self.encode_header(msg.len(), &mut header)?;
        cx.send(header.freeze());
        if !msg.is_empty() {
            cx.send(msg);
        }
        Ok(())
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        Decoder::frame_size_hint(self, src)
    }
}

/// Queues a gev frame: the header and name as one chunk, then the payload, copied into the
/// same chunk when small and queued as its own chunk (no copy) otherwise.
fn send_gev(
    codec: &GevProtobuf,
    cx: &mut ProtocolCx<'_>,
    frame: &TypedFrame,
) -> Result<(), ProtocolError> {
    let payload = frame.payload();
    let inline = payload.len() <= COPY_PAYLOAD_UP_TO;
    let capacity = 6 + frame.name().len() + if inline { payload.len() } else { 0 };
    let mut buf = BytesMut::with_capacity(capacity);
    codec.encode_header(frame.name(), payload.len(), &mut buf)?;
    if inline {
        buf.extend_from_slice(payload);
        cx.send(buf.freeze());
    } else {
        cx.send(buf.freeze());
        cx.send(payload.clone());
    }
    Ok(())
}

/// Payloads up to this size are copied next to their header: one chunk to queue and write
/// instead of two, for a copy no dearer than the second chunk's bookkeeping.
const COPY_PAYLOAD_UP_TO: usize = 256;
