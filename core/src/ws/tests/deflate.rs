//! permessage-deflate on a connection: negotiation in the upgrade, RSV1, inflation limits.

use super::*;
use crate::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate};

const RSV1: u8 = 0x40;
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

fn deflate_config() -> WsConfig {
    let mut c = WsConfig::default();
    c.deflate_mut()
        .set_enabled(true)
        .set_threshold(0)
        .set_level(6);
    c
}

/// Upgrades with `extensions` offered; returns the harness and the 101's head.
fn open_offering(config: WsConfig, extensions: &str) -> (Harness<Recorder>, String) {
    let mut h = harness(config);
    let req = String::from_utf8(upgrade_request("/")).unwrap();
    let req = req.replace(
        "\r\n\r\n",
        &format!("\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"),
    );
    h.peer_send(req.as_bytes());
    let head = String::from_utf8(h.take_written().to_vec()).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    (h, head)
}

#[test]
fn negotiated_when_enabled_and_offered() {
    let (h, head) = open_offering(
        deflate_config(),
        "permessage-deflate; client_max_window_bits",
    );
    assert!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{head}"
    );
    drop(h);
    let (_, head) = open_offering(WsConfig::default(), "permessage-deflate");
    assert!(
        !head.contains("Sec-WebSocket-Extensions"),
        "off by default: {head}"
    );
    let (_, head) = open_offering(deflate_config(), "permessage-deflate; bogus");
    assert!(
        !head.contains("Sec-WebSocket-Extensions"),
        "declined: {head}"
    );
}

#[test]
fn compressed_messages_in_and_out() {
    let (mut h, _) = open_offering(deflate_config(), "permessage-deflate");
    // RFC 7692 7.2.3.1/7.2.3.2: "Hello", then "Hello" referring back; then fragmented.
    let mut input = frame(FIN | RSV1 | TEXT, &HELLO);
    input.extend(frame(FIN | RSV1 | TEXT, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    input.extend(frame(RSV1 | BINARY, &HELLO[..3]));
    input.extend(frame(FIN | PING, b"p"));
    input.extend(frame(FIN | CONT, &HELLO[3..]));
    input.extend(frame(FIN | TEXT, b"plain"));
    h.peer_send(&input);
    assert_eq!(
        messages(&mut h),
        [
            text("Hello"),
            text("Hello"),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Binary(Bytes::from_static(b"Hello")),
            text("plain"),
        ]
    );
    // Echoes go out compressed, with context takeover, RSV1 on each message.
    let frames = written_frames(&mut h);
    assert_eq!(frames[0], (FIN | RSV1 | TEXT, Bytes::from_static(&HELLO)));
    assert_eq!(
        frames[1],
        (
            FIN | RSV1 | TEXT,
            Bytes::from_static(&[0xf2, 0x00, 0x11, 0x00, 0x00])
        )
    );
    assert_eq!(frames[2], (FIN | PONG, Bytes::from_static(b"p")));
    let mut client = PerMessageDeflate::new(
        DeflateParams::default().with_client_no_context_takeover(false),
        &DeflateConfig::default(),
    );
    for (b0, payload) in &frames[..2] {
        assert_eq!(b0 & RSV1, RSV1);
        assert_eq!(&client.decompress(payload, 100).unwrap()[..], b"Hello");
    }
    assert_eq!(frames[3].0, FIN | RSV1 | BINARY);
    assert_eq!(frames[4].0, FIN | RSV1 | TEXT);
}

#[test]
fn rsv1_rules() {
    // Without the extension, RSV1 is a protocol error.
    assert_fails_with(WsConfig::default(), &frame(FIN | RSV1 | TEXT, &HELLO), 1002);
    for input in [
        frame(FIN | RSV1 | PING, b""),
        [
            frame(RSV1 | TEXT, &HELLO[..3]),
            frame(FIN | RSV1 | CONT, &HELLO[3..]),
        ]
        .concat(),
        frame(FIN | 0x20 | TEXT, b"x"),
    ] {
        let (mut h, _) = open_offering(deflate_config(), "permessage-deflate");
        h.peer_send(&input);
        assert_eq!(
            sent_close_code(&written_frames(&mut h)),
            Some(1002),
            "{input:x?}"
        );
    }
}

#[test]
fn bad_data_bombs_and_bad_text() {
    let mut bomb_out = BytesMut::new();
    let mut c = DeflateConfig::default();
    c.set_level(9);
    PerMessageDeflate::new(DeflateParams::default(), &c)
        .compress(&vec![b'a'; 1 << 20], &mut bomb_out)
        .unwrap();
    let mut invalid_text = BytesMut::new();
    PerMessageDeflate::new(DeflateParams::default(), &c)
        .compress(b"\xff\xfe", &mut invalid_text)
        .unwrap();
    for (input, code) in [
        (frame(FIN | RSV1 | TEXT, &[0xff; 8]), 1007),
        (frame(FIN | RSV1 | BINARY, &bomb_out), 1009),
        (frame(FIN | RSV1 | TEXT, &invalid_text), 1007),
    ] {
        let mut config = deflate_config();
        config.set_max_message_size(64 * 1024);
        let (mut h, _) = open_offering(config, "permessage-deflate");
        h.peer_send(&input);
        assert_eq!(sent_close_code(&written_frames(&mut h)), Some(code));
    }
}
