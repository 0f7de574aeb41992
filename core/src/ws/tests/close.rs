//! The closing handshake in both directions, and keepalive.

use super::*;

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
