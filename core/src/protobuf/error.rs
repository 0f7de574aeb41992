//! [`ProtobufError`]: everything that can go wrong framing, decoding or encoding protobuf.

/// Why a protobuf codec, registry or protocol could not go on.
///
/// The variants split by who is at fault. A peer that sends a bad frame or a message that
/// does not decode causes one of the decode variants; the connection closes with
/// [`CloseReason::Protocol`](crate::CloseReason::Protocol). A local caller asking to send
/// something the framing cannot carry, or a message type it never registered, gets
/// [`Encode`](Self::Encode) or [`UnregisteredType`](Self::UnregisteredType) back from
/// [`Context::send`](crate::Context::send) (as [`SendError::Encode`](crate::SendError::Encode)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtobufError {
    /// A frame declared a length over the configured maximum. For [`GevProtobuf`] `len` is the
    /// whole frame on the wire (the 4-byte length field included); for [`VarintDelimited`] it
    /// is the declared message length.
    ///
    /// [`GevProtobuf`]: super::GevProtobuf
    /// [`VarintDelimited`]: super::VarintDelimited
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLong {
        /// The declared length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A gev frame's length field is below 2, too short for the type-name length that must
    /// follow it.
    #[error("gev frame length {len} is shorter than its 2-byte type-name length")]
    FrameTooShort {
        /// The declared length (0 or 1).
        len: u32,
    },
    /// A gev frame declared a type name longer than the configured maximum.
    #[error("type name of {len} bytes exceeds the maximum of {max}")]
    TypeNameTooLong {
        /// The declared type-name length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A gev frame declared a type name longer than the frame itself.
    #[error("type name of {name_len} bytes does not fit the {available} bytes left in the frame")]
    TypeNameOverrun {
        /// The declared type-name length.
        name_len: usize,
        /// Bytes of the frame after the type-name length field.
        available: usize,
    },
    /// A gev frame's type name is not UTF-8.
    #[error("type name is not UTF-8: {0}")]
    InvalidTypeName(std::str::Utf8Error),
    /// A varint length prefix has its continuation bit set on its 10th byte: no 64-bit value
    /// is that long.
    #[error("varint length prefix runs past 10 bytes")]
    VarintTooLong,
    /// A 10-byte varint length prefix carries bits above the 64th.
    #[error("varint length prefix overflows 64 bits")]
    VarintOverflow,
    /// The stream ended inside a frame.
    #[error("stream ended with {buffered} bytes of an unfinished frame")]
    Truncated {
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// A frame named a type the [`Registry`](super::Registry) does not know, and the registry
    /// rejects unknown types ([`UnknownType::Error`](super::UnknownType::Error)).
    #[error("unknown message type {type_name:?}")]
    UnknownTypeName {
        /// The name the frame carried.
        type_name: String,
    },
    /// A payload did not decode as the message type its frame named.
    #[error("cannot decode {type_name:?}: {source}")]
    Decode {
        /// The type name the frame carried (gev framing), or the Rust type expected
        /// ([`VarintProtobuf`](super::VarintProtobuf)).
        type_name: String,
        /// What prost reported.
        source: prost::DecodeError,
    },
    /// Caller misuse: a message of a Rust type the registry has no name for was sent.
    #[error("message type {rust_type} is not registered")]
    UnregisteredType {
        /// The Rust type's name.
        rust_type: &'static str,
    },
    /// Caller misuse: a frame the codec cannot write (too long for the configured maximum or
    /// for its length fields).
    #[error("cannot encode frame: {0}")]
    Encode(&'static str),
}
