//! gale-core's WebSocket protocol over real sockets, on every driver: the upgrade, echo of
//! fragmented and large messages, the closing handshake, and the protocol's own deadlines
//! (handshake timeout, keepalive pings) reaching the driver's timers. Protocol rules are
//! tested in core on a virtual clock; these check the plumbing. Every socket has a timeout,
//! so a broken driver fails instead of hanging.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use gale_core::server::ServerConfig;
use gale_core::ws::{Message, Outbound, WebSocket, WsConfig};
use gale_core::{Context, Handler};
use gale_examples::{Driver, RunningServer, start};

struct WsEcho(Arc<WsConfig>);

impl Handler for WsEcho {
    type Protocol = WebSocket;
    type State = ();

    fn protocol(&self) -> WebSocket {
        WebSocket::new(self.0.clone())
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Message) {
        if let Some(echo) = Option::<Outbound>::from(msg) {
            let _ = cx.send(echo);
        }
    }
}

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn upgrade_echo_fragments_and_close_on_every_driver() {
    for &driver in Driver::ALL {
        let server = serve(driver, WsConfig::default());
        let mut s = connect(&*server);
        s.write_all(UPGRADE).unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "{driver:?}: {head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));

        s.write_all(&frame(0x81, b"hello")).unwrap();
        assert_eq!(read_frame(&mut s), (0x81, b"hello".to_vec()), "{driver:?}");

        let big: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i % 251) as u8).collect();
        let (a, rest) = big.split_at(1000);
        let (b, c) = rest.split_at(500_000);
        let mut wire = frame(0x02, a);
        wire.extend(frame(0x89, b"mid-message ping"));
        wire.extend(frame(0x00, b));
        wire.extend(frame(0x80, c));
        s.write_all(&wire).unwrap();
        assert_eq!(read_frame(&mut s), (0x8a, b"mid-message ping".to_vec()));
        assert_eq!(read_frame(&mut s), (0x82, big), "{driver:?}");

        s.write_all(&frame(0x88, &1000u16.to_be_bytes())).unwrap();
        assert_eq!(read_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
        assert_eof(&mut s, driver);
        server.stop();
    }
}

#[test]
fn refused_upgrade_and_handshake_timeout_on_every_driver() {
    for &driver in Driver::ALL {
        let mut config = WsConfig::default();
        config.set_handshake_timeout(Some(Duration::from_millis(200)));
        let server = serve(driver, config);

        let mut s = connect(&*server);
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
            .unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 400 "), "{driver:?}: {head}");
        drain_to_eof(&mut s, driver);

        let mut silent = connect(&*server);
        let head = read_head(&mut silent);
        assert!(head.starts_with("HTTP/1.1 408 "), "{driver:?}: {head}");
        drain_to_eof(&mut silent, driver);
        server.stop();
    }
}

#[test]
fn keepalive_pings_reach_the_client_on_every_driver() {
    for &driver in Driver::ALL {
        let mut config = WsConfig::default();
        config
            .set_ping_interval(Some(Duration::from_millis(50)))
            .set_pong_timeout(Duration::from_secs(30));
        let server = serve(driver, config);
        let mut s = connect(&*server);
        s.write_all(UPGRADE).unwrap();
        assert!(read_head(&mut s).starts_with("HTTP/1.1 101 "));
        assert_eq!(read_frame(&mut s), (0x89, Vec::new()), "{driver:?}");
        s.write_all(&frame(0x8a, b"")).unwrap();
        assert_eq!(
            read_frame(&mut s),
            (0x89, Vec::new()),
            "{driver:?}: second ping"
        );
        server.stop();
    }
}

fn serve(driver: Driver, ws: WsConfig) -> Box<dyn RunningServer<Outbound>> {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    start(driver, WsEcho(Arc::new(ws)), config, addr).expect("server starts")
}

fn connect(server: &dyn RunningServer<Outbound>) -> TcpStream {
    let s = TcpStream::connect(server.local_addr().expect("TCP server")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A masked client frame.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x0f, 0xf0, 0x55, 0xaa];
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads an HTTP response head (and nothing after it).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads one unmasked server frame: `(b0, payload)`.
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("a frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            usize::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            usize::try_from(u64::from_be_bytes(l)).unwrap()
        }
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    (h[0], payload)
}

fn assert_eof(s: &mut TcpStream, driver: Driver) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "{driver:?}: bytes after the close: {rest:?}"
        ),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{driver:?}"),
    }
}

fn drain_to_eof(s: &mut TcpStream, driver: Driver) {
    let mut rest = Vec::new();
    if let Err(e) = s.read_to_end(&mut rest) {
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{driver:?}");
    }
}
