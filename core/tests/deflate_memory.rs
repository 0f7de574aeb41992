//! What permessage-deflate costs a connection in heap, measured with a counting allocator,
//! and proof that a decompression bomb allocates no more than the message limit.
//!
//! One test function, so that no other test allocates while a region is measured. Run
//! with `cargo test -p gale-core --test deflate_memory -- --nocapture` to see the numbers
//! (they are in the `deflate` module docs).

use std::alloc::System;

use bytes::BytesMut;
use gale_core::deflate::{
    DeflateConfig, DeflateError, DeflateParams, PerMessageDeflate, WindowBits,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes still allocated after `f` (stats_alloc counts a growing reallocation's
/// difference as allocated, a shrinking one's as freed).
fn retained(f: impl FnOnce()) -> isize {
    let region = Region::new(GLOBAL);
    f();
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// An upper bound on what `f` held at once: everything it allocated or grew, ignoring
/// frees.
fn allocated(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    region.change().bytes_allocated
}

fn codec(params: DeflateParams) -> PerMessageDeflate {
    let mut config = DeflateConfig::default();
    config.set_threshold(0);
    PerMessageDeflate::new(params, &config)
}

fn text(n: usize) -> Vec<u8> {
    b"{\"event\":\"update\",\"id\":12345,\"values\":[1,2,3]},"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

#[test]
fn per_connection_cost_and_bomb_bound() {
    let payload = text(4096);
    let takeover = DeflateParams::default();
    let none = takeover
        .with_server_no_context_takeover(true)
        .with_client_no_context_takeover(true);

    // Creating the transform allocates nothing.
    let mut pmd = None;
    assert_eq!(retained(|| pmd = Some(codec(takeover))), 0);
    let mut pmd = pmd.expect("set above");

    // With context takeover the compressor stays after the first message.
    let mut out = BytesMut::with_capacity(8192);
    let compressor = retained(|| pmd.compress(&payload, &mut out).expect("compresses"));
    let wire = out.split().freeze();
    let decompressor = retained(|| drop(pmd.decompress(&wire, 4096).expect("inflates")));
    println!(
        "context takeover, 15 window bits: compressor {compressor} B, decompressor {decompressor} B"
    );
    assert!((200_000..600_000).contains(&compressor), "{compressor}");
    assert!((16_384..100_000).contains(&decompressor), "{decompressor}");

    for bits in [9, 12] {
        let bits = WindowBits::new(bits).expect("in range");
        let mut pmd = codec(takeover.with_server_max_window_bits(bits));
        let mut out = BytesMut::with_capacity(8192);
        let held = retained(|| pmd.compress(&payload, &mut out).expect("compresses"));
        println!("context takeover, {bits} window bits: compressor {held} B");
        assert!(held <= compressor);
    }

    // Without it, nothing stays between messages.
    let mut pmd = codec(none);
    let mut out = BytesMut::with_capacity(8192);
    assert_eq!(
        retained(|| pmd.compress(&payload, &mut out).expect("compresses")),
        0
    );
    let wire = out.split().freeze();
    assert_eq!(
        retained(|| drop(pmd.decompress(&wire, 4096).expect("inflates"))),
        0
    );
    println!("no context takeover: 0 B between messages");

    // A bomb: 4 MiB of zeros in ~4 KiB, against a 256 KiB limit. Everything the failed
    // inflation allocated, the decompressor included, stays under limit + 64 KiB.
    let mut out = BytesMut::new();
    let mut best = DeflateConfig::default();
    best.set_level(9);
    PerMessageDeflate::new(none, &best)
        .compress(&vec![0; 4 << 20], &mut out)
        .expect("compresses");
    let bomb = out.freeze();
    let max = 256 << 10;
    let mut pmd = codec(none);
    let mut result = Ok(());
    let total = allocated(|| result = pmd.decompress(&bomb, max).map(drop));
    println!(
        "bomb of {} B: {total} B allocated for a {max} B limit",
        bomb.len()
    );
    assert_eq!(result, Err(DeflateError::MessageTooLarge { max }));
    assert!(total <= max + 64 * 1024, "{total}");
}
