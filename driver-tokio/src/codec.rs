//! gale-core codecs as tokio-util codecs (feature `codec`).
//!
//! [`Compat`] wraps any gale-core [`Decoder`] / [`Encoder`] so it plugs into
//! [`tokio_util::codec::Framed`], `FramedRead` and `FramedWrite`: the same framing, with the
//! same limits, on a tokio stream of your own (a client, a proxy, a test).
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::{SinkExt, StreamExt};
//! use gale_tokio::codec::Compat;
//! use gale_tokio::gale_core::codec::Lines;
//! use tokio_util::codec::Framed;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (a, b) = tokio::io::duplex(1024);
//! let mut a = Framed::new(a, Compat::new(Lines::new()));
//! let mut b = Framed::new(b, Compat::new(Lines::new()));
//! a.send(Bytes::from_static(b"hello")).await.unwrap();
//! assert_eq!(b.next().await.unwrap().unwrap(), "hello");
//! # });
//! ```

use std::fmt;
use std::io;

use bytes::BytesMut;
use gale_core::codec::{Decoder, Encoder};

/// A gale-core codec usable as a tokio-util codec.
#[derive(Debug, Clone, Default)]
pub struct Compat<C>(C);

impl<C> Compat<C> {
    /// Wraps `codec`.
    pub fn new(codec: C) -> Self {
        Self(codec)
    }

    /// The wrapped codec.
    pub fn get_ref(&self) -> &C {
        &self.0
    }

    /// The wrapped codec, to change.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.0
    }

    /// Unwraps the codec.
    pub fn into_inner(self) -> C {
        self.0
    }
}

/// Why a [`Compat`] codec failed: the gale codec's error, or the stream's I/O error
/// (tokio-util codecs must carry both).
#[derive(Debug)]
#[non_exhaustive]
pub enum CompatError<E> {
    /// The codec rejected the bytes (or the frame to encode).
    Codec(E),
    /// Reading or writing the underlying stream failed.
    Io(io::Error),
}

impl<E> From<io::Error> for CompatError<E> {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl<E: fmt::Display> fmt::Display for CompatError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Codec(e) => e.fmt(f),
            Self::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CompatError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::Io(e) => Some(e),
        }
    }
}

impl<C: Decoder> tokio_util::codec::Decoder for Compat<C> {
    type Item = C::Item;
    type Error = CompatError<C::Error>;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<C::Item>, Self::Error> {
        let frame = self.0.decode(src).map_err(CompatError::Codec)?;
        if frame.is_none() {
            // Grow once to the announced frame size (bounded by the codec's maximum, which
            // `decode` has just checked) instead of doubling repeatedly.
            if let Some(total) = self.0.frame_size_hint(src) {
                src.reserve(total.saturating_sub(src.len()));
            }
        }
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<C::Item>, Self::Error> {
        self.0.decode_eof(src).map_err(CompatError::Codec)
    }
}

impl<C: Encoder<I>, I> tokio_util::codec::Encoder<I> for Compat<C> {
    type Error = CompatError<C::Error>;

    fn encode(&mut self, item: I, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.0.encode(item, dst).map_err(CompatError::Codec)
    }
}
