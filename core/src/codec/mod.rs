//! Framing codecs in the tokio-util `Decoder` shape.
//!
//! A [`Decoder`] turns bytes accumulated in a [`BytesMut`] into frames; `Ok(None)` means "need
//! more bytes" and leaves `src` untouched apart from what was consumed for complete frames. An
//! [`Encoder`] appends the wire form of a frame to a [`BytesMut`].
//!
//! | codec | frames | gev / Netty / tokio-util counterpart |
//! |---|---|---|
//! | [`Raw`] | whatever bytes arrived | gev `DefaultProtocol` |
//! | [`Lines`] | `\n`-terminated lines, `\r\n` tolerated | Netty `LineBasedFrameDecoder`, tokio-util `LinesCodec` |
//! | [`LengthDelimited`] | length-prefixed frames | Netty `LengthFieldBasedFrameDecoder`, tokio-util `LengthDelimitedCodec` |
//!
//! Every codec bounds what a peer controls: a declared or accumulated length over the configured
//! maximum is a [`CodecError`] raised *before* anything is buffered for that frame. (`Raw` has
//! no frames to bound; it only hands over what the connection already read, optionally cut into
//! pieces of a maximum size.)
//!
//! All three decode to [`Bytes`](bytes::Bytes) split off the receive buffer (no copy) and encode
//! from `Bytes` or `&[u8]`. [`LengthDelimited::encode_header`] writes only the header, so a
//! zero-copy sender can queue the header and the payload `Bytes` as two chunks.
//!
//! Errors split along who is at fault: [`CodecError::FrameTooLong`],
//! [`CodecError::InvalidLength`] and [`CodecError::Truncated`] come from decoding what the peer
//! sent; [`CodecError::Encode`] means the local caller asked for a frame the codec cannot write.
//! Invalid configurations never reach a codec: [`LengthDelimitedBuilder::build`] rejects them
//! with a [`LengthConfigError`].
//!
//! ```
//! use bytes::BytesMut;
//! use gale_core::codec::{Decoder, Encoder, Lines};
//!
//! let mut codec = Lines::new();
//! let mut wire = BytesMut::new();
//! codec.encode(&b"hello"[..], &mut wire).unwrap();
//! assert_eq!(&wire[..], b"hello\n");
//! assert_eq!(codec.decode(&mut wire).unwrap().as_deref(), Some(&b"hello"[..]));
//! ```

#[cfg(any(test, feature = "fuzzing"))]
mod fuzz;
mod length;
mod lines;
mod raw;

pub use length::{Endian, LengthConfigError, LengthDelimited, LengthDelimitedBuilder, LengthWidth};
pub use lines::Lines;
pub use raw::Raw;

#[cfg(feature = "fuzzing")]
pub use fuzz::{fuzz_length_delimited, fuzz_lines, fuzz_raw};

use bytes::BytesMut;

/// Decodes frames from a byte buffer (the tokio-util `Decoder` shape).
pub trait Decoder {
    /// The decoded frame.
    type Item;
    /// Why decoding failed. After an error the stream is unusable and should be closed.
    type Error;

    /// Decodes one frame from the front of `src`.
    ///
    /// Returns `Ok(Some(frame))` and consumes the frame's bytes, or `Ok(None)` when `src` does
    /// not yet hold a whole frame (nothing is consumed then, though the decoder may remember
    /// how far it has scanned).
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error>;

    /// Called once the peer has sent its last byte: decodes what is left.
    ///
    /// The default decodes normally and reports bytes left over as
    /// [`CodecError::Truncated`]-style errors through [`Decoder::eof_error`].
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(self.eof_error(src.len())),
        }
    }

    /// The error for `buffered` bytes of an unfinished frame at end of stream.
    fn eof_error(&mut self, buffered: usize) -> Self::Error;

    /// How many bytes the frame in progress needs in total, when the header already says so.
    ///
    /// Connections use this to grow the receive buffer once to the frame's size instead of
    /// doubling repeatedly. The default knows nothing (`None`).
    fn frame_size_hint(&self, _src: &BytesMut) -> Option<usize> {
        None
    }
}

/// Encodes frames into a byte buffer (the tokio-util `Encoder` shape).
pub trait Encoder<Item> {
    /// Why encoding failed.
    type Error;

    /// Appends the wire form of `item` to `dst`.
    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), Self::Error>;
}

/// Removes the first `n` bytes of `src` (`n <= src.len()`) and returns them.
///
/// When they are all of `src` and `src` has no spare capacity (gale's receive buffer
/// allocates exactly what arrived), the whole buffer is taken: a frozen frame then owns its
/// allocation outright, where a split would first allocate a shared-ownership header. A
/// buffer with spare capacity (a tokio-util `Framed` read buffer) is split as usual, so it
/// keeps that capacity for the next read.
pub(crate) fn take_front(src: &mut BytesMut, n: usize) -> BytesMut {
    if n == src.len() && n == src.capacity() {
        std::mem::take(src)
    } else {
        src.split_to(n)
    }
}

/// Why a codec could not decode or encode a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame declared or reached a length over the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLong {
        /// The declared length, or the length seen so far when no length is declared.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A length field, after adjustment, does not describe a valid frame.
    #[error("invalid length field: {0}")]
    InvalidLength(&'static str),
    /// The stream ended inside a frame.
    #[error("stream ended with {buffered} bytes of an unfinished frame")]
    Truncated {
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// A frame could not be encoded (for example a payload too long for the length field).
    #[error("cannot encode frame: {0}")]
    Encode(&'static str),
}
