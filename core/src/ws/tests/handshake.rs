//! The upgrade: accepted, refused with every status, timed out.

use super::*;

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
