//! permessage-deflate against RFC 7692's worked examples (§7.2.3), other implementations'
//! captured bytes, the size limit, context takeover, and round-trip properties.

use bytes::BytesMut;

use super::codec::TAIL;
use super::{DeflateConfig, DeflateError, DeflateParams, PerMessageDeflate, WindowBits};

const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// A transform at level 6, zlib's default, with which RFC 7692's examples were made (the
/// default level 1 writes other, equally valid bytes).
fn pmd(params: DeflateParams) -> PerMessageDeflate {
    let mut config = DeflateConfig::default();
    config.set_threshold(0).set_level(6);
    PerMessageDeflate::new(params, &config)
}

fn takeover() -> PerMessageDeflate {
    pmd(DeflateParams::default())
}

fn no_takeover() -> PerMessageDeflate {
    pmd(DeflateParams::default()
        .with_server_no_context_takeover(true)
        .with_client_no_context_takeover(true))
}

fn compress(p: &mut PerMessageDeflate, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    p.compress(payload, &mut out).unwrap();
    out.to_vec()
}

/// JSON-like text, deterministic, `n` bytes.
fn json(n: usize, seed: u64) -> Vec<u8> {
    let mut s = String::new();
    let mut x = seed;
    while s.len() < n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s += &format!(
            "{{\"id\":{},\"user\":\"user{}\",\"score\":{},\"active\":{}}},",
            x % 100_000,
            (x >> 17) % 997,
            (x >> 33) % 1000,
            x.is_multiple_of(2)
        );
    }
    s.truncate(n);
    s.into_bytes()
}

/// Bytes from an xorshift generator: incompressible.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn rfc_7_2_3_1_hello_byte_for_byte() {
    assert_eq!(compress(&mut takeover(), b"Hello"), HELLO);
    assert_eq!(&takeover().decompress(&HELLO, 5).unwrap()[..], b"Hello");
    // The same message in two fragments.
    let mut p = takeover();
    assert_eq!(p.decompress_fragment(&HELLO[..3], false, 5).unwrap(), b"He");
    assert_eq!(p.decompress_fragment(&HELLO[3..], true, 5).unwrap(), b"llo");
    assert_eq!(&p.take_inflated()[..], b"Hello");
}

#[test]
fn rfc_7_2_3_2_shared_window() {
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    let mut p = takeover();
    assert_eq!(compress(&mut p, b"Hello"), HELLO);
    assert_eq!(
        compress(&mut p, b"Hello"),
        second,
        "refers back to message 1"
    );
    let mut p = takeover();
    assert_eq!(&p.decompress(&HELLO, 5).unwrap()[..], b"Hello");
    assert_eq!(&p.decompress(&second, 5).unwrap()[..], b"Hello");
    // Without context takeover every message starts afresh: the same 7 bytes again, and
    // a back reference into the previous message is invalid.
    let mut p = no_takeover();
    assert_eq!(compress(&mut p, b"Hello"), HELLO);
    assert_eq!(compress(&mut p, b"Hello"), HELLO);
    assert_eq!(&p.decompress(&HELLO, 5).unwrap()[..], b"Hello");
    let err = p.decompress(&second, 5).unwrap_err();
    assert!(matches!(err, DeflateError::InvalidData(_)), "{err}");
    assert_eq!(err.close_code(), 1007);
}

#[test]
fn rfc_7_2_3_3_to_5_other_block_layouts() {
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    let two_blocks = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    for payload in [&stored[..], &bfinal, &two_blocks] {
        let mut p = takeover();
        assert_eq!(&p.decompress(payload, 5).unwrap()[..], b"Hello");
        // The connection goes on (after BFINAL with a fresh window).
        assert_eq!(&p.decompress(&HELLO, 5).unwrap()[..], b"Hello");
    }
    // Bytes after a BFINAL block, in later fragments too, are ignored.
    let mut p = takeover();
    p.decompress_fragment(&bfinal, false, 5).unwrap();
    assert_eq!(p.decompress_fragment(&HELLO, true, 5).unwrap(), b"");
    assert_eq!(&p.take_inflated()[..], b"Hello");
    assert!(!p.has_decompressor(), "a finished stream is not continued");
}

#[test]
fn rfc_7_2_3_6_empty_fragment_and_empty_message() {
    // A sender that flushed "Hello" (keeping the 00 00 ff ff of a non-final fragment)
    // ends the message with the empty stored block minus its tail: the byte 00.
    let mut p = takeover();
    let flushed = [&HELLO[..], &TAIL].concat();
    assert_eq!(p.decompress_fragment(&flushed, false, 5).unwrap(), b"Hello");
    assert_eq!(p.decompress_fragment(&[0x00], true, 5).unwrap(), b"");
    assert_eq!(&p.take_inflated()[..], b"Hello");
    // Empty messages compress to that byte, first or not, and inflate to nothing.
    let mut p = takeover();
    assert_eq!(compress(&mut no_takeover(), b""), [0x00]);
    assert_eq!(compress(&mut p, b""), [0x00]);
    assert_eq!(compress(&mut p, b""), [0x00]);
    assert_eq!(compress(&mut p, b"Hello"), HELLO);
    assert_eq!(compress(&mut p, b""), [0x00]);
    let mut p = takeover();
    for (payload, plain) in [
        (&[0x00][..], &b""[..]),
        (&[0x00], b""),
        (&HELLO, b"Hello"),
        (&[0x00], b""),
    ] {
        assert_eq!(&p.decompress(payload, 5).unwrap()[..], plain);
    }
}

#[test]
fn other_implementations_bytes() {
    // Captured from pywebsocket (in Jetty's tests): "tora" three times, context takeover.
    let mut p = takeover();
    for payload in [
        &[0x2a, 0xc9, 0x2f, 0x4a, 0x04, 0x00][..],
        &[0x2a, 0x01, 0x62, 0x00, 0x00],
        &[0x02, 0x61, 0x00, 0x00],
    ] {
        assert_eq!(&p.decompress(payload, 100).unwrap()[..], b"tora");
    }
    // Three messages with client_no_context_takeover.
    let mut p = no_takeover();
    for (payload, text) in [
        (
            &[0x0a, 0xc9, 0x2f, 0x4a, 0x0c, 0x01, 0x62, 0x00, 0x00][..],
            &b"ToraTora"[..],
        ),
        (
            &[
                0x72, 0x2c, 0xc9, 0x2f, 0x4a, 0x74, 0xcb, 0x01, 0x12, 0x00, 0x00,
            ],
            b"AtoraFlora",
        ),
        (
            &[
                0x0a, 0xc8, 0xc8, 0xc9, 0x2f, 0x4a, 0x0c, 0x01, 0x62, 0x00, 0x00,
            ],
            b"PhloraTora",
        ),
    ] {
        assert_eq!(&p.decompress(payload, 100).unwrap()[..], text);
    }
    // Jetty: a message in three fragments, each sync-flushed.
    let mut p = takeover();
    let fragments: [&[u8]; 3] = [
        &[
            0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ],
        &[
            0x0a, 0xcf, 0x2f, 0xca, 0x49, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff,
        ],
        &[0x52, 0x04, 0x00],
    ];
    let added: Vec<Vec<u8>> = fragments
        .iter()
        .enumerate()
        .map(|(i, f)| p.decompress_fragment(f, i == 2, 12).unwrap().to_vec())
        .collect();
    assert_eq!(added, [&b"Hello "[..], b"World", b"!"]);
    assert_eq!(&p.take_inflated()[..], b"Hello World!");
}

#[test]
fn context_takeover_shrinks_repeated_traffic() {
    let (a, b) = (json(2048, 1), json(2048, 1));
    let mut with = takeover();
    let first = compress(&mut with, &a).len();
    let second = compress(&mut with, &b).len();
    assert!(second * 10 < first, "{second} vs {first}");
    assert!(with.has_compressor(), "kept for the next message");
    let mut without = no_takeover();
    assert_eq!(compress(&mut without, &a).len(), first);
    assert_eq!(compress(&mut without, &b).len(), first);
    assert!(!without.has_compressor(), "freed after every message");
}

#[test]
fn state_is_allocated_lazily_and_freed_without_takeover() {
    let mut p = no_takeover();
    assert!(!p.has_compressor() && !p.has_decompressor());
    let wire = compress(&mut takeover(), &json(1000, 2));
    p.decompress_fragment(&wire[..10], false, 1000).unwrap();
    assert!(p.has_decompressor(), "held while the message lasts");
    p.decompress_fragment(&wire[10..], true, 1000).unwrap();
    assert!(!p.has_decompressor(), "freed at its end");
    assert_eq!(p.take_inflated(), json(1000, 2));

    let mut p = takeover();
    assert!(!p.has_compressor() && !p.has_decompressor());
    compress(&mut p, b"x");
    p.decompress(&HELLO, 5).unwrap();
    assert!(p.has_compressor() && p.has_decompressor());
}

#[test]
fn counters_tell_messages_compressed_and_inflated() {
    let mut p = takeover();
    assert_eq!((p.messages_compressed(), p.messages_inflated()), (0, 0));
    compress(&mut p, b"one");
    compress(&mut p, b"");
    p.decompress_fragment(&HELLO[..3], false, 100).unwrap();
    assert_eq!(p.messages_inflated(), 0, "counted when the message ends");
    p.decompress_fragment(&HELLO[3..], true, 100).unwrap();
    assert!(p.decompress(b"\xff\xff", 100).is_err());
    assert_eq!((p.messages_compressed(), p.messages_inflated()), (2, 1));
}

#[test]
fn threshold_decides_what_is_compressed() {
    let mut config = DeflateConfig::default();
    let p = PerMessageDeflate::new(DeflateParams::default(), &config);
    assert!(!p.should_compress(255));
    assert!(p.should_compress(256));
    config.set_threshold(0);
    let p = PerMessageDeflate::new(DeflateParams::default(), &config);
    assert!(p.should_compress(0));
}

#[test]
fn zip_bomb_stops_at_the_limit() {
    // 8 MiB of zeros deflate to ~8 KiB.
    let bomb = compress(&mut no_takeover(), &vec![0; 8 << 20]);
    assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
    let max = 64 * 1024;
    let mut p = no_takeover();
    let mut inflated = 0;
    let mut result = Ok(());
    for (i, chunk) in bomb.chunks(1).enumerate() {
        let fin = i + 1 == bomb.len();
        match p.decompress_fragment(chunk, fin, max) {
            Ok(added) => {
                inflated += added.len();
                assert!(p.inflate_capacity() <= max, "{}", p.inflate_capacity());
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    assert_eq!(result, Err(DeflateError::MessageTooLarge { max }));
    assert!(inflated > max / 2 && inflated <= max, "{inflated}");
    assert_eq!(p.inflate_capacity(), 0, "the message is dropped");
    assert!(!p.has_decompressor());
    // The connection is failed, but the value stays usable.
    assert_eq!(&p.decompress(&HELLO, 5).unwrap()[..], b"Hello");
}

#[test]
fn limit_is_exact() {
    for n in [0, 1, 4095, 4096, 4097, 8192, 20_000] {
        let plain = json(n, n as u64);
        let wire = compress(&mut no_takeover(), &plain);
        let mut p = no_takeover();
        assert_eq!(
            p.decompress(&wire, n).unwrap(),
            plain,
            "{n} bytes at a limit of {n}"
        );
        assert!(p.take_inflated().is_empty());
        if n > 0 {
            assert_eq!(
                p.decompress(&wire, n - 1),
                Err(DeflateError::MessageTooLarge { max: n - 1 }),
                "{n} bytes at a limit of {}",
                n - 1
            );
        }
    }
    // The limit counts the whole message, whether or not it was taken on the way.
    let wire = compress(&mut no_takeover(), &json(3000, 7));
    let mut p = no_takeover();
    p.decompress_fragment(&wire[..wire.len() / 2], false, 2999)
        .unwrap();
    let taken = p.take_inflated().len();
    assert!(taken > 0);
    let err = p.decompress_fragment(&wire[wire.len() / 2..], true, 2999);
    assert_eq!(err, Err(DeflateError::MessageTooLarge { max: 2999 }));
    assert_eq!(err.unwrap_err().close_code(), 1009);
}

#[test]
fn garbage_is_invalid_data() {
    for garbage in [
        &[0xff; 16][..],
        &[0x07, 0x00],
        &[0xf2, 0x00, 0x11, 0x00, 0x00],
    ] {
        let err = no_takeover().decompress(garbage, 1 << 20).unwrap_err();
        assert_eq!(err.close_code(), 1007, "{garbage:x?}: {err}");
    }
}

#[test]
fn an_untaken_message_is_dropped_by_the_next() {
    let mut p = takeover();
    p.decompress_fragment(&HELLO, true, 5).unwrap();
    assert_eq!(
        p.decompress_fragment(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, 5)
            .unwrap(),
        b"Hello"
    );
    assert_eq!(&p.take_inflated()[..], b"Hello");
}

#[test]
fn back_references_stay_within_the_negotiated_window() {
    // Repeats at distances from 100 to 20,000 bytes (up to twice the window), in two
    // messages (context takeover: references may reach into the earlier message, never
    // past the window).
    for bits in 8..=15 {
        let window = WindowBits::new(bits).unwrap();
        let mut plain = Vec::new();
        for period in [
            100, 200, 240, 250, 300, 500, 1000, 2000, 4000, 8000, 12_000, 20_000,
        ] {
            if period <= 2 * window.window_size() {
                let unit = noise(period, period as u64);
                plain.extend_from_slice(&unit);
                plain.extend_from_slice(&unit);
            }
        }
        let mut p = pmd(DeflateParams::default().with_server_max_window_bits(window));
        let mut stream = Vec::new();
        for _ in 0..2 {
            stream.extend_from_slice(&compress(&mut p, &plain));
            stream.extend_from_slice(&TAIL);
        }
        let (out, max_distance) = scan_deflate(&stream).unwrap();
        assert_eq!(out, plain.len() * 2);
        // zlib's MAX_DIST: 262 bytes short of the window; 8 bits run as 9 (250 < 256).
        let limit = (1usize << window.zlib()) - 262;
        assert!(
            max_distance <= limit,
            "{bits} bits: distance {max_distance}"
        );
        assert!(max_distance <= window.window_size());
        assert!(
            max_distance > limit / 2,
            "{bits} bits: the data does not test the window"
        );
    }
}

/// Walks a raw DEFLATE stream (RFC 1951) of whole blocks: the decoded length and the
/// longest back-reference distance. A test oracle: zlib-rs's inflater accepts distances up
/// to 32 KiB whatever its window bits, so it cannot check a window limit.
fn scan_deflate(data: &[u8]) -> Result<(usize, usize), &'static str> {
    const LBASE: [usize; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEXT: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let mut r = BitReader { data, pos: 0 };
    let (mut out, mut max_distance) = (0usize, 0usize);
    while r.pos < data.len() * 8 {
        let _bfinal = r.bits(1)?;
        let (lit, dist) = match r.bits(2)? {
            0 => {
                r.pos = r.pos.div_ceil(8) * 8;
                let len = r.bits(16)? as usize;
                let nlen = r.bits(16)? as usize;
                if len != !nlen & 0xffff {
                    return Err("stored block lengths");
                }
                r.pos += len * 8;
                out += len;
                continue;
            }
            1 => {
                let mut l = [8u8; 288];
                l[144..256].fill(9);
                l[256..280].fill(7);
                (Huffman::new(&l), Huffman::new(&[5; 30]))
            }
            2 => {
                let hlit = r.bits(5)? as usize + 257;
                let hdist = r.bits(5)? as usize + 1;
                let hclen = r.bits(4)? as usize + 4;
                let mut cl = [0u8; 19];
                for &i in &ORDER[..hclen] {
                    cl[i] = r.bits(3)? as u8;
                }
                let cl = Huffman::new(&cl);
                let mut lengths = Vec::new();
                while lengths.len() < hlit + hdist {
                    let (value, repeat) = match cl.decode(&mut r)? {
                        s @ 0..=15 => (s as u8, 1),
                        16 => (*lengths.last().ok_or("repeat first")?, 3 + r.bits(2)?),
                        17 => (0, 3 + r.bits(3)?),
                        _ => (0, 11 + r.bits(7)?),
                    };
                    lengths.extend(std::iter::repeat_n(value, repeat as usize));
                }
                (
                    Huffman::new(&lengths[..hlit]),
                    Huffman::new(&lengths[hlit..hlit + hdist]),
                )
            }
            _ => return Err("block type 3"),
        };
        loop {
            let sym = usize::from(lit.decode(&mut r)?);
            match sym {
                0..=255 => out += 1,
                256 => break,
                _ => {
                    let i = sym - 257;
                    let len = LBASE.get(i).ok_or("length code")? + r.bits(LEXT[i])? as usize;
                    let d = usize::from(dist.decode(&mut r)?);
                    let extra = if d < 4 { 0 } else { (d as u32 - 2) / 2 };
                    let base = if d < 4 {
                        d + 1
                    } else {
                        ((2 + d % 2) << extra) + 1
                    };
                    let distance = base + r.bits(extra)? as usize;
                    if distance > out {
                        return Err("distance before the start");
                    }
                    max_distance = max_distance.max(distance);
                    out += len;
                }
            }
        }
    }
    Ok((out, max_distance))
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    /// `n` bits, least significant first.
    fn bits(&mut self, n: u32) -> Result<u32, &'static str> {
        (0..n).try_fold(0, |acc, i| {
            let byte = self.data.get(self.pos / 8).ok_or("out of bits")?;
            let bit = u32::from(byte >> (self.pos % 8) & 1);
            self.pos += 1;
            Ok(acc | bit << i)
        })
    }
}

/// A canonical Huffman code (as in zlib's puff.c).
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        lengths.iter().for_each(|&l| counts[usize::from(l)] += 1);
        counts[0] = 0;
        let mut symbols = Vec::new();
        for len in 1..16 {
            symbols.extend((0..lengths.len() as u16).filter(|&s| lengths[usize::from(s)] == len));
        }
        Self { counts, symbols }
    }

    fn decode(&self, r: &mut BitReader<'_>) -> Result<u16, &'static str> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= r.bits(1)? as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("bad code")
    }
}

#[test]
fn default_level_writes_other_valid_bytes() {
    let mut p = PerMessageDeflate::new(DeflateParams::default(), &DeflateConfig::default());
    let mut out = BytesMut::new();
    p.compress(b"Hello", &mut out).unwrap();
    p.compress(b"Hello", &mut out).unwrap();
    // Level 1 refers back with a fixed-Huffman match (02 13 00 00), smaller than the RFC's.
    assert_eq!(&out[7..], [0x02, 0x13, 0x00, 0x00]);
    let mut r = takeover();
    assert_eq!(&r.decompress(&out[..7], 5).unwrap()[..], b"Hello");
    assert_eq!(&r.decompress(&out[7..], 5).unwrap()[..], b"Hello");
}

#[test]
fn incompressible_payloads_round_trip() {
    for level in [1, 6] {
        let mut config = DeflateConfig::default();
        config.set_level(level);
        for n in [1, 100, 4096, 70_000] {
            let plain = noise(n, 9);
            let mut out = BytesMut::new();
            PerMessageDeflate::new(DeflateParams::default(), &config)
                .compress(&plain, &mut out)
                .unwrap();
            // Level 1 always uses fixed Huffman codes: up to 9 bits per byte. Level 6
            // falls back to stored blocks: 5 bytes per block, plus the flush's 1 byte.
            let bound = if level == 1 {
                n + n / 8 + 8
            } else {
                n + 5 * (n / 16_384 + 1) + 1
            };
            assert!(out.len() <= bound, "level {level}: {n} -> {}", out.len());
            assert_eq!(takeover().decompress(&out, n).unwrap(), plain);
        }
    }
}

#[test]
fn compress_appends_to_what_out_holds() {
    let mut out = BytesMut::from(&b"header"[..]);
    takeover().compress(b"Hello", &mut out).unwrap();
    assert_eq!(&out[..6], b"header");
    assert_eq!(&out[6..], HELLO);
}

/// Parameters from a byte, as the fuzz helper reads them.
fn params(flags: u8) -> DeflateParams {
    let bits = |n: u8| WindowBits::new(8 + (n & 7)).unwrap();
    DeflateParams::default()
        .with_client_no_context_takeover(flags & 1 != 0)
        .with_server_no_context_takeover(flags & 2 != 0)
        .with_client_max_window_bits(bits(flags >> 2))
        .with_server_max_window_bits(bits(flags >> 5))
}

quickcheck::quickcheck! {
    /// Any messages, any parameters, any level, any fragmentation of the compressed bytes:
    /// what one side compresses, the other inflates back, message after message.
    fn roundtrip(flags: u8, level: u8, messages: Vec<(Vec<u8>, bool)>, cuts: Vec<usize>) -> bool {
        let p = params(flags);
        let mut config = DeflateConfig::default();
        config.set_level(u32::from(level % 10)).set_threshold(0);
        let mut server = PerMessageDeflate::new(p, &config);
        let mut client = PerMessageDeflate::new(p.mirrored(), &config);
        messages.iter().enumerate().all(|(i, (m, text))| {
            // Half of the messages are text-like, which compresses and back-references.
            let plain = if *text { json(m.len() * 8, m.len() as u64) } else { m.clone() };
            let (sender, receiver) = if i % 2 == 0 {
                (&mut server, &mut client)
            } else {
                (&mut client, &mut server)
            };
            let mut wire = BytesMut::new();
            sender.compress(&plain, &mut wire).unwrap();
            let mut at = 0;
            let mut inflated = Vec::new();
            for cut in cuts.iter().take(4) {
                let next = (at + cut % 64).min(wire.len());
                inflated.extend_from_slice(receiver.decompress_fragment(&wire[at..next], false, plain.len()).unwrap());
                at = next;
            }
            inflated.extend_from_slice(receiver.decompress_fragment(&wire[at..], true, plain.len()).unwrap());
            receiver.take_inflated() == inflated && inflated == plain
        })
    }
}
