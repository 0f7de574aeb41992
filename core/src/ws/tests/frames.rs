//! Frames and messages: fragmentation, UTF-8, violations, limits.

use super::*;

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
