//! WebSocket frames in memory: decoding (header parse, unmask, UTF-8 check), unmasking alone,
//! and encoding.
//!
//! Run: `cargo bench -p gale-core --bench ws`; CI runs it in quick test mode
//! (`cargo test -p gale-core --benches`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gale_core::buf::SendQueue;
use gale_core::ws::{Message, Outbound, WebSocket, WsConfig, apply_mask};
use gale_core::{Protocol, ProtocolCx};

const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (512, "512B"),
    (4096, "4KiB"),
    (1024 * 1024, "1MiB"),
];

/// Frames per batch, so small frames are measured over ~256 KiB of input.
fn batch(size: usize) -> usize {
    (256 * 1024 / size).max(1)
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    let mut body = payload.to_vec();
    apply_mask(&mut body, KEY, 0);
    out.extend_from_slice(&body);
    out
}

#[allow(clippy::disallowed_methods)] // the one clock read: an origin for the protocol
fn now() -> Instant {
    Instant::now()
}

/// A protocol past its handshake.
fn open(now: Instant) -> WebSocket {
    let mut ws = WebSocket::new(Arc::new(WsConfig::default()));
    let mut send = SendQueue::new();
    let mut close = false;
    let mut src = BytesMut::from(
        &b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"[..],
    );
    let opened = ws.decode(&mut ProtocolCx::new(now, &mut send, &mut close), &mut src);
    assert!(matches!(opened, Ok(Some(Message::Open(_)))));
    ws
}

fn decode(c: &mut Criterion) {
    let now = now();
    for (opcode, name) in [(0x2, "ws_decode_binary"), (0x1, "ws_decode_text")] {
        let mut group = c.benchmark_group(name);
        for (size, label) in SIZES {
            let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
            let n = batch(size);
            let wire = client_frame(opcode, &payload).repeat(n);
            group.throughput(Throughput::Bytes((size * n) as u64));
            group.bench_function(label, |b| {
                let mut ws = open(now);
                let mut send = SendQueue::new();
                let mut close = false;
                b.iter_batched_ref(
                    || BytesMut::from(&wire[..]),
                    |src| {
                        let mut cx = ProtocolCx::new(now, &mut send, &mut close);
                        let mut got = 0;
                        while let Ok(Some(msg)) = ws.decode(&mut cx, src) {
                            black_box(msg);
                            got += 1;
                        }
                        assert!(got >= n);
                    },
                    BatchSize::LargeInput,
                );
            });
        }
        group.finish();
    }
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_unmask");
    for (size, label) in SIZES {
        let mut buf = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0));
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let now = now();
    let mut group = c.benchmark_group("ws_encode");
    for (size, label) in SIZES {
        let payload = Bytes::from(vec![b'x'; size]);
        let n = batch(size);
        group.throughput(Throughput::Bytes((size * n) as u64));
        group.bench_function(label, |b| {
            let mut ws = open(now);
            let mut close = false;
            b.iter(|| {
                let mut send = SendQueue::new();
                let mut cx = ProtocolCx::new(now, &mut send, &mut close);
                for _ in 0..n {
                    let msg = Outbound::Binary(payload.clone());
                    ws.encode(&mut cx, msg).expect("encodable");
                }
                black_box(send.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode, unmask, encode);
criterion_main!(benches);
