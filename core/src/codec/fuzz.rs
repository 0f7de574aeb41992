//! Fuzz helpers for the codecs (feature `fuzzing`) and the support the unit tests share with them.

use bytes::{Bytes, BytesMut};

use super::{CodecError, Decoder, Endian, LengthDelimitedBuilder, LengthWidth};
#[cfg(feature = "fuzzing")]
use super::{Encoder, Lines, Raw};

/// Fuzzes [`Raw`]: for the cargo-fuzz target; asserts invariants, panics only on a bug.
///
/// Input: byte 0 is the frame cap (0: none), byte 1 the chunk size (1 to 64), the rest the
/// stream. Frames must be non-empty, within the cap, concatenate to the stream, leave nothing
/// buffered, and survive re-encoding.
#[cfg(feature = "fuzzing")]
pub fn fuzz_raw(data: &[u8]) {
    let [cap, chunk, stream @ ..] = data else {
        return;
    };
    let mut codec = Raw::new();
    if *cap != 0 {
        codec.set_max_frame_length(usize::from(*cap));
    }
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    assert!(fed.error.is_none(), "raw decoding never fails");
    assert!(
        fed.rest.is_empty() && fed.idle_peak == 0,
        "raw keeps nothing buffered"
    );
    let max = codec.max_frame_length();
    assert!(fed.frames.iter().all(|f| !f.is_empty() && f.len() <= max));
    assert_eq!(fed.frames.concat(), stream);

    let mut wire = BytesMut::new();
    for frame in &fed.frames {
        // invariant: raw encoding never fails.
        codec.encode(frame.clone(), &mut wire).expect("raw encode");
    }
    assert_eq!(feed(&mut codec, &wire, &[]).frames.concat(), stream);
    assert_eq!(codec.decode_eof(&mut BytesMut::new()), Ok(None));
}

/// Fuzzes [`Lines`]: for the cargo-fuzz target; asserts invariants, panics only on a bug.
///
/// Input: byte 0 is `max_length`, byte 1 the chunk size (1 to 64), bit 0 of byte 2 selects
/// `\r\n` endings for re-encoding, the rest is the stream. Decoding must agree with a simple
/// model (frames and where it fails), frames stay within the maximum, at most `max_length`
/// bytes wait for a `\n`, and re-encoded frames decode to themselves.
#[cfg(feature = "fuzzing")]
pub fn fuzz_lines(data: &[u8]) {
    let [max, chunk, flags, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max);
    let mut codec = Lines::with_max_length(max);
    codec.set_crlf(flags & 1 == 1);
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    let (frames, too_long) = lines_model(stream, max);
    assert_eq!(fed.frames, frames);
    match fed.error {
        None => assert!(!too_long),
        Some(CodecError::FrameTooLong { len, max: m }) => {
            assert!(too_long && m == max && len > max as u64);
        }
        Some(e) => panic!("unexpected error {e:?}"),
    }
    assert!(
        fed.idle_peak <= max,
        "a line waiting for its `\\n` is within the maximum"
    );
    assert!(fed.call_peak <= max + fed.chunk_peak);
    assert!(
        fed.frames
            .iter()
            .all(|f| f.len() <= max && !f.contains(&b'\n'))
    );
    if fed.error.is_none() {
        let mut rest = fed.rest;
        let last = codec
            .decode_eof(&mut rest)
            .expect("invariant: the rest is within the maximum");
        let expected = strip_cr(&rest_of(stream, &frames)).to_vec();
        assert_eq!(
            last.map(|b| b.to_vec()),
            (!expected.is_empty()).then_some(expected)
        );
    }

    for frame in &fed.frames {
        let mut wire = BytesMut::new();
        let mut codec = codec.clone();
        if let Err(e) = codec.encode(frame.clone(), &mut wire) {
            assert!(
                codec.is_crlf() && frame.len() == max,
                "only a CRLF line at max fails: {e:?}"
            );
            continue;
        }
        let decoded = codec
            .decode(&mut wire)
            .expect("invariant: an encoded line decodes");
        let expected = if codec.is_crlf() {
            &frame[..]
        } else {
            strip_cr(frame)
        };
        assert_eq!(decoded.as_deref(), Some(expected));
        assert!(wire.is_empty());
    }
}

/// Fuzzes [`LengthDelimited`](super::LengthDelimited): for the cargo-fuzz target; asserts
/// invariants, panics only on a bug.
///
/// Input: bytes 0 to 4 choose the configuration: byte 0 the width (low 7 bits `% 5`) and, with
/// its top bit, little-endian; byte 1 the offset (`% 4`); byte 2 the adjustment (`-32..=31`);
/// byte 3 `num_skip` (below 128: the default, else `% 16`); byte 4 the maximum frame length
/// (`4 * byte`; invalid configurations end the run). Byte 5 is the chunk size (1 to 64), the
/// rest the stream. Decoded frames must be within the maximum, at most `max_frame_length` bytes
/// may wait, errors must be the documented ones, the size hint must be consistent, and
/// re-encoded frames must decode to what the configuration says.
#[cfg(feature = "fuzzing")]
pub fn fuzz_length_delimited(data: &[u8]) {
    let [c0, c1, c2, c3, c4, chunk, stream @ ..] = data else {
        return;
    };
    let Ok(mut codec) = length_config([*c0, *c1, *c2, *c3, *c4]).build() else {
        return;
    };
    let max = codec.max_frame_length();
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    assert!(fed.frames.iter().all(|f| f.len() + codec.num_skip() <= max));
    assert!(fed.idle_peak <= max && fed.call_peak <= max + fed.chunk_peak);
    let mut rest = fed.rest;
    match fed.error {
        None => match codec.frame_size_hint(&rest) {
            Some(n) => assert!(rest.len() < n && n <= max),
            None => assert!(rest.len() < codec.header_len()),
        },
        Some(CodecError::FrameTooLong { len, max: m }) => {
            assert!(m == max && len > max as u64);
            assert!(rest.len() >= codec.header_len() && codec.frame_size_hint(&rest).is_none());
        }
        Some(CodecError::InvalidLength(_)) => assert!(codec.frame_size_hint(&rest).is_none()),
        Some(e) => panic!("unexpected error {e:?}"),
    }
    if fed.error.is_none() {
        let buffered = rest.len();
        let eof = codec.decode_eof(&mut rest);
        let expected = if buffered == 0 {
            Ok(None)
        } else {
            Err(CodecError::Truncated { buffered })
        };
        assert_eq!(eof, expected);
    }

    for frame in &fed.frames {
        let mut wire = BytesMut::new();
        if codec.encode(frame.clone(), &mut wire).is_err() {
            assert_ne!(
                codec.num_skip(),
                codec.header_len(),
                "with the header stripped, re-encoding works"
            );
            continue;
        }
        let expected = Bytes::copy_from_slice(&wire[codec.num_skip()..]);
        assert_eq!(codec.frame_size_hint(&wire), Some(wire.len()));
        let decoded = codec
            .decode(&mut wire)
            .expect("invariant: an encoded frame decodes");
        assert_eq!(decoded.as_ref(), Some(&expected));
        if codec.num_skip() == codec.header_len() {
            assert_eq!(&expected, frame);
        }
        assert!(wire.is_empty());
    }
}

/// What [`feed`] saw: the frames, the first error, and how much stayed buffered.
#[derive(Debug, Default)]
pub(super) struct Fed {
    /// Frames in decode order.
    pub(super) frames: Vec<Bytes>,
    /// The first error; feeding stops there.
    pub(super) error: Option<CodecError>,
    /// The most bytes left buffered after a decode returned `Ok(None)`.
    pub(super) idle_peak: usize,
    /// The largest buffer a decode call was handed.
    pub(super) call_peak: usize,
    /// The largest chunk appended.
    pub(super) chunk_peak: usize,
    /// What was left in the buffer at the end.
    pub(super) rest: BytesMut,
}

/// Feeds `data` to `codec` in chunks of `sizes[i] + 1` bytes (cycling; one chunk if `sizes` is
/// empty), decoding after every chunk until the codec needs more or fails.
pub(super) fn feed<D>(codec: &mut D, data: &[u8], sizes: &[u8]) -> Fed
where
    D: Decoder<Item = Bytes, Error = CodecError>,
{
    let mut fed = Fed::default();
    let mut buf = BytesMut::new();
    let mut rest = data;
    let mut turn = 0;
    while !rest.is_empty() {
        let size = match sizes {
            [] => rest.len(),
            _ => usize::from(sizes[turn % sizes.len()]) + 1,
        };
        turn += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        fed.chunk_peak = fed.chunk_peak.max(chunk.len());
        buf.extend_from_slice(chunk);
        loop {
            fed.call_peak = fed.call_peak.max(buf.len());
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => fed.frames.push(frame),
                Ok(None) => {
                    fed.idle_peak = fed.idle_peak.max(buf.len());
                    break;
                }
                Err(e) => {
                    fed.error = Some(e);
                    fed.rest = buf;
                    return fed;
                }
            }
        }
    }
    fed.rest = buf;
    fed
}

/// The lines a [`Lines`](super::Lines) decoder with `max` must yield from `stream`, and whether
/// it must fail (a line, terminated or not, longer than `max` before its `\n`).
pub(super) fn lines_model(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        match rest.iter().position(|b| *b == b'\n') {
            Some(end) if end <= max => {
                frames.push(strip_cr(&rest[..end]).to_vec());
                rest = &rest[end + 1..];
            }
            Some(_) => return (frames, true),
            None => return (frames, rest.len() > max),
        }
    }
}

/// A [`LengthDelimited`](super::LengthDelimited) configuration from five bytes, covering every
/// option, as described on [`fuzz_length_delimited`] (`4 * byte` as the maximum makes some of
/// them invalid).
pub(super) fn length_config(bytes: [u8; 5]) -> LengthDelimitedBuilder {
    const WIDTHS: [LengthWidth; 5] = [
        LengthWidth::U8,
        LengthWidth::U16,
        LengthWidth::U24,
        LengthWidth::U32,
        LengthWidth::U64,
    ];
    let [width, offset, adjustment, skip, max] = bytes;
    let mut builder = LengthDelimitedBuilder::new();
    builder
        .length_field_width(WIDTHS[usize::from((width & 0x7F) % 5)])
        .endian(if width & 0x80 == 0 {
            Endian::Big
        } else {
            Endian::Little
        })
        .length_field_offset(usize::from(offset % 4))
        .length_adjustment(i64::from(i8::from_ne_bytes([adjustment]) >> 2))
        .max_frame_length(4 * usize::from(max));
    if skip >= 128 {
        builder.num_skip(usize::from(skip % 16));
    }
    builder
}

/// `line` without one trailing `\r`.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What follows the `\n` of the last of `frames` in `stream`.
#[cfg(feature = "fuzzing")]
fn rest_of(stream: &[u8], frames: &[Vec<u8>]) -> Vec<u8> {
    let newlines = frames.len();
    let mut rest = stream;
    for _ in 0..newlines {
        // invariant: the model found a `\n` for every frame.
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .expect("one `\\n` per frame");
        rest = &rest[end + 1..];
    }
    rest.to_vec()
}

#[cfg(all(test, feature = "fuzzing"))]
mod tests {
    use std::path::Path;

    fn replay(target: &str, fuzz: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            fuzz(&std::fs::read(entry.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds >= 3, "expected corpus seeds in {}", dir.display());
    }

    #[test]
    fn corpus_raw() {
        replay("raw", super::fuzz_raw);
    }

    #[test]
    fn corpus_lines() {
        replay("lines", super::fuzz_lines);
    }

    #[test]
    fn corpus_length_delimited() {
        replay("length_delimited", super::fuzz_length_delimited);
    }

    #[test]
    fn fuzzers_survive_arbitrary_inputs() {
        // A deterministic spread of inputs, so the invariants run even without cargo-fuzz.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..400 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            super::fuzz_raw(&data);
            super::fuzz_lines(&data);
            super::fuzz_length_delimited(&data);
        }
    }
}
