//! A WebSocket echo through the whole connection engine, with and without
//! permessage-deflate: one masked text frame of JSON in, inflate, the handler, compress, the
//! reply frame out. What the server of `bench/run-deflate.sh` does per message, minus the
//! kernel.
//!
//! Each connection cycles through 16 different messages of one size, compressed ahead of
//! time by a client-side compressor with context takeover (the server inflates them in the
//! order they were made). `plain`: no deflate; `takeover`: deflate with context takeover
//! (what browsers offer); `no_takeover`: `server_no_context_takeover;
//! client_no_context_takeover`. `xN`: N connections served in turn, one message each, as a
//! server with N busy connections does: their compressor state competes for the CPU caches.
//!
//! Run: `cargo bench -p gale-core --bench ws_echo`.

use std::hint::black_box;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gale_core::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};
use gale_core::ws::{Message, Outbound, WebSocket, WsConfig, apply_mask};
use gale_core::{ConnConfig, Connection, Context, Handler, PeerAddr};

const SIZES: [usize; 2] = [2048, 16384];
const MESSAGES: usize = 16;

/// Echoes text and binary messages, as the `websocket` example does.
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
        let _ = cx.send(echo);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Takeover,
    NoTakeover,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Takeover => "takeover",
            Self::NoTakeover => "no_takeover",
        }
    }

    fn offer(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Takeover => {
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            }
            Self::NoTakeover => {
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover\r\n"
            }
        }
    }
}

/// `n` bytes of JSON like `gale-load --payload json`: records of ids, names, numbers,
/// flags and tags from a small vocabulary, padded with letters to the size.
fn json(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "delta", "echo", "kilo", "lima", "oscar", "papa", "romeo", "sierra",
        "tango", "victor", "whiskey", "zulu", "north", "south",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut pick = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut s = format!(
        "{{\"kind\":\"batch\",\"seq\":{},\"items\":[",
        pick(1_000_000)
    );
    while s.len() + 240 < n {
        s += &format!(
            "{{\"id\":{},\"user\":\"{}.{}{}\",\"email\":\"{}@{}.example\",\"score\":{}.{:02},\
             \"active\":{},\"tags\":[\"{}\",\"{}\"],\"ts\":{},\"note\":\"{} {}\"}},",
            100_000 + pick(900_000),
            WORDS[pick(16) as usize],
            WORDS[pick(16) as usize],
            pick(1000),
            WORDS[pick(16) as usize],
            WORDS[pick(16) as usize],
            pick(10_000),
            pick(100),
            pick(2) == 1,
            WORDS[pick(16) as usize],
            WORDS[pick(16) as usize],
            1_732_000_000_000 + pick(100_000_000),
            WORDS[pick(16) as usize],
            WORDS[pick(16) as usize],
        );
    }
    s.pop();
    s += "],\"pad\":\"";
    while s.len() + 2 < n {
        s.push((b'a' + pick(26) as u8) as char);
    }
    s += "\"}";
    s.truncate(n);
    s.into_bytes()
}

/// The client's frames for one connection: masked text frames, compressed (RSV1) in order
/// by a client-side compressor unless `mode` is plain.
fn client_frames(size: usize, mode: Mode) -> Vec<Vec<u8>> {
    let takeover = mode == Mode::Takeover;
    let params = DeflateParams::default()
        .with_server_no_context_takeover(!takeover)
        .with_client_no_context_takeover(!takeover);
    // Default parameters are symmetric, so a server-role transform compresses as the
    // client does.
    let mut tx = PerMessageDeflate::new(params, &DeflateConfig::default());
    (0..MESSAGES)
        .map(|i| {
            let text = json(size, i as u64 + 1);
            let mut payload = BytesMut::new();
            let mut first = 0x81;
            if mode == Mode::Plain {
                payload.extend_from_slice(&text);
            } else {
                tx.compress(&text, &mut payload).expect("compresses");
                first |= 0x40; // RSV1
            }
            let key = [0x37, 0xfa, 0x21, i as u8];
            let mut frame = vec![first];
            match payload.len() {
                n @ 0..=125 => frame.push(0x80 | n as u8),
                n @ 126..=0xffff => {
                    frame.push(0x80 | 126);
                    frame.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    frame.push(0x80 | 127);
                    frame.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            frame.extend_from_slice(&key);
            apply_mask(&mut payload, key, 0);
            frame.extend_from_slice(&payload);
            frame
        })
        .collect()
}

/// An upgraded server connection that agreed on `mode`.
fn open(handler: &Arc<Echo>, mode: Mode, now: Instant) -> Connection<Echo> {
    let mut conn = Connection::new(
        handler.clone(),
        ConnConfig::default(),
        PeerAddr::Unknown,
        now,
    );
    conn.handle_connect(now);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        mode.offer()
    );
    conn.handle_input(now, request.as_bytes());
    let mut iov = [IoSlice::new(&[]); 8];
    let n = conn.poll_transmit(&mut iov);
    let response: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert_eq!(
        response.contains("permessage-deflate"),
        mode != Mode::Plain,
        "{response}"
    );
    conn.handle_written(now, response.len());
    conn
}

/// One echo: the frame arrives in one read, the reply leaves in one vectored write.
fn round(conn: &mut Connection<Echo>, now: Instant, frame: &[u8]) -> usize {
    conn.handle_input(now, frame);
    let mut iov = [IoSlice::new(&[]); 8];
    let n = conn.poll_transmit(&mut iov);
    let written: usize = iov[..n].iter().map(|s| s.len()).sum();
    conn.handle_written(now, written);
    written
}

fn bench_echo(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // benches are drivers: they own the clock
    let now = Instant::now();
    let mut config = WsConfig::default();
    config.deflate_mut().set_enabled(true);
    let handler = Arc::new(Echo(Arc::new(config)));
    let mut group = c.benchmark_group("ws_echo_json");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        for (mode, conns) in [
            (Mode::Plain, 1),
            (Mode::Takeover, 1),
            (Mode::NoTakeover, 1),
            (Mode::Plain, 50),
            (Mode::Takeover, 50),
            (Mode::NoTakeover, 50),
        ] {
            let frames = client_frames(size, mode);
            let mut servers: Vec<_> = (0..conns).map(|_| open(&handler, mode, now)).collect();
            let mut next = vec![0usize; conns];
            let mut i = 0;
            let name = format!("{}KiB/{}/x{conns}", size / 1024, mode.name());
            group.bench_function(name, |b| {
                b.iter(|| {
                    // Connection after connection, each on its own place in the cycle.
                    let k = i % conns;
                    i += 1;
                    let frame = &frames[next[k] % MESSAGES];
                    next[k] += 1;
                    black_box(round(&mut servers[k], now, frame))
                });
            });
            for conn in &servers {
                assert!(!conn.is_closed(), "an echo failed");
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_echo);
criterion_main!(benches);
