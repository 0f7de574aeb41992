//! Scenario tests: a WebSocket connection against a scripted client on a virtual clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::fuzz::{Recorder, client_frame, server_frames, upgrade_request};
use super::{
    CloseCode, CloseFrame, HandshakeError, Message, Outbound, UpgradeDecision, Utf8Bytes,
    WebSocket, WsConfig, WsError,
};
use crate::buf::SendQueue;
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Protocol, ProtocolCx, ProtocolError, t0};

const KEY: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;
const FIN: u8 = 0x80;

fn harness(config: WsConfig) -> Harness<Recorder> {
    Harness::new(Recorder::new(Arc::new(config)), ConnConfig::default(), t0())
}

/// A connection past its handshake, with the 101 taken.
fn open(config: WsConfig) -> Harness<Recorder> {
    let mut h = harness(config);
    h.peer_send(&upgrade_request("/"));
    assert!(h.take_written().starts_with(b"HTTP/1.1 101 "));
    h
}

fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(b0, payload, Some(KEY))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// The frames the server wrote since the last call, as `(b0, payload)`.
fn written_frames(h: &mut Harness<Recorder>) -> Vec<(u8, Bytes)> {
    let wire = h.take_written();
    let frames = server_frames(&wire);
    let total: usize = frames
        .iter()
        .map(|(_, p)| super::frame::header_len(p.len()) + p.len())
        .sum();
    assert_eq!(total, wire.len(), "server wrote a partial or masked frame");
    frames
}

/// The status code of the server's close frame, if it sent exactly one last.
fn sent_close_code(frames: &[(u8, Bytes)]) -> Option<u16> {
    let (b0, payload) = frames.last()?;
    (*b0 == FIN | CLOSE).then(|| {
        if payload.len() >= 2 {
            u16::from_be_bytes([payload[0], payload[1]])
        } else {
            1005
        }
    })
}

fn messages(h: &mut Harness<Recorder>) -> Vec<Message> {
    std::mem::take(&mut h.conn().state().messages)
        .into_iter()
        .filter(|m| !matches!(m, Message::Open(_)))
        .collect()
}

fn text(s: &str) -> Message {
    Message::Text(Utf8Bytes::from(s))
}

/// Sends `input` and checks that the server answered with a close frame carrying `code`
/// and then closed.
fn assert_fails_with(config: WsConfig, input: &[u8], code: u16) {
    let mut h = open(config);
    h.peer_send(input);
    let frames = written_frames(&mut h);
    assert_eq!(sent_close_code(&frames), Some(code), "{frames:?}");
    let Some(CloseReason::Protocol(ProtocolError::WebSocket(e))) = h.closed() else {
        panic!("{:?}", h.closed());
    };
    assert_eq!(e.close_code(), Some(CloseCode(code)), "{e}");
}

// ---- handshake ----

#[test]
fn upgrade_delivers_open_with_request_and_subprotocol() {
    let mut config = WsConfig::default();
    config.set_on_upgrade(|req| {
        assert_eq!(req.origin(), Some("https://gale.test"));
        let chosen = req.subprotocols().find(|p| *p == "v2.gale");
        let mut d = UpgradeDecision::accept().with_header("X-Room", req.query().unwrap_or("-"));
        if let Some(p) = chosen {
            d = d.with_subprotocol(p);
        }
        d
    });
    let mut h = harness(config);
    let request = String::from_utf8(upgrade_request("/chat?room=7"))
        .unwrap()
        .replace(
            "\r\n\r\n",
            "\r\nOrigin: https://gale.test\r\nSec-WebSocket-Protocol: v1.gale, v2.gale\r\n\r\n",
        );
    h.peer_send(request.as_bytes());
    let out = h.take_written();
    let out = std::str::from_utf8(&out).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{out}"
    );
    assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(out.contains("Sec-WebSocket-Protocol: v2.gale\r\n"));
    assert!(out.contains("X-Room: room=7\r\n"));
    assert!(!out.contains("Content-Length"), "{out}");
    let msgs = std::mem::take(&mut h.conn().state().messages);
    let [Message::Open(up)] = &msgs[..] else {
        panic!("{msgs:?}");
    };
    assert_eq!((up.path(), up.query()), ("/chat", Some("room=7")));
    assert_eq!(up.subprotocol(), Some("v2.gale"));
    assert_eq!(up.head().header_str("origin"), Some("https://gale.test"));
    assert!(h.closed().is_none());
}

#[test]
fn frames_in_the_same_read_as_the_request_are_decoded() {
    let mut h = harness(WsConfig::default());
    let mut input = upgrade_request("/");
    input.extend_from_slice(&frame(FIN | TEXT, b"early"));
    h.peer_send(&input);
    let out = h.take_written();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&out[end..], b"\x81\x05early");
}

#[test]
fn every_refused_handshake_is_answered_with_its_status_and_closed() {
    let good = String::from_utf8(upgrade_request("/")).unwrap();
    let cases: Vec<(String, u16)> = vec![
        (good.replace("GET", "DELETE"), 405),
        (good.replace("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"), 400),
        (good.replace("HTTP/1.1\r\nHost", "HTTP/2.0\r\nHost"), 505),
        (good.replace("Upgrade: websocket", "Upgrade: h2c"), 426),
        (
            good.replace("Connection: Upgrade", "Connection: close"),
            400,
        ),
        (good.replace("Version: 13", "Version: 12"), 426),
        (good.replace("Sec-WebSocket-Version: 13\r\n", ""), 426),
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
        ),
        (good.replace("ZQ==", "ZQ"), 400),
        (good.replace("Host: gale.test\r\n", ""), 400),
        (
            good.replace("\r\n\r\n", "\r\nContent-Length: 4\r\n\r\nbody"),
            413,
        ),
        (
            good.replace(
                "\r\n\r\n",
                "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            400,
        ),
        (good.replace("GET / ", "GET /\x01 "), 400),
        (format!("{}{}", "X".repeat(9000), good), 431),
        (
            good.replace("\r\n\r\n", &"\r\nX-A: 1".repeat(70)) + "\r\n\r\n",
            431,
        ),
    ];
    for (request, status) in cases {
        let mut h = harness(WsConfig::default());
        h.peer_send(request.as_bytes());
        let out = h.take_written();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "expected {status} for {request:?}, got {out}"
        );
        assert!(out.contains("Connection: close\r\n"), "{out}");
        let Some(CloseReason::Protocol(ProtocolError::WebSocket(WsError::Handshake(e)))) =
            h.closed()
        else {
            panic!("{request:?}: {:?}", h.closed());
        };
        assert_eq!(e.status(), status);
        assert_eq!(h.conn().state().opened, 0);
    }
}

#[test]
fn hook_refusal_and_invalid_decisions() {
    let mut config = WsConfig::default();
    config.set_on_upgrade(|req| match req.path() {
        "/private" => UpgradeDecision::reject(403, "forbidden here"),
        "/bad" => UpgradeDecision::accept().with_subprotocol("never-offered"),
        _ => UpgradeDecision::accept(),
    });
    for (path, status) in [("/private", 403), ("/bad", 500), ("/ok", 101)] {
        let mut h = harness(config.clone());
        h.peer_send(&upgrade_request(path));
        let out = h.take_written();
        assert!(
            out.starts_with(format!("HTTP/1.1 {status} ").as_bytes()),
            "{path}: {out:?}"
        );
        assert_eq!(h.closed().is_some(), status != 101, "{path}");
    }
}

#[test]
fn handshake_timeout_closes_silent_and_slow_clients() {
    // A client that sends nothing at all.
    let mut h = harness(WsConfig::default());
    h.advance(Duration::from_millis(9_999));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert!(
        h.take_written()
            .starts_with(b"HTTP/1.1 408 Request Timeout\r\n")
    );
    assert_eq!(
        h.closed(),
        Some(&CloseReason::Protocol(
            WsError::Handshake(HandshakeError::Timeout).into()
        ))
    );

    // Slowloris: one byte a second never finishes the head in time.
    let mut config = WsConfig::default();
    config.set_handshake_timeout(Some(Duration::from_secs(3)));
    let mut h = harness(config);
    let start = h.now();
    for b in upgrade_request("/").iter().take(5) {
        h.peer_send(std::slice::from_ref(b));
        h.advance(Duration::from_secs(1));
        assert_eq!(
            h.closed().is_some(),
            h.now() - start >= Duration::from_secs(3)
        );
    }
    assert!(h.take_written().starts_with(b"HTTP/1.1 408 "));

    // A finished handshake disarms it.
    let mut h = open(WsConfig::default());
    h.advance(Duration::from_secs(60));
    assert!(h.closed().is_none());
    assert_eq!(h.conn().poll_timeout(), None);
}

#[test]
fn sends_before_the_upgrade_are_dropped() {
    let mut h = harness(WsConfig::default());
    h.handle().send(Outbound::Text("early".into())).unwrap();
    h.step();
    assert!(h.written().is_empty());
    assert!(h.closed().is_none());
}

// ---- frames and messages ----

#[test]
fn fragmented_message_with_interleaved_control_frames() {
    let mut h = open(WsConfig::default());
    let mut input = frame(TEXT, b"Hel");
    input.extend(frame(FIN | PING, b"p1"));
    input.extend(frame(CONT, b"lo, "));
    input.extend(frame(FIN | PONG, b"unsolicited"));
    input.extend(frame(FIN | PING, b""));
    input.extend(frame(FIN | CONT, b"world"));
    input.extend(frame(BINARY, &[1, 2]));
    input.extend(frame(FIN | CONT, &[3]));
    h.peer_send(&input);
    assert_eq!(
        messages(&mut h),
        [
            Message::Ping(Bytes::from_static(b"p1")),
            Message::Pong(Bytes::from_static(b"unsolicited")),
            Message::Ping(Bytes::new()),
            text("Hello, world"),
            Message::Binary(Bytes::from_static(&[1, 2, 3])),
        ]
    );
    let frames = written_frames(&mut h);
    assert_eq!(
        frames,
        [
            (FIN | PONG, Bytes::from_static(b"p1")),
            (FIN | PONG, Bytes::new()),
            (FIN | TEXT, Bytes::from_static(b"Hello, world")),
            (FIN | BINARY, Bytes::from_static(&[1, 2, 3])),
        ]
    );
}

#[test]
fn large_messages_echo_across_reads_and_in_two_chunks() {
    let mut h = open(WsConfig::default());
    for len in [0, 125, 126, 1024, 1025, 65_535, 65_536, 300_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        h.peer_send(&frame(FIN | BINARY, &payload));
        let frames = written_frames(&mut h);
        assert_eq!(frames, [(FIN | BINARY, Bytes::from(payload))], "len {len}");
    }
    assert_eq!(h.conn().recv_capacity(), 0, "receive buffer freed");
}

#[test]
fn utf8_split_at_every_byte_across_fragments() {
    let valid = "Hello-µ@ßöäüàá-UTF-8!! κόσμε \u{10ffff}".as_bytes();
    let invalid: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
    for (payload, ok) in [(valid, true), (invalid, false)] {
        for cut in 0..=payload.len() {
            let mut h = open(WsConfig::default());
            let mut input = frame(TEXT, &payload[..cut]);
            input.extend(frame(FIN | CONT, &payload[cut..]));
            h.peer_send(&input);
            let frames = written_frames(&mut h);
            if ok {
                assert_eq!(frames, [(FIN | TEXT, Bytes::from(payload))], "cut {cut}");
            } else {
                assert_eq!(sent_close_code(&frames), Some(1007), "cut {cut}");
                assert!(h.closed().is_some());
            }
        }
    }
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_the_message_arrives() {
    // Autobahn 6.4.x: the bad bytes arrive, the rest of the frame and message never does.
    let mut h = open(WsConfig::default());
    let mut first = frame(TEXT, "κόσμε".as_bytes());
    first.extend(&frame(FIN | CONT, b"\xf4\x90\x80\x80 and more to come")[..8]);
    h.peer_send(&first);
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1007));
    assert!(h.closed().is_some());
    // The same inside one frame, sent in pieces.
    let mut h = open(WsConfig::default());
    let whole = frame(FIN | TEXT, b"valid start \xed\xa0\x80 valid end");
    h.peer_send(&whole[..10]);
    assert!(h.closed().is_none());
    h.peer_send(&whole[10..22]);
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1007));
    assert!(h.closed().is_some());
    // A message that ends inside a code point.
    assert_fails_with(WsConfig::default(), &frame(FIN | TEXT, b"ab\xe2\x82"), 1007);
}

#[test]
fn protocol_violations_close_with_1002() {
    let mut cases: Vec<Vec<u8>> = vec![
        client_frame(FIN | TEXT, b"unmasked", None),
        frame(FIN | PING, &[0; 126]),
        frame(PING, b"fragmented control"),
        frame(FIN | CONT, b"nothing to continue"),
        [frame(TEXT, b"a"), frame(FIN | TEXT, b"b")].concat(),
        frame(FIN | CLOSE, &[0x03]),
        vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
    ];
    for rsv in [0x40, 0x20, 0x10] {
        cases.push(frame(FIN | rsv | TEXT, b"rsv"));
    }
    for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        cases.push(frame(FIN | op, b"reserved opcode"));
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000] {
        cases.push(frame(FIN | CLOSE, &close_payload(code, "")));
    }
    for input in cases {
        assert_fails_with(WsConfig::default(), &input, 1002);
    }
}

#[test]
fn valid_data_before_a_violation_is_still_delivered() {
    let mut h = open(WsConfig::default());
    let input = [frame(FIN | TEXT, b"first"), frame(FIN | 0x40 | TEXT, b"x")].concat();
    h.peer_send(&input);
    assert_eq!(messages(&mut h), [text("first")]);
    let frames = written_frames(&mut h);
    assert_eq!(frames[0], (FIN | TEXT, Bytes::from_static(b"first")));
    assert_eq!(sent_close_code(&frames), Some(1002));
}

// ---- limits ----

#[test]
fn oversized_frames_are_refused_from_the_header() {
    let mut config = WsConfig::default();
    config.set_max_frame_size(1000);
    let mut h = open(config.clone());
    // Only the header of a 1001-byte frame: refused before any payload arrives.
    h.peer_send(&frame(FIN | BINARY, &[0; 1001])[..8]);
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1009));
    assert!(h.closed().is_some());
    assert!(h.conn().recv_capacity() <= 4096);
    // Exactly at the limit is fine.
    let mut h = open(config);
    h.peer_send(&frame(FIN | BINARY, &[7; 1000]));
    assert_eq!(written_frames(&mut h).len(), 1);
    // A huge 64-bit length from the header alone.
    let huge = [
        0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ];
    assert_fails_with(WsConfig::default(), &huge, 1009);
}

#[test]
fn oversized_messages_are_refused_at_the_fragment_that_crosses_the_limit() {
    let mut config = WsConfig::default();
    config.set_max_message_size(10);
    let mut h = open(config.clone());
    h.peer_send(&[frame(TEXT, b"12345"), frame(CONT, b"67890")].concat());
    assert!(h.closed().is_none(), "exactly 10 so far");
    h.peer_send(&frame(FIN | CONT, b"!")[..6]);
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1009));
    assert!(h.closed().is_some());
    assert_fails_with(config, &frame(FIN | BINARY, &[0; 11]), 1009);
}

#[test]
fn limits_apply_in_raw_frame_mode_too() {
    let mut config = WsConfig::default();
    config.set_raw_frames(true).set_max_message_size(4);
    assert_fails_with(
        config,
        &[frame(BINARY, b"abc"), frame(FIN | CONT, b"de")].concat(),
        1009,
    );
}

// ---- close handshake ----

#[test]
fn peer_close_is_validated_echoed_and_closes() {
    for (payload, echo) in [
        (close_payload(1000, "bye"), Some(close_payload(1000, ""))),
        (Vec::new(), None),
        (close_payload(3000, ""), Some(close_payload(3000, ""))),
        (close_payload(4999, "app"), Some(close_payload(4999, ""))),
        (close_payload(1012, ""), Some(close_payload(1012, ""))),
    ] {
        let mut h = open(WsConfig::default());
        h.peer_send(&frame(FIN | CLOSE, &payload));
        let frames = written_frames(&mut h);
        assert_eq!(
            frames,
            [(FIN | CLOSE, Bytes::from(echo.unwrap_or_default()))]
        );
        assert_eq!(h.closed(), Some(&CloseReason::Local));
        let msgs = messages(&mut h);
        assert!(matches!(&msgs[..], [Message::Close(_)]), "{msgs:?}");
    }
    // The peer's frame, with its reason, reaches the handler.
    let mut h = open(WsConfig::default());
    h.peer_send(&frame(FIN | CLOSE, &close_payload(1001, "gone")));
    assert_eq!(
        messages(&mut h),
        [Message::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            "gone"
        )))]
    );
    // Bad reasons: 1007.
    assert_fails_with(
        WsConfig::default(),
        &frame(
            FIN | CLOSE,
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        ),
        1007,
    );
}

#[test]
fn close_in_the_middle_of_a_fragmented_message_is_echoed() {
    // Autobahn 7.1.5.
    let mut h = open(WsConfig::default());
    h.peer_send(
        &[
            frame(TEXT, b"frag"),
            frame(FIN | CLOSE, &close_payload(1000, "")),
        ]
        .concat(),
    );
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1000));
    assert!(h.closed().is_some());
}

#[test]
fn nothing_is_decoded_after_the_peer_closes() {
    let mut h = open(WsConfig::default());
    h.peer_send(&[frame(FIN | CLOSE, b""), frame(FIN | TEXT, b"late")].concat());
    assert_eq!(messages(&mut h), [Message::Close(None)]);
    assert_eq!(written_frames(&mut h).len(), 1);
}

#[test]
fn server_close_waits_for_the_peer_then_closes() {
    let mut h = open(WsConfig::default());
    let handle = h.handle();
    handle
        .send(Outbound::Close(Some(CloseFrame::new(
            CloseCode::NORMAL,
            "done",
        ))))
        .unwrap();
    handle.send(Outbound::Text("after close".into())).unwrap();
    h.step();
    assert_eq!(
        written_frames(&mut h),
        [(FIN | CLOSE, Bytes::from(close_payload(1000, "done")))]
    );
    assert!(h.closed().is_none(), "waiting for the peer's close frame");
    // Data still arriving is delivered; pings are not answered any more.
    h.peer_send(&[frame(FIN | TEXT, b"in flight"), frame(FIN | PING, b"")].concat());
    assert_eq!(written_frames(&mut h), []);
    h.peer_send(&frame(FIN | CLOSE, &close_payload(1000, "")));
    assert_eq!(written_frames(&mut h), [], "no second close frame");
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    let msgs = messages(&mut h);
    assert_eq!(msgs[0], text("in flight"));
    assert!(matches!(msgs.last(), Some(Message::Close(Some(_)))));
}

#[test]
fn server_close_gives_up_after_the_close_timeout() {
    let mut config = WsConfig::default();
    config.set_close_timeout(Duration::from_secs(2));
    let mut h = open(config);
    h.handle().send(Outbound::Close(None)).unwrap();
    h.step();
    assert_eq!(written_frames(&mut h), [(FIN | CLOSE, Bytes::new())]);
    h.advance(Duration::from_millis(1999));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn context_close_sends_1000_and_shutdown_sends_1001() {
    let mut h = open(WsConfig::default());
    h.peer_send(&frame(FIN | TEXT, b"close please"));
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1000));
    assert_eq!(h.closed(), Some(&CloseReason::Local));

    let mut h = open(WsConfig::default());
    let now = h.now();
    h.conn().handle_shutdown(now);
    h.step();
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1001));
    assert_eq!(h.closed(), Some(&CloseReason::Shutdown));
}

#[test]
fn peer_eof_mid_frame_closes_without_a_close_frame() {
    let mut h = open(WsConfig::default());
    h.peer_send(&frame(FIN | TEXT, b"cut short")[..5]);
    h.peer_eof();
    assert_eq!(written_frames(&mut h), []);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

// ---- keepalive ----

#[test]
fn keepalive_pings_and_closes_dead_peers() {
    let mut config = WsConfig::default();
    config
        .set_ping_interval(Some(Duration::from_secs(30)))
        .set_pong_timeout(Duration::from_secs(5));
    let mut h = open(config);
    h.advance(Duration::from_millis(29_999));
    assert_eq!(written_frames(&mut h), []);
    h.advance(Duration::from_millis(1));
    assert_eq!(written_frames(&mut h), [(FIN | PING, Bytes::new())]);
    // The pong arrives: next ping at 60 s, no close.
    h.advance(Duration::from_secs(2));
    h.peer_send(&frame(FIN | PONG, b""));
    h.advance(Duration::from_secs(28));
    assert_eq!(written_frames(&mut h), [(FIN | PING, Bytes::new())]);
    assert!(h.closed().is_none());
    // No answer this time: closed 5 s after the ping with 1001.
    h.advance(Duration::from_millis(4_999));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(sent_close_code(&written_frames(&mut h)), Some(1001));
    assert_eq!(
        h.closed(),
        Some(&CloseReason::Protocol(WsError::PongTimeout.into()))
    );
}

// ---- sending ----

#[test]
fn outbound_control_frames_are_checked() {
    let mut h = open(WsConfig::default());
    let handle = h.handle();
    handle
        .send(Outbound::Ping(Bytes::from_static(b"hi")))
        .unwrap();
    handle
        .send(Outbound::Pong(Bytes::from_static(b"")))
        .unwrap();
    handle
        .send(Outbound::Frame(super::Frame::new(
            false,
            super::OpCode::Text,
            "str",
        )))
        .unwrap();
    handle
        .send(Outbound::Frame(super::Frame::new(
            true,
            super::OpCode::Continuation,
            "eam",
        )))
        .unwrap();
    h.step();
    assert_eq!(
        written_frames(&mut h),
        [
            (FIN | PING, Bytes::from_static(b"hi")),
            (FIN | PONG, Bytes::new()),
            (TEXT, Bytes::from_static(b"str")),
            (FIN | CONT, Bytes::from_static(b"eam")),
        ]
    );
    // A ping that is too long is the sender's mistake; through a handle it ends the
    // connection, through a context it is an error returned to the caller.
    let mut send = SendQueue::new();
    let mut close = false;
    let mut proto = open_protocol(WsConfig::default());
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    assert!(
        proto
            .encode(&mut cx, Outbound::Ping(Bytes::from(vec![0; 126])))
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Close(Some(CloseFrame::new(CloseCode(1005), "")))
            )
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Frame(super::Frame::new(true, super::OpCode::Close, ""))
            )
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Frame(super::Frame::new(false, super::OpCode::Ping, ""))
            )
            .is_err()
    );
}

/// A protocol driven directly (no connection), past its handshake.
fn open_protocol(config: WsConfig) -> WebSocket {
    let mut ws = WebSocket::new(Arc::new(config));
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    let mut src = BytesMut::from(&upgrade_request("/")[..]);
    let open = ws.decode(&mut cx, &mut src).unwrap();
    assert!(matches!(open, Some(Message::Open(_))));
    assert!(ws.is_open());
    ws
}

// ---- memory ----

#[test]
fn idle_connection_holds_no_handshake_or_message_memory() {
    let mut ws = WebSocket::default();
    assert!(ws.heap_bytes() > 0, "the handshake decoder");
    ws = {
        let _ = ws;
        open_protocol(WsConfig::default())
    };
    assert_eq!(ws.heap_bytes(), 0, "decoder dropped at the upgrade");
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    let mut src =
        BytesMut::from(&[frame(BINARY, &[1; 3000]), frame(CONT, &[2; 3000])].concat()[..]);
    assert_eq!(ws.decode(&mut cx, &mut src).unwrap(), None);
    assert!(ws.heap_bytes() >= 6000, "fragments reassembling");
    src.extend_from_slice(&frame(FIN | CONT, b"!"));
    let msg = ws.decode(&mut cx, &mut src).unwrap();
    assert!(matches!(msg, Some(Message::Binary(b)) if b.len() == 6001));
    assert_eq!(ws.heap_bytes(), 0, "reassembly buffer freed");
    assert!(src.is_empty());
    assert!(size_of::<WebSocket>() <= 256, "{}", size_of::<WebSocket>());
}

#[test]
fn frame_size_hint_covers_the_frame_in_progress() {
    let mut ws = open_protocol(WsConfig::default());
    let wire = frame(FIN | BINARY, &[0; 70_000]);
    let mut src = BytesMut::from(&wire[..13]);
    assert_eq!(ws.frame_size_hint(&src), None, "header incomplete");
    src.extend_from_slice(&wire[13..14]);
    assert_eq!(ws.frame_size_hint(&src), Some(wire.len()));
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    src.extend_from_slice(&wire[14..100]);
    assert_eq!(ws.decode(&mut cx, &mut src).unwrap(), None);
    assert_eq!(ws.frame_size_hint(&src), Some(70_000), "header consumed");
}

// ---- properties ----

/// A client's message as a sequence of frames, possibly with control frames in between.
#[derive(Debug, Clone)]
struct Script {
    messages: Vec<(bool, Vec<u8>, u8)>,
    pings: Vec<bool>,
    key: u32,
}

impl Arbitrary for Script {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 6;
        let messages = (0..n)
            .map(|_| {
                let is_text = bool::arbitrary(g);
                let payload = if is_text {
                    String::arbitrary(g).into_bytes()
                } else {
                    Vec::<u8>::arbitrary(g)
                };
                (is_text, payload, u8::arbitrary(g) % 4 + 1)
            })
            .collect();
        Self {
            messages,
            pings: Vec::arbitrary(g),
            key: u32::arbitrary(g),
        }
    }
}

impl Script {
    /// The wire bytes, and the messages a correct server hands over.
    fn encode(&self) -> (Vec<u8>, Vec<Message>) {
        let key = Some(self.key.to_be_bytes());
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        let mut pings = self.pings.iter().cycle();
        for (i, (is_text, payload, parts)) in self.messages.iter().enumerate() {
            let parts = usize::from(*parts);
            let step = payload.len().div_ceil(parts).max(1);
            let chunks: Vec<&[u8]> = if payload.is_empty() {
                vec![&[]]
            } else {
                payload.chunks(step).collect()
            };
            for (j, chunk) in chunks.iter().enumerate() {
                let op = match (j, is_text) {
                    (0, true) => TEXT,
                    (0, false) => BINARY,
                    _ => CONT,
                };
                let last = j + 1 == chunks.len();
                wire.extend(client_frame(if last { FIN | op } else { op }, chunk, key));
                if last {
                    let body = Bytes::from(payload.clone());
                    expect.push(if *is_text {
                        Message::Text(Utf8Bytes::try_from(body).unwrap())
                    } else {
                        Message::Binary(body)
                    });
                }
                if pings.next() == Some(&true) {
                    let p = [i as u8, j as u8];
                    wire.extend(client_frame(FIN | PING, &p, key));
                    expect.push(Message::Ping(Bytes::copy_from_slice(&p)));
                }
            }
        }
        (wire, expect)
    }
}

#[test]
fn prop_any_chunking_gives_the_same_messages() {
    fn prop(script: Script, cuts: Vec<usize>) -> bool {
        let (wire, expect) = script.encode();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        let mut h = open(WsConfig::default());
        let mut start = 0;
        for cut in cuts {
            h.peer_send(&wire[start..cut]);
            start = cut;
        }
        let echoed = written_frames(&mut h)
            .iter()
            .filter(|(b0, _)| b0 & 0x0f != PONG)
            .count();
        messages(&mut h) == expect && h.closed().is_none() && echoed == script.messages.len()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Script, Vec<usize>) -> bool);
}

#[test]
fn prop_raw_frames_concatenate_to_the_messages() {
    fn prop(script: Script) -> bool {
        let (wire, expect) = script.encode();
        let mut config = WsConfig::default();
        config.set_raw_frames(true);
        let mut h = open(config);
        h.peer_send(&wire);
        let mut got = Vec::new();
        let mut current = Vec::new();
        for msg in messages(&mut h) {
            match msg {
                Message::Frame(f) => {
                    current.extend_from_slice(&f.payload);
                    if f.fin {
                        got.push(std::mem::take(&mut current));
                    }
                }
                Message::Ping(_) => {}
                _ => return false,
            }
        }
        let want: Vec<Vec<u8>> = expect
            .into_iter()
            .filter_map(|m| match m {
                Message::Text(t) => Some(t.as_bytes().to_vec()),
                Message::Binary(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        got == want
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(Script) -> bool);
}
