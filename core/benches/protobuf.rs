//! Protobuf framing and typed decoding on in-memory buffers.
//!
//! Each decode benchmark starts from a buffer of 1024 gev frames (or varint-delimited
//! messages) carrying gev's example `Msg2` (about 40 bytes) and decodes until it is empty:
//! framing only, then framing plus the registry into `AnyMessage` and into an enum. Encode
//! benchmarks write the same messages to a reused buffer. Run with
//! `cargo bench -p gale-core --bench protobuf`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gale_core::codec::Decoder;
use gale_core::protobuf::example::{self, Msg1, Msg2};
use gale_core::protobuf::{AnyMessage, GevProtobuf, Outbound, Registry, VarintDelimited};
use prost::Message;

const MESSAGES: usize = 1024;

#[derive(Debug)]
#[allow(dead_code)] // the payloads are only black-boxed
enum Gev {
    Msg1(Msg1),
    Msg2(Msg2),
}

impl From<Msg1> for Gev {
    fn from(m: Msg1) -> Self {
        Self::Msg1(m)
    }
}

impl From<Msg2> for Gev {
    fn from(m: Msg2) -> Self {
        Self::Msg2(m)
    }
}

fn msg(i: usize) -> Msg2 {
    Msg2 {
        name: format!("user-{i}"),
        alias: format!("big user-{i}"),
        id: i as i32,
    }
}

fn gev_wire(registry: &Registry) -> BytesMut {
    let codec = GevProtobuf::new();
    let mut wire = BytesMut::new();
    for i in 0..MESSAGES {
        let frame = registry.encode(&msg(i)).expect("registered");
        codec.encode_frame(&frame, &mut wire).expect("fits");
    }
    wire
}

fn bench_decode(c: &mut Criterion) {
    let any = example::registry::<AnyMessage>();
    let typed = example::registry::<Gev>();
    let wire = gev_wire(&any);
    let mut varint_wire = BytesMut::new();
    for i in 0..MESSAGES {
        msg(i)
            .encode_length_delimited(&mut varint_wire)
            .expect("grows");
    }

    let mut group = c.benchmark_group("protobuf_decode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("gev_frames", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| {
                let mut codec = GevProtobuf::new();
                while let Some(frame) = codec.decode(&mut buf).expect("valid") {
                    black_box(frame);
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("gev_any_message", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| {
                let mut codec = GevProtobuf::new();
                while let Some(frame) = codec.decode(&mut buf).expect("valid") {
                    black_box(any.decode(frame).expect("registered"));
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("gev_enum", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| {
                let mut codec = GevProtobuf::new();
                while let Some(frame) = codec.decode(&mut buf).expect("valid") {
                    black_box(typed.decode(frame).expect("registered"));
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("varint_msg2", |b| {
        b.iter_batched(
            || varint_wire.clone(),
            |mut buf| {
                let mut codec = VarintDelimited::new();
                while let Some(payload) = codec.decode(&mut buf).expect("valid") {
                    black_box(Msg2::decode(payload).expect("valid"));
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let registry = example::registry::<AnyMessage>();
    let msgs: Vec<Msg2> = (0..MESSAGES).map(msg).collect();
    let mut group = c.benchmark_group("protobuf_encode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    let mut out = BytesMut::with_capacity(128 * MESSAGES);
    group.bench_function("gev_outbound", |b| {
        let codec = GevProtobuf::new();
        b.iter(|| {
            out.clear();
            for m in &msgs {
                let frame = registry.frame(Outbound::new(m)).expect("registered");
                codec.encode_frame(&frame, &mut out).expect("fits");
            }
            black_box(&out);
        });
    });
    group.bench_function("varint_msg2", |b| {
        let codec = VarintDelimited::new();
        b.iter(|| {
            out.clear();
            for m in &msgs {
                let len = m.encoded_len();
                codec.encode_header(len, &mut out).expect("fits");
                m.encode(&mut out).expect("grows");
            }
            black_box(&out);
        });
    });
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
