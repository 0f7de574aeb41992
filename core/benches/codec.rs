//! Decode and encode throughput of the framing codecs on in-memory buffers.
//!
//! Each decode benchmark starts from a buffer holding 256 KiB worth of frames of one size
//! (64 B or 4 KiB of payload) and decodes until the buffer is empty. `Raw` gets a frame cap of
//! the frame size, so it yields as many frames as the others. Each encode benchmark appends the
//! same frames to a reused buffer. Run with `cargo bench -p gale-core --bench codec`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gale_core::codec::{Decoder, Encoder, LengthDelimited, Lines, Raw};

const STREAM_BYTES: usize = 256 * 1024;
const FRAME_SIZES: [usize; 2] = [64, 4096];

fn payload(size: usize) -> Bytes {
    // Printable and free of `\n`, so the same payload works for every codec.
    (0..size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Every codec under test, with a cap that keeps `Raw` frames at `size` bytes.
fn codecs(size: usize) -> (Raw, Lines, LengthDelimited) {
    let mut raw = Raw::new();
    raw.set_max_frame_length(size);
    (raw, Lines::new(), LengthDelimited::new())
}

fn encode_stream<E: Encoder<Bytes>>(codec: &mut E, payload: &Bytes) -> BytesMut
where
    E::Error: std::fmt::Debug,
{
    let mut wire = BytesMut::new();
    while wire.len() < STREAM_BYTES {
        codec
            .encode(payload.clone(), &mut wire)
            .expect("payload fits every codec");
    }
    wire
}

fn bench_decode_one<D>(c: &mut Criterion, name: &str, codec: D, wire: &BytesMut, size: usize)
where
    D: Decoder<Item = Bytes> + Clone,
    D::Error: std::fmt::Debug,
{
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_with_input(BenchmarkId::new(name, size), wire, |b, wire| {
        b.iter_batched(
            || (codec.clone(), wire.clone()),
            |(mut codec, mut buf)| {
                while let Some(frame) = codec.decode(&mut buf).expect("valid stream") {
                    black_box(frame);
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_encode_one<E>(c: &mut Criterion, name: &str, mut codec: E, payload: &Bytes, frames: usize)
where
    E: Encoder<Bytes>,
    E::Error: std::fmt::Debug,
{
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes((payload.len() * frames) as u64));
    let mut out = BytesMut::with_capacity(2 * STREAM_BYTES);
    group.bench_with_input(
        BenchmarkId::new(name, payload.len()),
        payload,
        |b, payload| {
            b.iter(|| {
                out.clear();
                for _ in 0..frames {
                    codec
                        .encode(payload.clone(), &mut out)
                        .expect("payload fits");
                }
                black_box(&out);
            });
        },
    );
    group.finish();
}

fn decode(c: &mut Criterion) {
    for size in FRAME_SIZES {
        let payload = payload(size);
        let (mut raw, mut lines, mut length) = codecs(size);
        let raw_wire = encode_stream(&mut raw, &payload);
        let lines_wire = encode_stream(&mut lines, &payload);
        let length_wire = encode_stream(&mut length, &payload);
        bench_decode_one(c, "raw", raw, &raw_wire, size);
        bench_decode_one(c, "lines", lines, &lines_wire, size);
        bench_decode_one(c, "length_delimited", length, &length_wire, size);
    }
}

fn encode(c: &mut Criterion) {
    for size in FRAME_SIZES {
        let payload = payload(size);
        let frames = STREAM_BYTES / size;
        let (raw, lines, length) = codecs(size);
        bench_encode_one(c, "raw", raw, &payload, frames);
        bench_encode_one(c, "lines", lines, &payload, frames);
        bench_encode_one(c, "length_delimited", length, &payload, frames);
    }
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
