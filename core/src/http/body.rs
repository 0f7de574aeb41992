//! Request bodies: `Content-Length` and the chunked transfer coding.
//!
//! A `Content-Length` body is split off the receive buffer without copying once it has all
//! arrived. A chunked body is decoded as it arrives, chunk data copied into one contiguous
//! buffer, and the chunk framing consumed, so the receive buffer holds at most one
//! chunk-size or trailer line. The chunked layout
//! ([RFC 9112 §7.1](https://www.rfc-editor.org/rfc/rfc9112#section-7.1)):
//!
//! ```text
//!   chunk-size [ BWS ; chunk-ext ] CRLF    hex; line ≤ max_chunk_line; ext ignored ─┐
//!   chunk-data CRLF                        body so far + size ≤ max_body           ─┘ repeated
//!   0 [ BWS ; chunk-ext ] CRLF             last-chunk
//!   *( field-line CRLF )                   trailer section ≤ max_trailer_size, ignored
//!   CRLF
//! ```
//!
//! Line endings inside chunked framing must be CRLF; a bare LF is refused (lenient parsing
//! of chunk framing is a request-smuggling vector).

use bytes::{Buf, Bytes, BytesMut};

use super::{HttpError, HttpLimits};

/// How the body of a request is delimited, decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No body (no framing field, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes (already checked against `max_body`).
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
}

/// Decodes one body, as its bytes arrive.
#[derive(Debug)]
pub(crate) enum BodyDecoder {
    /// Waiting for this many bytes.
    Length(usize),
    /// Inside a chunked body.
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// The decoder for `kind`, or `None` when there is no body to decode.
    pub(crate) fn new(kind: BodyKind) -> Option<Self> {
        match kind {
            BodyKind::Empty => None,
            BodyKind::Length(n) => Some(Self::Length(n)),
            BodyKind::Chunked => Some(Self::Chunked(ChunkedDecoder::default())),
        }
    }

    /// Consumes body bytes from the front of `src`; returns the body once complete and leaves
    /// whatever follows it in `src`.
    pub(crate) fn decode(
        &mut self,
        src: &mut BytesMut,
        limits: &HttpLimits,
    ) -> Result<Option<Bytes>, HttpError> {
        match self {
            Self::Length(n) if src.len() >= *n => Ok(Some(src.split_to(*n).freeze())),
            Self::Length(_) => Ok(None),
            Self::Chunked(chunked) => chunked.decode(src, limits),
        }
    }

    /// How many bytes `src` must hold for the next `decode` to finish the body, when known.
    pub(crate) fn size_hint(&self) -> Option<usize> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Chunked(_) => None,
        }
    }

    /// The most bytes `src` can hold after `decode` returned `Ok(None)`: what the decoder is
    /// allowed to leave buffered while it waits.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffer_bound(&self, limits: &HttpLimits) -> usize {
        match self {
            Self::Length(n) => n.saturating_sub(1),
            Self::Chunked(chunked) => match chunked.state {
                ChunkState::Size => limits.max_chunk_line.saturating_sub(1),
                ChunkState::Data(_) => 0,
                ChunkState::DataEnd => 1,
                ChunkState::Trailer => {
                    limits.max_trailer_size.saturating_sub(chunked.trailer_len) + 1
                }
            },
        }
    }
}

/// State of a chunked body in progress.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    /// The body decoded so far; never longer than `max_body`.
    body: BytesMut,
    /// Bytes of trailer field lines consumed so far.
    trailer_len: usize,
    /// Offset in `src` up to which the current line was searched for its LF.
    scanned: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Copying chunk data; this many bytes left.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer field lines until an empty line.
    Trailer,
}

impl ChunkedDecoder {
    fn decode(
        &mut self,
        src: &mut BytesMut,
        limits: &HttpLimits,
    ) -> Result<Option<Bytes>, HttpError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(lf) = self.find_lf(src, limits.max_chunk_line) else {
                        if src.len() >= limits.max_chunk_line {
                            return Err(HttpError::ChunkLineTooLong {
                                max: limits.max_chunk_line,
                            });
                        }
                        return Ok(None);
                    };
                    let line = src[..lf]
                        .strip_suffix(b"\r")
                        .ok_or(HttpError::InvalidChunk(
                            "chunk-size line must end with CRLF",
                        ))?;
                    let size = parse_chunk_size(line)?;
                    let room = limits.max_body.saturating_sub(self.body.len());
                    let size = usize::try_from(size)
                        .ok()
                        .filter(|&size| size <= room)
                        .ok_or(HttpError::BodyTooLarge {
                            max: limits.max_body,
                        })?;
                    src.advance(lf + 1);
                    self.state = match size {
                        0 => ChunkState::Trailer,
                        n => ChunkState::Data(n),
                    };
                }
                ChunkState::Data(remaining) => {
                    if src.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(src.len());
                    self.body.extend_from_slice(&src[..n]);
                    src.advance(n);
                    self.state = match remaining - n {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                }
                ChunkState::DataEnd => match src.get(..2) {
                    Some([b'\r', b'\n']) => {
                        src.advance(2);
                        self.state = ChunkState::Size;
                    }
                    None if src[..] == b""[..] || src[..] == b"\r"[..] => return Ok(None),
                    _ => return Err(HttpError::InvalidChunk("chunk data not followed by CRLF")),
                },
                ChunkState::Trailer => {
                    // A field line may use what is left of the limit; the final empty line
                    // (2 bytes) is always allowed.
                    let room = limits.max_trailer_size.saturating_sub(self.trailer_len);
                    let Some(lf) = self.find_lf(src, room + 2) else {
                        if src.len() >= room + 2 {
                            return Err(self.trailers_too_large(limits));
                        }
                        return Ok(None);
                    };
                    let line = src[..lf]
                        .strip_suffix(b"\r")
                        .ok_or(HttpError::InvalidChunk("trailer line must end with CRLF"))?;
                    if line.is_empty() {
                        src.advance(lf + 1);
                        self.state = ChunkState::Size;
                        return Ok(Some(std::mem::take(&mut self.body).freeze()));
                    }
                    if lf + 1 > room {
                        return Err(self.trailers_too_large(limits));
                    }
                    self.trailer_len += lf + 1;
                    src.advance(lf + 1);
                }
            }
        }
    }

    /// The offset of the LF ending the line at the front of `src`, searching no further
    /// than `max` bytes and resuming where the last search stopped.
    fn find_lf(&mut self, src: &[u8], max: usize) -> Option<usize> {
        let limit = src.len().min(max);
        let from = self.scanned.min(limit);
        match src[from..limit].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.scanned = 0;
                Some(from + i)
            }
            None => {
                self.scanned = limit;
                None
            }
        }
    }

    fn trailers_too_large(&self, limits: &HttpLimits) -> HttpError {
        HttpError::TrailersTooLarge {
            max: limits.max_trailer_size,
        }
    }
}

/// Parses `chunk-size [ BWS ";" chunk-ext ]` (CRLF already removed). Extensions are checked
/// for control characters and otherwise ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::InvalidChunk("missing chunk size"));
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        // invariant: `b` is an ASCII hex digit, so `to_digit(16)` is `Some`.
        let digit = u64::from(char::from(b).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(HttpError::InvalidChunk("chunk size overflows"))?;
    }
    let rest = &line[digits..];
    let bws = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let ext = &rest[bws..];
    if rest.is_empty() {
        return Ok(size);
    }
    if ext.first() != Some(&b';') {
        return Err(HttpError::InvalidChunk("invalid chunk-size line"));
    }
    if ext
        .iter()
        .any(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
    {
        return Err(HttpError::InvalidChunk(
            "control character in chunk extension",
        ));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_body: usize) -> HttpLimits {
        let mut l = HttpLimits::default();
        l.max_body(max_body);
        l
    }

    fn chunked(raw: &[u8]) -> (Result<Option<Bytes>, HttpError>, BytesMut) {
        chunked_with(raw, &HttpLimits::default())
    }

    fn chunked_with(
        raw: &[u8],
        limits: &HttpLimits,
    ) -> (Result<Option<Bytes>, HttpError>, BytesMut) {
        let mut src = BytesMut::from(raw);
        let mut dec = BodyDecoder::new(BodyKind::Chunked).expect("chunked has a body");
        (dec.decode(&mut src, limits), src)
    }

    #[test]
    fn length_body_waits_then_splits_exactly() {
        let mut dec = BodyDecoder::new(BodyKind::Length(5)).unwrap();
        let mut src = BytesMut::from(&b"hel"[..]);
        assert_eq!(dec.decode(&mut src, &HttpLimits::default()), Ok(None));
        assert_eq!(dec.size_hint(), Some(5));
        src.extend_from_slice(b"loGET");
        assert_eq!(
            dec.decode(&mut src, &HttpLimits::default()),
            Ok(Some(Bytes::from_static(b"hello")))
        );
        assert_eq!(&src[..], b"GET");
        assert!(BodyDecoder::new(BodyKind::Empty).is_none());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let (body, rest) = chunked(b"4;name=val\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX: y\r\n\r\nNEXT");
        assert_eq!(
            body,
            Ok(Some(Bytes::from_static(b"Wikipedia in\r\n\r\nchunks.")))
        );
        assert_eq!(&rest[..], b"NEXT");
        let (body, rest) = chunked(b"0\r\n\r\n");
        assert_eq!(body, Ok(Some(Bytes::new())));
        assert!(rest.is_empty());
    }

    #[test]
    fn hex_sizes_in_both_cases() {
        let mut raw = b"1a\r\n".to_vec();
        raw.extend_from_slice(&[b'x'; 26]);
        raw.extend_from_slice(b"\r\n1A\r\n");
        raw.extend_from_slice(&[b'y'; 26]);
        raw.extend_from_slice(b"\r\n0000\r\n\r\n");
        let (body, _) = chunked(&raw);
        assert_eq!(body.unwrap().unwrap().len(), 52);
    }

    #[test]
    fn chunk_syntax_errors_are_400() {
        for raw in [
            &b"x\r\n"[..],
            b"\r\n",
            b" 4\r\nWiki\r\n",
            b"0x4\r\nWiki\r\n",
            b"4\nWiki\r\n0\r\n\r\n",
            b"4 \r\nWiki\r\n",
            b"4;a\x00b\r\nWiki\r\n",
            b"4;a\rb\r\nWiki\r\n",
            b"4\r\nWikiX\r\n",
            b"4\r\nWiki\rX",
            b"0\r\nX: y\n\r\n",
            b"0\r\n\n",
            b"10000000000000000\r\n",
        ] {
            let (r, _) = chunked(raw);
            let err = r.expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(
                err.status(),
                400,
                "{:?}: {err}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn oversize_chunk_fails_at_its_size_line_before_the_data() {
        let l = limits(8);
        let (r, rest) = chunked_with(b"5\r\nhello\r\n4\r\n", &l);
        assert_eq!(r, Err(HttpError::BodyTooLarge { max: 8 }));
        assert_eq!(
            &rest[..],
            b"4\r\n",
            "refused at the size line, before its data"
        );
        let (r, _) = chunked_with(b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", &l);
        assert_eq!(r, Ok(Some(Bytes::from_static(b"helloabc"))));
        let (r, _) = chunked_with(b"ffffffffffffffff\r\n", &l);
        assert_eq!(r, Err(HttpError::BodyTooLarge { max: 8 }));
    }

    #[test]
    fn chunk_line_limit() {
        let mut l = HttpLimits::default();
        l.max_chunk_line(8);
        let (r, _) = chunked_with(b"4;abc\r\nWiki\r\n0\r\n\r\n", &l);
        assert!(matches!(r, Ok(Some(_))), "7 bytes with CRLF fits");
        let (r, _) = chunked_with(b"4;abcd\r\nWiki\r\n0\r\n\r\n", &l);
        assert!(matches!(r, Ok(Some(_))), "8 bytes with CRLF fits");
        let (r, _) = chunked_with(b"4;abcde\r\n", &l);
        assert_eq!(
            r,
            Err(HttpError::ChunkLineTooLong { max: 8 }),
            "9 bytes with CRLF"
        );
        let (r, rest) = chunked_with(b"4;abcd", &l);
        assert_eq!(r, Ok(None));
        assert_eq!(rest.len(), 6);
        let (r, _) = chunked_with(b"4;abcde", &l);
        assert_eq!(r, Ok(None));
        let (r, _) = chunked_with(b"4;abcdef", &l);
        assert_eq!(r, Err(HttpError::ChunkLineTooLong { max: 8 }));
    }

    #[test]
    fn trailer_limit_counts_field_lines_only() {
        let mut l = HttpLimits::default();
        l.max_trailer_size(6);
        let (r, _) = chunked_with(b"0\r\nA: b\r\n\r\n", &l);
        assert_eq!(r, Ok(Some(Bytes::new())), "6 bytes of trailer fit");
        let (r, _) = chunked_with(b"0\r\nA: bc\r\n\r\n", &l);
        assert_eq!(r, Err(HttpError::TrailersTooLarge { max: 6 }));
        let (r, _) = chunked_with(b"0\r\nA: b\r\nC: d\r\n\r\n", &l);
        assert_eq!(r, Err(HttpError::TrailersTooLarge { max: 6 }));
        let (r, _) = chunked_with(b"0\r\nA: bcdefgh", &l);
        assert_eq!(r, Err(HttpError::TrailersTooLarge { max: 6 }));
        l.max_trailer_size(0);
        let (r, _) = chunked_with(b"0\r\n\r\n", &l);
        assert_eq!(r, Ok(Some(Bytes::new())), "the empty line always fits");
    }

    #[test]
    fn byte_by_byte_equals_all_at_once_and_respects_the_buffer_bound() {
        let raw = b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\nREST";
        let limits = HttpLimits::default();
        let mut dec = BodyDecoder::new(BodyKind::Chunked).unwrap();
        let mut src = BytesMut::new();
        let mut out = None;
        for &b in raw {
            src.extend_from_slice(&[b]);
            if out.is_none() {
                match dec.decode(&mut src, &limits).unwrap() {
                    Some(body) => out = Some(body),
                    None => assert!(src.len() <= dec.buffer_bound(&limits), "{src:?}"),
                }
            }
        }
        assert_eq!(out, Some(Bytes::from_static(b"abc0123456789abcdef")));
        assert_eq!(&src[..], b"REST");
    }
}
