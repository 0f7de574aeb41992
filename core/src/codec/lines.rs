//! `\n`-terminated lines (Netty `LineBasedFrameDecoder`, tokio-util `LinesCodec`).

use bytes::{Bytes, BytesMut};

use super::{CodecError, Decoder, Encoder, take_front};

/// Frames are lines ending in `\n`; a `\r` right before the `\n` is dropped too.
///
/// Lines come out as [`Bytes`] without the terminator, split off the receive buffer without
/// copying; whether they are UTF-8 is for the caller to decide.
///
/// # Limits
///
/// [`max_length`](Self::max_length) (default [`Lines::DEFAULT_MAX_LENGTH`], 64 KiB) bounds the
/// bytes of a line before its `\n`, a trailing `\r` included. As soon as `max_length + 1` bytes
/// are buffered without a `\n` among them, decoding fails with [`CodecError::FrameTooLong`]: the
/// codec never asks for more than `max_length + 1` bytes of one line. After an error the stream
/// is unusable (there is no discard-and-resync mode).
///
/// The decoder remembers how far it has scanned, so a line arriving a byte at a time costs linear
/// time, not quadratic. It assumes the caller only appends to the buffer between calls (as every
/// receive buffer does); anything else cannot make it panic, only miss a `\n`.
///
/// # End of stream
///
/// [`decode_eof`](Decoder::decode_eof) returns an unterminated last line (minus a trailing `\r`)
/// as a frame, like tokio-util; it never fails with [`CodecError::Truncated`].
///
/// # Encoding
///
/// Encoding appends the line and `\n` (or `\r\n` with [`set_crlf`](Self::set_crlf)). A line
/// containing `\n` is refused with [`CodecError::Encode`], since the peer would read it as two
/// lines (a line-injection hazard when relaying untrusted text); so is a line the peer would
/// refuse as too long (`\r` of a CRLF ending included). With the default `\n` ending, a line
/// that itself ends in `\r` is written as is and the peer decodes it without that `\r`; with
/// `\r\n` endings every line without `\n` round-trips exactly.
///
/// ```
/// use bytes::BytesMut;
/// use gale_core::codec::{CodecError, Decoder, Encoder, Lines};
///
/// let mut lines = Lines::new();
/// let mut buf = BytesMut::from(&b"PING\r\nPO"[..]);
/// assert_eq!(lines.decode(&mut buf).unwrap().unwrap(), &b"PING"[..]);
/// assert_eq!(lines.decode(&mut buf).unwrap(), None); // "PO" waits for its `\n`
/// buf.extend_from_slice(b"NG\n");
/// assert_eq!(lines.decode(&mut buf).unwrap().unwrap(), &b"PONG"[..]);
///
/// let mut out = BytesMut::new();
/// lines.encode(&b"OK"[..], &mut out).unwrap();
/// assert_eq!(&out[..], b"OK\n");
/// assert!(matches!(lines.encode(&b"A\nB"[..], &mut out), Err(CodecError::Encode(_))));
///
/// // A line that never ends is refused once it passes the maximum.
/// let mut short = Lines::with_max_length(4);
/// let mut buf = BytesMut::from(&b"12345"[..]);
/// assert_eq!(
///     short.decode(&mut buf),
///     Err(CodecError::FrameTooLong { len: 5, max: 4 })
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Lines {
    max_length: usize,
    crlf: bool,
    /// Where the next scan for `\n` starts: everything before it was already scanned.
    next_index: usize,
}

impl Lines {
    /// The default [`max_length`](Self::max_length): 64 KiB.
    pub const DEFAULT_MAX_LENGTH: usize = 64 * 1024;

    /// A codec with the default maximum line length and `\n` endings.
    #[must_use]
    pub const fn new() -> Self {
        Self::with_max_length(Self::DEFAULT_MAX_LENGTH)
    }

    /// A codec accepting lines of at most `max_length` bytes before the `\n`.
    #[must_use]
    pub const fn with_max_length(max_length: usize) -> Self {
        Self {
            max_length,
            crlf: false,
            next_index: 0,
        }
    }

    /// Sets the maximum line length in bytes, `\r` included, `\n` excluded (default 64 KiB).
    pub fn set_max_length(&mut self, max_length: usize) -> &mut Self {
        self.max_length = max_length;
        self
    }

    /// The maximum line length in bytes, `\r` included, `\n` excluded.
    #[must_use]
    pub const fn max_length(&self) -> usize {
        self.max_length
    }

    /// Ends encoded lines with `\r\n` instead of `\n` (default `false`). Decoding accepts both.
    pub fn set_crlf(&mut self, crlf: bool) -> &mut Self {
        self.crlf = crlf;
        self
    }

    /// Whether encoded lines end with `\r\n`.
    #[must_use]
    pub const fn is_crlf(&self) -> bool {
        self.crlf
    }

    fn encode_line(&self, line: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        let ending: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        // The `\r` of a CRLF ending counts against the peer's maximum.
        if line.len() + ending.len() - 1 > self.max_length {
            return Err(CodecError::Encode("line longer than max_length"));
        }
        if memchr::memchr(b'\n', line).is_some() {
            return Err(CodecError::Encode("line contains '\\n'"));
        }
        dst.reserve(line.len() + ending.len());
        dst.extend_from_slice(line);
        dst.extend_from_slice(ending);
        Ok(())
    }
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for Lines {
    type Item = Bytes;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        // Never look past `max_length + 1` bytes: a `\n` there would end a line that is too long.
        let read_to = src.len().min(self.max_length.saturating_add(1));
        let start = self.next_index.min(read_to);
        // invariant: start <= read_to <= src.len(), so the slice is in bounds.
        match memchr::memchr(b'\n', &src[start..read_to]) {
            Some(offset) => {
                self.next_index = 0;
                let newline = start + offset;
                let mut line = take_front(src, newline + 1);
                line.truncate(without_cr(&line[..newline]));
                Ok(Some(line.freeze()))
            }
            None if src.len() > self.max_length => {
                self.next_index = 0;
                Err(CodecError::FrameTooLong {
                    len: u64::try_from(src.len()).unwrap_or(u64::MAX),
                    max: self.max_length,
                })
            }
            None => {
                self.next_index = read_to;
                Ok(None)
            }
        }
    }

    /// Decodes a line, or returns the unterminated rest (minus a trailing `\r`) as the last one.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        // `decode` found no `\n` and no error: the rest is at most `max_length` bytes.
        self.next_index = 0;
        let mut rest = src.split();
        rest.truncate(without_cr(&rest));
        Ok((!rest.is_empty()).then(|| rest.freeze()))
    }

    fn eof_error(&mut self, buffered: usize) -> CodecError {
        CodecError::Truncated { buffered }
    }
}

impl Encoder<Bytes> for Lines {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_line(&item, dst)
    }
}

impl Encoder<&[u8]> for Lines {
    type Error = CodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_line(item, dst)
    }
}

/// The length of `line` without one trailing `\r`.
fn without_cr(line: &[u8]) -> usize {
    match line {
        [head @ .., b'\r'] => head.len(),
        _ => line.len(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use quickcheck::{TestResult, quickcheck};

    use super::Lines;
    use crate::codec::fuzz::{feed, lines_model};
    use crate::codec::{CodecError, Decoder, Encoder};

    fn decode_all(codec: &mut Lines, buf: &mut BytesMut) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(line) = codec.decode(buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_one_cr() {
        let mut buf = BytesMut::from(&b"a\nbc\r\n\n\r\nd\r\r\n\re\nrest"[..]);
        let lines = decode_all(&mut Lines::new(), &mut buf);
        assert_eq!(lines, [&b"a"[..], b"bc", b"", b"", b"d\r", b"\re"]);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn resumes_scanning_where_it_stopped() {
        let mut codec = Lines::new();
        let mut buf = BytesMut::new();
        for (i, byte) in b"abcdef".iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            assert_eq!(codec.decode(&mut buf), Ok(None));
            assert_eq!(
                codec.next_index,
                i + 1,
                "bytes already scanned are not scanned again"
            );
        }
        buf.extend_from_slice(b"\r\nxy");
        assert_eq!(
            codec.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"abcdef")))
        );
        assert_eq!(codec.next_index, 0);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(codec.next_index, 2);
    }

    #[test]
    fn a_caller_that_shrinks_the_buffer_cannot_cause_a_panic() {
        let mut codec = Lines::new();
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.clear();
        buf.extend_from_slice(b"x\n");
        // The remembered offset is past the end: the scan is clamped, never out of bounds.
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(
            codec.decode_eof(&mut buf),
            Ok(Some(Bytes::from_static(b"x\n")))
        );
    }

    #[test]
    fn max_length_boundaries() {
        let mut codec = Lines::with_max_length(4);
        let mut buf = BytesMut::from(&b"1234\n"[..]);
        assert_eq!(decode_all(&mut codec, &mut buf), [&b"1234"[..]]);

        let mut buf = BytesMut::from(&b"1234"[..]);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(None),
            "exactly max without `\\n` still waits"
        );
        buf.extend_from_slice(b"5");
        assert_eq!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong { len: 5, max: 4 })
        );

        // The `\r` of a CRLF ending counts.
        let mut codec = Lines::with_max_length(4);
        let mut buf = BytesMut::from(&b"1234\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong { .. })
        ));

        // Zero: only empty lines.
        let mut codec = Lines::with_max_length(0);
        let mut buf = BytesMut::from(&b"\n\n"[..]);
        assert_eq!(decode_all(&mut codec, &mut buf), [&b""[..], b""]);
        buf.extend_from_slice(b"x");
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn too_long_is_raised_with_only_max_plus_one_buffered() {
        let mut codec = Lines::new();
        codec.set_max_length(100);
        let mut buf = BytesMut::new();
        for _ in 0..100 {
            buf.extend_from_slice(b"x");
            assert_eq!(codec.decode(&mut buf), Ok(None));
        }
        buf.extend_from_slice(b"x");
        assert_eq!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong { len: 101, max: 100 })
        );
    }

    #[test]
    fn a_newline_past_the_maximum_does_not_rescue_a_long_line() {
        let mut codec = Lines::with_max_length(3);
        let mut buf = BytesMut::from(&b"abcd\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::FrameTooLong { .. })
        ));
    }

    #[test]
    fn decode_eof_returns_the_unterminated_line() {
        let mut codec = Lines::new();
        let mut buf = BytesMut::from(&b"one\ntwo\r"[..]);
        assert_eq!(
            codec.decode_eof(&mut buf),
            Ok(Some(Bytes::from_static(b"one")))
        );
        assert_eq!(
            codec.decode_eof(&mut buf),
            Ok(Some(Bytes::from_static(b"two")))
        );
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));

        let mut buf = BytesMut::from(&b"\r"[..]);
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));
        assert!(buf.is_empty(), "a lone `\\r` is consumed");

        let mut codec = Lines::with_max_length(2);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(CodecError::FrameTooLong { .. })
        ));
    }

    #[test]
    fn encode_lf_and_crlf() {
        let mut codec = Lines::new();
        let mut out = BytesMut::new();
        codec.encode(Bytes::from_static(b"a"), &mut out).unwrap();
        codec.encode(&b""[..], &mut out).unwrap();
        codec.set_crlf(true);
        assert!(codec.is_crlf());
        codec.encode(&b"b\r"[..], &mut out).unwrap();
        assert_eq!(&out[..], b"a\n\nb\r\r\n");
        assert_eq!(decode_all(&mut codec, &mut out), [&b"a"[..], b"", b"b\r"]);
    }

    #[test]
    fn encode_refuses_newlines_and_long_lines() {
        let mut codec = Lines::with_max_length(3);
        let mut out = BytesMut::new();
        assert!(matches!(
            codec.encode(&b"a\nb"[..], &mut out),
            Err(CodecError::Encode(_))
        ));
        assert!(matches!(
            codec.encode(&b"abcd"[..], &mut out),
            Err(CodecError::Encode(_))
        ));
        codec.encode(&b"abc"[..], &mut out).unwrap();
        codec.set_crlf(true);
        assert!(matches!(
            codec.encode(&b"abc"[..], &mut out),
            Err(CodecError::Encode(_))
        ));
        codec.encode(&b"ab"[..], &mut out).unwrap();
        assert_eq!(&out[..], b"abc\nab\r\n");
    }

    quickcheck! {
        /// Any chunking of a stream of encoded lines decodes to the same lines.
        fn prop_chunking_roundtrips(
            lines: Vec<Vec<u8>>,
            crlf: bool,
            max: u8,
            sizes: Vec<u8>
        ) -> bool {
            let max = usize::from(max) + 1;
            let mut codec = Lines::with_max_length(max);
            codec.set_crlf(crlf);
            let mut wire = BytesMut::new();
            let mut expected = Vec::new();
            for mut line in lines {
                line.retain(|b| *b != b'\n');
                line.truncate(max - usize::from(crlf));
                codec.encode(&line[..], &mut wire).unwrap();
                if !crlf && line.last() == Some(&b'\r') {
                    line.pop();
                }
                expected.push(line);
            }
            let fed = feed(&mut codec, &wire, &sizes);
            fed.error.is_none() && fed.rest.is_empty() && fed.frames == expected
        }

        /// Arbitrary input: frames never exceed the maximum, at most `max` bytes wait for a
        /// `\n`, and decoding agrees with a simple model (including where it fails).
        fn prop_bounded_and_matches_model(stream: Vec<u8>, max: u8, sizes: Vec<u8>) -> bool {
            let max = usize::from(max % 32);
            let fed = feed(&mut Lines::with_max_length(max), &stream, &sizes);
            let (frames, too_long) = lines_model(&stream, max);
            fed.frames.iter().all(|f| f.len() <= max)
                && fed.idle_peak <= max
                && fed.frames == frames
                && matches!(fed.error, Some(CodecError::FrameTooLong { .. })) == too_long
        }

        /// `max + 1` bytes without a `\n` are refused as they arrive: nothing more is needed.
        fn prop_oversize_errors_at_max_plus_one(max: u16, byte: u8) -> TestResult {
            if byte == b'\n' {
                return TestResult::discard();
            }
            let max = usize::from(max);
            let mut buf = BytesMut::from(&vec![byte; max + 1][..]);
            let mut codec = Lines::with_max_length(max);
            TestResult::from_bool(matches!(
                codec.decode(&mut buf),
                Err(CodecError::FrameTooLong { len, max: m }) if len == max as u64 + 1 && m == max
            ))
        }
    }
}
