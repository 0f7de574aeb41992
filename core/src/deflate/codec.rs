//! [`PerMessageDeflate`]: compressing and inflating message payloads (RFC 7692 §7.2).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{DeflateConfig, DeflateParams};

/// Why a payload could not be (de)compressed. [`close_code`](Self::close_code) is the
/// WebSocket close code to fail the connection with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// The message would inflate to more than `max` bytes; detected as the byte past
    /// the limit is produced, before anything past the limit is buffered (1009).
    #[error("decompressed message exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The limit passed to [`PerMessageDeflate::decompress_fragment`].
        max: usize,
    },
    /// The peer's payload is not valid DEFLATE data, or refers back past its window (1007).
    #[error("invalid compressed payload: {0}")]
    InvalidData(Arc<str>),
    /// The compressor failed; a bug, never caused by the payload (1011).
    #[error("compression failed: {0}")]
    Compress(Arc<str>),
}

impl DeflateError {
    /// The close code for this error (RFC 6455 §7.4.1): 1009 (message too big), 1007
    /// (invalid payload data), or 1011 (internal error).
    pub fn close_code(&self) -> u16 {
        match self {
            Self::MessageTooLarge { .. } => 1009,
            Self::InvalidData(_) => 1007,
            Self::Compress(_) => 1011,
        }
    }
}

/// The permessage-deflate transform of one connection: compresses outgoing payloads and
/// inflates incoming ones under the negotiated [`DeflateParams`].
///
/// ```text
///   send:    payload ─ deflate, sync flush ─► …compressed… 00 00 ff ff ─ strip tail ─► frame(s), RSV1 on the first
///   receive: frame(s) with RSV1 on the first ─► fragment, fragment, … + 00 00 ff ff ─ inflate ─► message
/// ```
///
/// The WebSocket layer decides per message: compress when
/// [`should_compress`](Self::should_compress) says so and set RSV1 on the message's first
/// frame; inflate the payloads of a message whose first frame had RSV1 (continuation
/// frames never carry it), fragment by fragment, with
/// [`decompress_fragment`](Self::decompress_fragment), passing `fin` with the last one;
/// take the message with [`take_inflated`](Self::take_inflated). Control frames are never
/// compressed.
///
/// Compressor and decompressor are created on first use; where no context takeover was
/// agreed for a direction, its state is freed after every message, so an idle connection
/// holds none.
///
/// ```
/// use gale_core::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};
/// use bytes::BytesMut;
///
/// let mut pmd = PerMessageDeflate::new(DeflateParams::default(), &DeflateConfig::default());
/// // RFC 7692 §7.2.3.1: "Hello" in two fragments.
/// let part = pmd.decompress_fragment(&[0xf2, 0x48, 0xcd], false, 1024)?;
/// assert_eq!(part, b"He");
/// let rest = pmd.decompress_fragment(&[0xc9, 0xc9, 0x07, 0x00], true, 1024)?;
/// assert_eq!(rest, b"llo");
/// assert_eq!(&pmd.take_inflated()[..], b"Hello");
///
/// let mut out = BytesMut::new();
/// pmd.compress(b"Hello", &mut out)?;
/// assert_eq!(&out[..], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// # Ok::<(), gale_core::deflate::DeflateError>(())
/// ```
pub struct PerMessageDeflate {
    params: DeflateParams,
    level: Compression,
    threshold: usize,
    deflate: Option<Compress>,
    inflate: Option<Decompress>,
    /// Inflated bytes not yet taken.
    inflated: Vec<u8>,
    /// Bytes inflated for the message in progress (taken or not), against `max_size`.
    message_len: usize,
    /// Between a message's first fragment and its last.
    in_message: bool,
    /// The message's DEFLATE stream ended with a BFINAL block; the rest is ignored.
    stream_ended: bool,
    /// Messages compressed and messages inflated so far.
    compressed: u64,
    inflated_count: u64,
}

impl PerMessageDeflate {
    /// The transform for a connection that agreed on `params`, with the compression level
    /// and threshold of `config`. Allocates nothing.
    pub fn new(params: DeflateParams, config: &DeflateConfig) -> Self {
        Self {
            params,
            level: Compression::new(config.level()),
            threshold: config.threshold(),
            deflate: None,
            inflate: None,
            inflated: Vec::new(),
            message_len: 0,
            in_message: false,
            stream_ended: false,
            compressed: 0,
            inflated_count: 0,
        }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether a message of `len` bytes should be sent compressed: at least the
    /// configured [`threshold`](DeflateConfig::threshold).
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Appends the compressed form of the message `payload` to `out`: DEFLATE with a sync
    /// flush, minus the trailing `00 00 ff ff` (RFC 7692 §7.2.1); an empty payload
    /// becomes the single byte `00`. Without context takeover the compressor is freed
    /// afterwards; with it, the next message may refer back into this one.
    ///
    /// Incompressible payloads grow: by up to 1/8 at level 1 (it always uses fixed Huffman
    /// codes), by 5 bytes per 16-64 KiB stored block plus 1 at higher levels. Sending such
    /// a message uncompressed instead is only possible without context takeover (the
    /// compressor's window already holds it).
    ///
    /// On error `out` is left as it was and the compressor is reset.
    pub fn compress(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), DeflateError> {
        let start = out.len();
        let result = self.compress_into(payload, out);
        if result.is_err() {
            out.truncate(start);
            self.deflate = None;
            return result;
        }
        self.compressed += 1;
        if self.params.server_no_context_takeover() {
            self.deflate = None;
        }
        result
    }

    /// Inflates the next fragment of a compressed message, appending to the inflated
    /// bytes, and returns what this fragment added (for incremental UTF-8 checks). With
    /// `fin` (the message's last fragment) the `00 00 ff ff` tail is inflated too and
    /// the message ends: take it with [`take_inflated`](Self::take_inflated).
    ///
    /// `max_size` bounds the whole inflated message: the error is raised as soon as the
    /// message would exceed it, and the buffer never grows past it (inflation runs in
    /// bounded steps, so a small "zip bomb" costs at most `max_size` bytes). Errors end
    /// the message and drop the decompressor: fail the connection with
    /// [`DeflateError::close_code`].
    ///
    /// A stream that ends with a BFINAL block (§7.2.3.4) is accepted; bytes after that
    /// block are ignored and the next message starts with an empty window.
    pub fn decompress_fragment(
        &mut self,
        fragment: &[u8],
        fin: bool,
        max_size: usize,
    ) -> Result<&[u8], DeflateError> {
        if !self.in_message {
            self.in_message = true;
            self.message_len = 0;
            self.stream_ended = false;
            if !self.inflated.is_empty() {
                self.inflated = Vec::new(); // the previous message was never taken
            }
        }
        let start = self.inflated.len();
        let mut result = self.inflate_input(fragment, max_size);
        if result.is_ok() && fin {
            result = self.inflate_input(&TAIL, max_size);
        }
        if let Err(e) = result {
            self.inflate = None;
            self.inflated = Vec::new();
            self.in_message = false;
            return Err(e);
        }
        if fin {
            self.in_message = false;
            self.inflated_count += 1;
            if self.params.client_no_context_takeover() || self.stream_ended {
                self.inflate = None;
            }
        }
        Ok(&self.inflated[start..])
    }

    /// Inflates a whole single-frame message: [`decompress_fragment`] with `fin`, then
    /// [`take_inflated`].
    ///
    /// [`decompress_fragment`]: Self::decompress_fragment
    /// [`take_inflated`]: Self::take_inflated
    pub fn decompress(&mut self, payload: &[u8], max_size: usize) -> Result<Bytes, DeflateError> {
        self.decompress_fragment(payload, true, max_size)?;
        Ok(self.take_inflated())
    }

    /// The inflated bytes not taken yet, as one buffer (no copy): after the last fragment,
    /// the whole message. Taking mid-message is allowed (the message goes on, still counted
    /// against its `max_size`).
    pub fn take_inflated(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.inflated))
    }

    /// Messages [`compress`](Self::compress)ed so far: each one went out with RSV1.
    pub fn messages_compressed(&self) -> u64 {
        self.compressed
    }

    /// Compressed messages inflated so far (counted when their last fragment was
    /// inflated without error).
    pub fn messages_inflated(&self) -> u64 {
        self.inflated_count
    }

    /// Whether compressor state is allocated (between messages: only with context
    /// takeover, after the first compressed message).
    pub fn has_compressor(&self) -> bool {
        self.deflate.is_some()
    }

    /// Whether decompressor state is allocated (between messages: only with context
    /// takeover, after the first compressed message).
    pub fn has_decompressor(&self) -> bool {
        self.inflate.is_some()
    }

    /// Capacity of the inflate buffer (for the fuzz helper's bound check).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn inflate_capacity(&self) -> usize {
        self.inflated.capacity()
    }

    fn compress_into(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), DeflateError> {
        let (level, bits) = (self.level, self.params.server_max_window_bits().zlib());
        let deflater = self
            .deflate
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        let start = out.len();
        let mut input = payload;
        // Text shrinks a lot; start small and grow (the zeroing is cheap next to deflate).
        let mut room = payload.len() / 4 + FLUSH_SLACK;
        loop {
            let len = out.len();
            out.resize(len + room, 0);
            let (before_in, before_out) = (deflater.total_in(), deflater.total_out());
            let status = deflater.compress(input, &mut out[len..], FlushCompress::Sync);
            let consumed = (deflater.total_in() - before_in) as usize;
            let produced = (deflater.total_out() - before_out) as usize;
            out.truncate(len + produced);
            status.map_err(|e| DeflateError::Compress(e.to_string().into()))?;
            input = input.get(consumed..).unwrap_or_default();
            if input.is_empty() && produced < room {
                break; // output space left over: the sync flush is complete
            }
            if consumed == 0 && produced == 0 {
                return Err(DeflateError::Compress("deflate made no progress".into()));
            }
            room = input.len() + FLUSH_SLACK;
        }
        if out.len() == start && payload.is_empty() {
            // A flush right after a flush writes nothing (zlib returns Z_BUF_ERROR); the
            // stream is byte-aligned, so the empty message is an empty stored block.
            out.extend_from_slice(&[0x00]);
            return Ok(());
        }
        if out.len() < start + TAIL.len() || !out.ends_with(&TAIL) {
            return Err(DeflateError::Compress(
                "sync flush did not end with 00 00 ff ff".into(),
            ));
        }
        out.truncate(out.len() - TAIL.len());
        Ok(())
    }

    /// Feeds `input` to the decompressor, growing `inflated` in bounded steps, never past
    /// what `max_size` leaves for this message.
    fn inflate_input(&mut self, mut input: &[u8], max_size: usize) -> Result<(), DeflateError> {
        let bits = self.params.client_max_window_bits().zlib();
        let inflater = self
            .inflate
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let too_large = DeflateError::MessageTooLarge { max: max_size };
        while !self.stream_ended {
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let room = max_size.saturating_sub(self.message_len);
            let out = &mut self.inflated;
            let status = if out.len() < out.capacity() || room > 0 {
                if out.len() == out.capacity() {
                    out.reserve_exact(room.min(out.capacity().max(MIN_GROWTH)));
                }
                inflater.decompress_vec(input, out, FlushDecompress::None)
            } else {
                // No room left: would the message go on? Probe with one byte on the stack.
                let mut probe = [0u8; 1];
                inflater.decompress(input, &mut probe, FlushDecompress::None)
            }
            .map_err(|e| DeflateError::InvalidData(e.to_string().into()))?;
            let consumed = (inflater.total_in() - before_in) as usize;
            let produced = (inflater.total_out() - before_out) as usize;
            self.message_len += produced;
            if self.message_len > max_size {
                return Err(too_large);
            }
            input = input.get(consumed..).unwrap_or_default();
            if status == Status::StreamEnd {
                self.stream_ended = true;
            } else if input.is_empty() && (out.len() < out.capacity() || produced == 0) {
                break; // all input taken and nothing held back
            } else if consumed == 0 && produced == 0 {
                return Err(DeflateError::InvalidData("inflate made no progress".into()));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("params", &self.params)
            .field("level", &self.level.level())
            .field("threshold", &self.threshold)
            .field("has_compressor", &self.has_compressor())
            .field("has_decompressor", &self.has_decompressor())
            .field("inflated", &self.inflated.len())
            .field("in_message", &self.in_message)
            .field("messages_compressed", &self.compressed)
            .field("messages_inflated", &self.inflated_count)
            .finish()
    }
}

/// The empty stored block a sync flush ends with, stripped by the sender and appended by
/// the receiver (RFC 7692 §7.2.1, §7.2.2).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output room beyond the input estimate: block headers and the sync flush marker.
const FLUSH_SLACK: usize = 64;

/// The first inflate buffer and the smallest growth step.
const MIN_GROWTH: usize = 4096;
