//! permessage-deflate: compressing and inflating JSON-like messages of 2 to 16 KiB.
//!
//! Each benchmark cycles through 16 different messages of one size (same keys, different
//! values, as an API's stream of events would be), so context takeover helps as much as
//! it would in real traffic and no more. `takeover`: one compressor (or decompressor) for
//! the whole stream; `no_takeover`: every message on its own, its state set up and freed
//! per message. Throughput is in uncompressed bytes. The compression ratios are printed
//! first. Run with `cargo bench -p gale-core --bench deflate`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gale_core::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};

const SIZES: [usize; 4] = [2048, 4096, 8192, 16384];
const MESSAGES: usize = 16;

/// `n` bytes of JSON-like text: an array of records with fixed keys and varying values.
fn json(n: usize, seed: u64) -> Vec<u8> {
    let mut s = String::from("[");
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    while s.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s += &format!(
            "{{\"id\":{},\"user\":\"user-{}\",\"email\":\"user{}@example.com\",\"score\":{}.{},\"active\":{},\"tags\":[\"t{}\",\"t{}\"],\"ts\":\"2026-11-{:02}T{:02}:{:02}:00Z\"}},",
            x % 1_000_000,
            (x >> 20) % 5000,
            (x >> 20) % 5000,
            (x >> 8) % 1000,
            x % 100,
            x.is_multiple_of(3),
            (x >> 40) % 50,
            (x >> 45) % 50,
            (x >> 30) % 28 + 1,
            (x >> 35) % 24,
            (x >> 50) % 60,
        );
    }
    s.truncate(n);
    s.into_bytes()
}

fn params(takeover: bool) -> DeflateParams {
    DeflateParams::default()
        .with_server_no_context_takeover(!takeover)
        .with_client_no_context_takeover(!takeover)
}

fn codec(takeover: bool, level: u32) -> PerMessageDeflate {
    let mut config = DeflateConfig::default();
    config.set_level(level).set_threshold(0);
    PerMessageDeflate::new(params(takeover), &config)
}

/// The messages of one size, and their compressed forms in order.
fn stream(size: usize, takeover: bool, level: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let plain: Vec<Vec<u8>> = (0..MESSAGES).map(|i| json(size, i as u64)).collect();
    let mut pmd = codec(takeover, level);
    let wire = plain
        .iter()
        .map(|m| {
            let mut out = BytesMut::new();
            pmd.compress(m, &mut out).expect("compresses");
            out.to_vec()
        })
        .collect();
    (plain, wire)
}

fn print_ratios() {
    eprintln!("permessage-deflate compressed/original (mean of {MESSAGES} messages):");
    for size in SIZES {
        let mut line = format!("  {:>2} KiB:", size / 1024);
        for (takeover, level) in [(true, 6), (false, 6), (true, 1), (false, 1)] {
            let (plain, wire) = stream(size, takeover, level);
            let ratio = wire.iter().map(Vec::len).sum::<usize>() as f64
                / plain.iter().map(Vec::len).sum::<usize>() as f64;
            let mode = if takeover { "takeover" } else { "no_takeover" };
            line += &format!("  level {level} {mode} {ratio:.3}");
        }
        eprintln!("{line}");
    }
}

fn bench_compress(c: &mut Criterion) {
    print_ratios();
    let mut group = c.benchmark_group("deflate_compress");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for (takeover, level) in [(true, 6), (false, 6), (true, 1), (false, 1)] {
            let (plain, _) = stream(size, takeover, level);
            let mode = if takeover { "takeover" } else { "no_takeover" };
            let mut pmd = codec(takeover, level);
            let mut out = BytesMut::with_capacity(2 * size);
            let mut i = 0;
            group.bench_function(format!("{}KiB/level{level}/{mode}", size / 1024), |b| {
                b.iter(|| {
                    out.clear();
                    pmd.compress(black_box(&plain[i % MESSAGES]), &mut out)
                        .expect("compresses");
                    i += 1;
                    black_box(out.len())
                });
            });
        }
    }
    group.finish();
}

fn bench_decompress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_decompress");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for takeover in [true, false] {
            let (_, wire) = stream(size, takeover, 6);
            let mode = if takeover { "takeover" } else { "no_takeover" };
            // Cycling is sound with takeover: message k refers only back into messages
            // 0..=k, which precede it again on every cycle.
            let mut pmd = codec(takeover, 6);
            let mut i = 0;
            group.bench_function(format!("{}KiB/{mode}", size / 1024), |b| {
                b.iter(|| {
                    let msg = pmd
                        .decompress(black_box(&wire[i % MESSAGES]), size)
                        .expect("inflates");
                    i += 1;
                    black_box(msg)
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_compress, bench_decompress);
criterion_main!(benches);
