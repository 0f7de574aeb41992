//! What permessage-deflate costs a connection in heap, measured with a counting allocator,
//! proof that a decompression bomb allocates no more than the message limit, and that a
//! connection with context takeover keeps its compressor and decompressor between messages
//! (echoing a message allocates its buffers, never the ~400 KB of zlib state again).
//!
//! One test function, so that no other test allocates while a region is measured. Run
//! with `cargo test -p gale-core --test deflate_memory -- --nocapture` to see the numbers
//! (they are in the `deflate` module docs).

use std::alloc::System;
use std::io::IoSlice;
use std::sync::Arc;

use bytes::BytesMut;
use gale_core::deflate::{
    DeflateConfig, DeflateError, DeflateParams, PerMessageDeflate, WindowBits,
};
use gale_core::ws::{Message, Outbound, WebSocket, WsConfig};
use gale_core::{ConnConfig, Connection, Context, Handler, PeerAddr};
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

/// The least of three measurements.
fn least_of_three(mut measure: impl FnMut() -> isize) -> isize {
    (0..3).map(|_| measure()).min().unwrap_or(isize::MAX)
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

    // Without it, nothing stays between messages. The counters are process-wide, and under
    // load a stray allocation of the test harness's can land in a window (seen: 900 B, one
    // run in 30 on a loaded machine), so each check takes the least of three messages: state
    // kept by the transform would show in every one.
    let mut pmd = codec(none);
    let mut out = BytesMut::with_capacity(8192);
    let kept = least_of_three(|| {
        out.clear();
        retained(|| pmd.compress(&payload, &mut out).expect("compresses"))
    });
    assert_eq!(kept, 0);
    let wire = out.split().freeze();
    assert_eq!(
        least_of_three(|| retained(|| drop(pmd.decompress(&wire, 4096).expect("inflates")))),
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

    warm_state_is_reused(decompressor);
}

/// With context takeover, a WebSocket echo through the connection engine allocates the
/// message's buffers only: a compressor or decompressor set up again per message (a
/// reset, or state dropped by mistake) would add its whole size to every echo.
fn warm_state_is_reused(decompressor: isize) {
    let now = t0();
    let mut config = WsConfig::default();
    config.deflate_mut().set_enabled(true);
    let mut conn = Connection::new(
        Arc::new(Echo(Arc::new(config))),
        ConnConfig::default(),
        PeerAddr::Unknown,
        now,
    );
    conn.handle_connect(now);
    let response = round(
        &mut conn,
        now,
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    );
    let response = String::from_utf8_lossy(&response).into_owned();
    assert!(response.contains("permessage-deflate"), "{response}");

    // The client's frames: compressed with context takeover (default parameters are
    // symmetric), masked with a zero key.
    let mut client = codec(DeflateParams::default());
    let mut frame = |i: usize| {
        let mut body = BytesMut::new();
        let text = text(2048 + i);
        client.compress(&text, &mut body).expect("compresses");
        let mut f = vec![0xc1, 0x80 | 126]; // FIN, RSV1, text; masked, 16-bit length
        f.extend_from_slice(&(body.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(&body);
        f
    };
    let first = frame(0);
    assert_eq!(round(&mut conn, now, &first)[0], 0xc1, "a compressed echo");
    let frames: Vec<Vec<u8>> = (1..=8).map(&mut frame).collect();
    let mut echoed = 0;
    let total = allocated(|| {
        for f in &frames {
            echoed += usize::from(round(&mut conn, now, f).first() == Some(&0xc1));
        }
    });
    let per_message = total / frames.len();
    println!("warm echo with context takeover: {per_message} B allocated per 2 KiB message");
    assert_eq!(echoed, frames.len());
    assert!(!conn.is_closed());
    // Buffers for a 2 KiB message: well under one decompressor (and a compressor is ~8x).
    assert!(per_message < decompressor as usize / 2, "{per_message}");
}

/// Echoes text and binary messages.
struct Echo(Arc<WsConfig>);

impl Handler for Echo {
    type Protocol = WebSocket;
    type State = ();

    fn protocol(&self) -> WebSocket {
        WebSocket::new(self.0.clone())
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Message) {
        let echo = match msg {
            Message::Text(text) => Outbound::Text(text),
            Message::Binary(data) => Outbound::Binary(data),
            _ => return,
        };
        cx.send(echo).expect("the send buffer has room");
    }
}

/// Feeds `input` in one read and returns (and accounts as written) what the connection
/// sends in reply.
fn round(conn: &mut Connection<Echo>, now: std::time::Instant, input: &[u8]) -> Vec<u8> {
    conn.handle_input(now, input);
    let mut iov = [IoSlice::new(&[]); 8];
    let n = conn.poll_transmit(&mut iov);
    let out: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
    conn.handle_written(now, out.len());
    out
}

#[allow(clippy::disallowed_methods)] // the origin of the virtual clock; everything else adds Durations
fn t0() -> std::time::Instant {
    std::time::Instant::now()
}
