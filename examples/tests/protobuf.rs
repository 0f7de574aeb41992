//! End to end: the `protobuf` example's server on every driver, driven by the
//! `protobuf-client` logic (thousands of random messages, every reply checked) and by a
//! client that speaks gev's wire format from hand-built bytes. Everything runs on 127.0.0.1;
//! sockets carry timeouts and waits poll with deadlines, so a broken server fails a test
//! instead of hanging it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use gale_core::server::ServerConfig;
use gale_examples::protobuf::ProtobufServer;
use gale_examples::protobuf::client::{self, ClientConfig};
use gale_examples::{Driver, RunningServer, start};

#[test]
fn thousands_of_random_messages_round_trip_on_every_driver() {
    for (i, &driver) in Driver::ALL.iter().enumerate() {
        let server = serve(driver);
        let mut config = ClientConfig::new(addr_of(&*server));
        config.conns = 4;
        config.count = 1500;
        config.seed = 7 + i as u64;
        config.timeout = TIMEOUT;
        let report = client::run(&config).unwrap_or_else(|e| panic!("{driver:?}: {e}"));
        assert_eq!(report.messages(), 6000, "{driver:?}");
        assert!(report.msg1 > 0 && report.msg2 > 0, "{driver:?}: {report:?}");
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn the_client_notices_a_server_that_answers_wrongly() {
    // The length-prefixed echo server sends the requests back: not what the client expects.
    let server = start(
        Driver::Mio,
        gale_examples::handlers::FrameEcho,
        ServerConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .expect("server starts");
    let mut config = ClientConfig::new(server.local_addr().unwrap());
    config.count = 10;
    config.timeout = TIMEOUT;
    let err = client::run(&config).expect_err("echoed requests are not responses");
    assert!(
        matches!(err, client::ClientError::Mismatch { index: 0, .. }),
        "{err}"
    );
    server.stop();
}

/// gev's client (`example/protobuf/client`) frames with `protobuf.PackMessage` and encodes
/// with Go's `proto.Marshal`; these bytes are built the same way by hand, without gale's
/// encoder, and so are the replies they must get.
#[test]
fn gev_packed_frames_get_gev_packed_replies_on_every_driver() {
    let requests: Vec<(&str, Vec<u8>, String)> = vec![
        // What gev's client sends for the line "hello": Msg1{Name, Id: 1} ...
        (
            "msg1",
            [field(1, b"hello"), vec![0x10, 0x01]].concat(),
            "msg1 id=1 name=hello".into(),
        ),
        // ... or Msg2{Name, Alias: "big " + Name, Id: 2}.
        (
            "msg2",
            [field(1, b"hello"), field(2, b"big hello"), vec![0x18, 0x02]].concat(),
            "msg2 id=2 name=hello alias=big hello".into(),
        ),
        // All fields at their defaults: an empty payload, a 6-byte frame.
        ("msg2", Vec::new(), "msg2 id=0 name= alias=".into()),
        // A negative int32 is a 10-byte varint.
        (
            "msg1",
            [vec![0x10], vec![0xff; 9], vec![0x01]].concat(),
            "msg1 id=-1 name=".into(),
        ),
        // Fields in another order than the tags, and UTF-8.
        (
            "msg1",
            [vec![0x10, 0x96, 0x01], field(1, "héllo 🦀".as_bytes())].concat(),
            "msg1 id=150 name=héllo 🦀".into(),
        ),
        // A payload over gale's 256-byte inline-copy threshold.
        (
            "msg1",
            [field(1, &[b'x'; 300]), vec![0x10, 0x2a]].concat(),
            format!("msg1 id=42 name={}", "x".repeat(300)),
        ),
    ];
    let mut wire = Vec::new();
    let mut want = Vec::new();
    for (name, payload, content) in &requests {
        wire.extend(pack_message(name, payload));
        want.extend(pack_message("response", &field(1, content.as_bytes())));
    }
    assert_eq!(
        &wire[..19],
        b"\x00\x00\x00\x0f\x00\x04msg1\x0a\x05hello\x10\x01",
        "gev's framing, spelled out"
    );
    for &driver in Driver::ALL {
        let server = serve(driver);
        let mut stream = connect(addr_of(&*server));
        stream.set_nodelay(true).unwrap();
        // Frames cut at arbitrary points, as TCP may deliver them.
        for chunk in wire.chunks(7) {
            stream.write_all(chunk).unwrap();
        }
        let mut got = vec![0; want.len()];
        stream.read_exact(&mut got).unwrap();
        assert!(got == want, "{driver:?}: replies differ from gev's packing");
        stream.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{driver:?}: bytes after the last reply");
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn an_unknown_type_name_closes_the_connection_after_earlier_replies() {
    for &driver in Driver::ALL {
        let server = serve(driver);
        let mut stream = connect(addr_of(&*server));
        let wire = [
            pack_message("msg1", &[0x10, 0x01]),
            pack_message("msg3", b"?"),
            pack_message("msg1", &[0x10, 0x02]),
        ]
        .concat();
        stream.write_all(&wire).unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        let want = pack_message("response", &field(1, b"msg1 id=1 name="));
        assert_eq!(got, want, "{driver:?}: one reply, then the close");
        wait_for_no_connections(&*server);
        server.stop();
    }
}

/// gev's `plugins/protobuf.PackMessage`, line for line.
fn pack_message(msg_type: &str, data: &[u8]) -> Vec<u8> {
    let type_len = msg_type.len();
    let length = data.len() + type_len + 2;
    let mut ret = vec![0; length + 4];
    ret[..4].copy_from_slice(&u32::try_from(length).unwrap().to_be_bytes());
    ret[4..6].copy_from_slice(&u16::try_from(type_len).unwrap().to_be_bytes());
    ret[6..6 + type_len].copy_from_slice(msg_type.as_bytes());
    ret[6 + type_len..].copy_from_slice(data);
    ret
}

/// A protobuf length-delimited field (wire type 2: strings) with a tag below 16.
fn field(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag << 3 | 2];
    let mut len = value.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(value);
    out
}

const TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(2);

fn serve(driver: Driver) -> Box<dyn RunningServer<gale_core::protobuf::Outbound>> {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    start(
        driver,
        ProtobufServer::new(),
        config,
        "127.0.0.1:0".parse().unwrap(),
    )
    .expect("server starts")
}

fn addr_of<O>(server: &dyn RunningServer<O>) -> SocketAddr {
    server.local_addr().expect("a TCP address")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn wait_for_no_connections<O>(server: &dyn RunningServer<O>) {
    let deadline = Instant::now() + TIMEOUT;
    while server.connection_count() != 0 {
        assert!(Instant::now() < deadline, "connections still open");
        thread::sleep(POLL);
    }
}
