//! Fuzz helpers for the protobuf codecs and registry (feature `fuzzing`), and the support the
//! unit tests share with them.

use bytes::BytesMut;

use super::ProtobufError;
use crate::codec::Decoder;
#[cfg(feature = "fuzzing")]
use {
    super::example::{Msg1, Msg2, Response},
    super::{GevProtobuf, Registry, TypedFrame, UnknownType, VarintDelimited},
    crate::codec::Encoder,
    bytes::Bytes,
};

/// Fuzzes [`GevProtobuf`]: for the cargo-fuzz target; asserts invariants, panics only on a
/// bug.
///
/// Input: byte 0 sets the maximum frame length (`2 * byte`, so some are below the 6-byte
/// minimum), byte 1 the maximum type-name length (`byte % 64`), byte 2 the chunk size (1 to
/// 64), the rest is the stream. Decoding in chunks must agree with a plain whole-stream model
/// (frames and the error), frames must be within the limits, at most one frame's worth may
/// wait, the size hint must be consistent, and re-encoding the frames must reproduce the
/// consumed bytes exactly.
#[cfg(feature = "fuzzing")]
pub fn fuzz_gev_protobuf(data: &[u8]) {
    let [max, max_name, chunk, stream @ ..] = data else {
        return;
    };
    let (max, max_name) = (2 * usize::from(*max), usize::from(*max_name) % 64);
    let mut codec = GevProtobuf::new();
    codec
        .set_max_frame_length(max)
        .set_max_type_name_length(max_name);
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    let (frames, error) = gev_model(stream, max, max_name);
    let got: Vec<(&str, &[u8])> = fed
        .frames
        .iter()
        .map(|f| (f.name(), &f.payload()[..]))
        .collect();
    let want: Vec<(&str, &[u8])> = frames.iter().map(|(n, p)| (*n, *p)).collect();
    assert_eq!(got, want);
    assert_eq!(fed.error, error);
    assert!(fed.idle_peak <= max.max(3), "at most one frame waits");
    for frame in &fed.frames {
        assert!(6 + frame.name().len() + frame.payload().len() <= max);
        assert!(frame.name().len() <= max_name);
    }

    let mut again = BytesMut::new();
    for frame in &fed.frames {
        // invariant: a decoded frame is within the limits it is re-encoded with.
        codec
            .encode(frame, &mut again)
            .expect("a decoded frame re-encodes");
    }
    assert!(
        stream.starts_with(&again),
        "re-encoding reproduces the wire"
    );

    if fed.error.is_none() {
        match codec.frame_size_hint(&fed.rest) {
            Some(n) => assert!(fed.rest.len() < n && n <= max),
            None => assert!(fed.rest.len() < 4),
        }
        let mut rest = fed.rest;
        let buffered = rest.len();
        let expected = match buffered {
            0 => Ok(None),
            _ => Err(ProtobufError::Truncated { buffered }),
        };
        assert_eq!(codec.decode_eof(&mut rest), expected);
    }
}

/// Fuzzes [`VarintDelimited`]: for the cargo-fuzz target; asserts invariants, panics only on
/// a bug.
///
/// Input: byte 0 sets the maximum message length (`8 * byte`), byte 1 the chunk size (1 to
/// 64), the rest is the stream. Decoding in chunks must agree with a whole-stream model built
/// on prost's own `decode_length_delimiter` (frames and the error), frames must be within the
/// limit, at most one frame's worth may wait, and re-encoded frames must decode to themselves.
#[cfg(feature = "fuzzing")]
pub fn fuzz_varint_delimited(data: &[u8]) {
    let [max, chunk, stream @ ..] = data else {
        return;
    };
    let max = 8 * usize::from(*max);
    let mut codec = VarintDelimited::new();
    codec.set_max_message_length(max);
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    let (frames, error) = varint_model(stream, max);
    assert_eq!(fed.frames, frames);
    match (&fed.error, error) {
        (None, None) => {}
        (Some(ProtobufError::FrameTooLong { len, max: m }), Some(ModelError::TooLong(l))) => {
            assert!(*len == l && *m == max && l > max as u64);
        }
        (
            Some(ProtobufError::VarintTooLong | ProtobufError::VarintOverflow),
            Some(ModelError::Varint),
        ) => {}
        (ours, model) => panic!("codec {ours:?}, model {model:?}"),
    }
    assert!(fed.idle_peak < max + VarintDelimited::MAX_VARINT_LEN);
    assert!(fed.frames.iter().all(|f| f.len() <= max));
    if let (None, Some(n)) = (&fed.error, codec.frame_size_hint(&fed.rest)) {
        assert!(fed.rest.len() < n && n <= max + VarintDelimited::MAX_VARINT_LEN);
    }

    let mut wire = BytesMut::new();
    for frame in &fed.frames {
        // invariant: a decoded frame is within the limit it is re-encoded with.
        codec
            .encode(frame.clone(), &mut wire)
            .expect("a decoded frame re-encodes");
    }
    let again = feed(&mut codec, &wire, &[]);
    assert!(again.error.is_none() && again.rest.is_empty());
    assert_eq!(again.frames, fed.frames);
}

/// Fuzzes a [`Registry`] behind [`GevProtobuf`]: for the cargo-fuzz target; asserts
/// invariants, panics only on a bug.
///
/// Input: bit 0 of byte 0 passes unknown types through, byte 1 is the chunk size (1 to 64),
/// the rest is a stream of gev frames. `msg1`, `msg2` and `proto.Msg1` (an alias of `msg1`)
/// and `response` are registered. Every frame must decode as its name says or fail with the
/// error prost gives for that payload, naming the frame's type; unknown names must fail or
/// pass through as configured; every decoded message must survive re-encoding through the
/// registry.
#[cfg(feature = "fuzzing")]
pub fn fuzz_protobuf_registry(data: &[u8]) {
    let [flags, chunk, stream @ ..] = data else {
        return;
    };
    let pass_through = flags & 1 == 1;
    let mut registry = Registry::new();
    registry
        .register::<Msg1>("msg1", FuzzMsg::Msg1)
        .register::<Msg1>("proto.Msg1", FuzzMsg::Msg1)
        .register::<Msg2>("msg2", FuzzMsg::Msg2)
        .register::<Response>("response", FuzzMsg::Response);
    if pass_through {
        registry.set_unknown(UnknownType::pass_through(FuzzMsg::Unknown));
    }
    let mut codec = GevProtobuf::new();
    let fed = feed(&mut codec, stream, &[*chunk % 64]);
    for frame in fed.frames {
        let name = frame.name().to_owned();
        let payload = frame.payload().clone();
        match registry.decode(frame) {
            Ok(msg) => roundtrip(&registry, &codec, &name, msg),
            Err(ProtobufError::UnknownTypeName { type_name }) => {
                assert!(!pass_through && !registry.contains(&name) && type_name == name);
                break;
            }
            Err(ProtobufError::Decode { type_name, source }) => {
                assert_eq!(type_name, name);
                let expected = match name.as_str() {
                    "msg1" | "proto.Msg1" => <Msg1 as prost::Message>::decode(payload).err(),
                    "msg2" => <Msg2 as prost::Message>::decode(payload).err(),
                    "response" => <Response as prost::Message>::decode(payload).err(),
                    other => panic!("decode error for unregistered {other:?}"),
                };
                assert_eq!(Some(source), expected);
                break;
            }
            Err(e) => panic!("unexpected registry error {e:?}"),
        }
    }
}

/// What [`feed`] saw: the frames, the first error, and how much stayed buffered.
#[derive(Debug)]
pub(super) struct Fed<T> {
    /// Frames in decode order.
    pub(super) frames: Vec<T>,
    /// The first error; feeding stops there.
    pub(super) error: Option<ProtobufError>,
    /// The most bytes left buffered after a decode returned `Ok(None)`.
    pub(super) idle_peak: usize,
    /// What was left in the buffer at the end.
    pub(super) rest: BytesMut,
}

/// Feeds `data` to `codec` in chunks of `sizes[i] + 1` bytes (cycling; one chunk if `sizes` is
/// empty), decoding after every chunk until the codec needs more or fails.
pub(super) fn feed<D>(codec: &mut D, data: &[u8], sizes: &[u8]) -> Fed<D::Item>
where
    D: Decoder<Error = ProtobufError>,
{
    let mut fed = Fed {
        frames: Vec::new(),
        error: None,
        idle_peak: 0,
        rest: BytesMut::new(),
    };
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
        buf.extend_from_slice(chunk);
        loop {
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

/// gev's `protobuf.PackMessage(msgType, data)`, transcribed: the independent reference the
/// tests hold gale's encoder to. (gev's casts truncate names over 65535 bytes and frames
/// over 4 GiB silently; the tests stay below both.)
#[cfg(test)]
pub(super) fn pack_message(msg_type: &str, data: &[u8]) -> Vec<u8> {
    let type_len = msg_type.len();
    let len = data.len() + type_len + 2;
    let mut ret = vec![0; len + 4];
    ret[..4].copy_from_slice(&(len as u32).to_be_bytes());
    ret[4..6].copy_from_slice(&(type_len as u16).to_be_bytes());
    ret[6..6 + type_len].copy_from_slice(msg_type.as_bytes());
    ret[6 + type_len..].copy_from_slice(data);
    ret
}

/// The frames (name, payload) a [`GevProtobuf`] with these limits must yield from `stream`
/// and the error it must stop at, read in one pass over the whole stream.
#[cfg(feature = "fuzzing")]
fn gev_model(
    stream: &[u8],
    max: usize,
    max_name: usize,
) -> (Vec<(&str, &[u8])>, Option<ProtobufError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let total = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if total < 2 {
            return (frames, Some(ProtobufError::FrameTooShort { len: total }));
        }
        let frame_len = 4 + u64::from(total);
        if frame_len > max as u64 {
            let error = ProtobufError::FrameTooLong {
                len: frame_len,
                max,
            };
            return (frames, Some(error));
        }
        let frame_len = frame_len as usize;
        if rest.len() < 6 {
            break;
        }
        let name_len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        if name_len > frame_len - 6 {
            let available = frame_len - 6;
            let error = ProtobufError::TypeNameOverrun {
                name_len,
                available,
            };
            return (frames, Some(error));
        }
        if name_len > max_name {
            let error = ProtobufError::TypeNameTooLong {
                len: name_len,
                max: max_name,
            };
            return (frames, Some(error));
        }
        if rest.len() < 6 + name_len {
            break;
        }
        let name = match std::str::from_utf8(&rest[6..6 + name_len]) {
            Ok(name) => name,
            Err(e) => return (frames, Some(ProtobufError::InvalidTypeName(e))),
        };
        if rest.len() < frame_len {
            break;
        }
        frames.push((name, &rest[6 + name_len..frame_len]));
        rest = &rest[frame_len..];
    }
    (frames, None)
}

/// How the varint model stopped.
#[cfg(feature = "fuzzing")]
#[derive(Debug)]
enum ModelError {
    /// prost rejected the varint.
    Varint,
    /// The declared length is over the maximum.
    TooLong(u64),
}

/// The messages a [`VarintDelimited`] with this maximum must yield from `stream` and how it
/// must fail, using prost's `decode_length_delimiter` for the prefixes.
#[cfg(feature = "fuzzing")]
fn varint_model(stream: &[u8], max: usize) -> (Vec<Bytes>, Option<ModelError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        let terminated = rest.iter().take(10).any(|b| b & 0x80 == 0);
        if !terminated && rest.len() < 10 {
            return (frames, None);
        }
        let mut after = rest;
        let Ok(len) = prost::decode_length_delimiter(&mut after) else {
            return (frames, Some(ModelError::Varint));
        };
        if len > max {
            return (frames, Some(ModelError::TooLong(len as u64)));
        }
        if after.len() < len {
            return (frames, None);
        }
        frames.push(Bytes::copy_from_slice(&after[..len]));
        rest = &after[len..];
    }
}

/// The registry fuzzer's message type.
#[cfg(feature = "fuzzing")]
#[derive(Debug, PartialEq)]
enum FuzzMsg {
    Msg1(Msg1),
    Msg2(Msg2),
    Response(Response),
    Unknown(TypedFrame),
}

/// Re-encodes `msg` through the registry and the codec and decodes it again: same message.
#[cfg(feature = "fuzzing")]
fn roundtrip(registry: &Registry<FuzzMsg>, codec: &GevProtobuf, name: &str, msg: FuzzMsg) {
    let frame = match &msg {
        FuzzMsg::Msg1(m) => registry.encode(m),
        FuzzMsg::Msg2(m) => registry.encode(m),
        FuzzMsg::Response(m) => registry.encode(m),
        FuzzMsg::Unknown(frame) => {
            assert!(!registry.contains(name) && frame.name() == name);
            Ok(frame.clone())
        }
    };
    // invariant: every registered type has a name, and a decoded frame fits the codec.
    let frame = frame.expect("registered types encode");
    let mut wire = BytesMut::new();
    codec
        .encode_frame(&frame, &mut wire)
        .expect("fits the limits");
    let mut codec = codec.clone();
    let again = codec
        .decode(&mut wire)
        .expect("decodes")
        .expect("whole frame");
    assert_eq!(registry.decode(again).as_ref(), Ok(&msg));
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
    fn corpus_gev_protobuf() {
        replay("gev_protobuf", super::fuzz_gev_protobuf);
    }

    #[test]
    fn corpus_varint_delimited() {
        replay("varint_delimited", super::fuzz_varint_delimited);
    }

    #[test]
    fn corpus_protobuf_registry() {
        replay("protobuf_registry", super::fuzz_protobuf_registry);
    }

    #[test]
    fn fuzzers_survive_arbitrary_inputs() {
        // A deterministic spread of inputs, so the invariants run even without cargo-fuzz.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        };
        for len in 0..400 {
            let mut data: Vec<u8> = (0..len).map(|_| next()).collect();
            super::fuzz_gev_protobuf(&data);
            super::fuzz_varint_delimited(&data);
            super::fuzz_protobuf_registry(&data);
            // Random bytes rarely form valid frames: also try with small lengths forced.
            for i in (3..data.len()).step_by(9) {
                data[i] = 0;
            }
            super::fuzz_gev_protobuf(&data);
            super::fuzz_varint_delimited(&data);
            super::fuzz_protobuf_registry(&data);
        }
    }
}
