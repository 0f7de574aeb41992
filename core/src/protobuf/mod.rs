//! Protobuf messaging: gev's typed framing, varint-delimited streams, and a registry that
//! turns frames into typed [`prost`] messages.
//!
//! Two framings carry protobuf messages over a byte stream:
//!
//! | framing | codec (bytes) | protocol (typed messages) | used by |
//! |---|---|---|---|
//! | `u32` BE length, `u16` BE type-name length, type name, payload | [`GevProtobuf`] ([`TypedFrame`]s) | [`TypedProtobuf`] (a [`Registry`] picks the type by name) | gev `plugins/protobuf` |
//! | varint length, payload | [`VarintDelimited`] ([`Bytes`](bytes::Bytes)) | [`VarintProtobuf<M>`] (one message type) | `prost::Message::encode_length_delimited`, Java `writeDelimitedTo` / `parseDelimitedFrom`, Netty `ProtobufVarint32FrameDecoder` + `ProtobufVarint32LengthFieldPrepender` |
//!
//! ```text
//!  gev typed frame                                   varint-delimited message
//!  +----------+----------+-----------+---------+     +-------------+---------+
//!  | total    | name_len | type name | payload |     | len         | payload |
//!  | u32 BE   | u16 BE   | name_len  |         |     | varint,     | len     |
//!  |          |          | bytes     |         |     | 1..=10 B    | bytes   |
//!  +----------+----------+-----------+---------+     +-------------+---------+
//!             |<------------ total ----------->|
//! ```
//!
//! Both codecs bound what the peer controls (frame length, type-name length, varint length)
//! and fail with a [`ProtobufError`] as soon as the header shows a violation, before any of the
//! payload is buffered. Decoding splits frames off the receive buffer without copying; the
//! protocols queue large payloads as their own chunks, so sending copies only the header (and
//! payloads small enough to share its chunk).
//!
//! A [`Registry<M>`] maps type names to prost message types and wraps each decoded message
//! into the handler's message type `M`: an enum of your own, or [`AnyMessage`] with
//! [`downcast`](AnyMessage::downcast). Names the registry does not know are an error or are
//! passed through as raw frames ([`UnknownType`]). Sending goes through [`Outbound`], built from
//! any registered message; the registry supplies the name.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::{Buf, BytesMut};
//! use gale_core::protobuf::example::{Msg1, Msg2};
//! use gale_core::protobuf::{AnyMessage, GevProtobuf, Registry};
//! use gale_core::codec::Decoder;
//!
//! let mut registry = Registry::<AnyMessage>::new();
//! registry
//!     .register::<Msg1>("msg1", Into::into)
//!     .register::<Msg2>("msg2", Into::into);
//!
//! // What gev's `protobuf.PackMessage("msg1", data)` writes.
//! let hello = Msg1 { name: "hello".into(), id: 1 };
//! let frame = registry.encode(&hello).unwrap();
//! let mut wire = BytesMut::new();
//! GevProtobuf::new().encode_frame(&frame, &mut wire).unwrap();
//! assert_eq!(&wire[..10], b"\x00\x00\x00\x0f\x00\x04msg1");
//!
//! // And back.
//! let frame = GevProtobuf::new().decode(&mut wire).unwrap().unwrap();
//! let msg = registry.decode(frame).unwrap();
//! assert_eq!(msg.downcast::<Msg1>().unwrap(), hello);
//! ```
//!
//! [`example`] holds gev's example messages (`Msg1`, `Msg2`, `Response`) written by hand with
//! prost's derive, so no `protoc` is needed.

mod any;
mod error;
pub mod example;
mod frame;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz;
mod gev;
mod protocols;
mod registry;
#[cfg(test)]
mod tests;
mod varint;

pub use any::{AnyMessage, Outbound};
pub use error::ProtobufError;
pub use frame::TypedFrame;
pub use gev::GevProtobuf;
pub use protocols::{TypedProtobuf, VarintProtobuf};
pub use registry::{Registry, UnknownType};
pub use varint::VarintDelimited;

#[cfg(feature = "fuzzing")]
pub use fuzz::{fuzz_gev_protobuf, fuzz_protobuf_registry, fuzz_varint_delimited};
