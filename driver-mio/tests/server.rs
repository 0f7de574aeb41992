//! gale-mio specifics the driver conformance suite (examples/tests/conformance.rs) does not
//! cover: Unix domain sockets, several listeners, the per-turn work budget, stopping from a
//! server thread, stopping on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gale_core::codec::Raw;
use gale_core::server::ServerConfig;
use gale_core::{Context, Handler};
use gale_mio::Server;

#[test]
fn serves_tcp_and_a_unix_socket_at_once_and_removes_the_socket_file() {
    let path = socket_path("both");
    let server = Server::new(Echo)
        .config(two_loops())
        .bind("127.0.0.1:0")
        .unwrap()
        .bind_unix(&path)
        .unwrap()
        .start()
        .unwrap();
    let mut unix = UnixStream::connect(&path).unwrap();
    unix.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut tcp = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    for _ in 0..3 {
        unix.write_all(b"over unix").unwrap();
        let mut buf = [0; 9];
        unix.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"over unix");
        tcp.write_all(b"over tcp").unwrap();
        let mut buf = [0; 8];
        tcp.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"over tcp");
    }
    server.stop();
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn a_burst_is_read_to_the_end_when_every_turn_hits_the_work_budget() {
    // With a 4 KiB budget almost every turn stops with bytes left in the socket; the loop must
    // come back to the connection without a new readiness event (edge-triggered polling).
    let total = 8 << 20;
    let server = Server::new(Sink(total))
        .config(two_loops())
        .work_budget(4096)
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.set_write_timeout(Some(TIMEOUT)).unwrap();
    client.write_all(&vec![7; total]).unwrap();
    let mut reply = [0; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"done\n");
    server.stop();
}

#[test]
fn stop_from_a_server_timer_does_not_deadlock_and_wait_returns() {
    let server = Arc::new(
        Server::new(Echo)
            .config(two_loops())
            .bind("127.0.0.1:0")
            .unwrap()
            .start()
            .unwrap(),
    );
    let ran = Arc::new(AtomicBool::new(false));
    let (s, r) = (Arc::downgrade(&server), ran.clone());
    server.run_after(Duration::from_millis(1), move || {
        r.store(true, Ordering::SeqCst);
        if let Some(server) = s.upgrade() {
            server.stop();
        }
    });
    server.wait();
    assert!(ran.load(Ordering::SeqCst));
    server.stop();
}

#[test]
fn run_in_loop_runs_the_closure_on_that_loops_thread() {
    let server = Server::new(Echo)
        .config(two_loops())
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(server.loop_count(), 2);
    let (tx, rx) = std::sync::mpsc::channel();
    for index in 0..2 {
        let tx = tx.clone();
        server
            .run_in_loop(index, move || {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((index, name)).unwrap();
            })
            .unwrap();
    }
    let mut seen: Vec<_> = (0..2).map(|_| rx.recv_timeout(TIMEOUT).unwrap()).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (0, Some("gale-mio-loop-0".to_owned())),
            (1, Some("gale-mio-loop-1".to_owned()))
        ]
    );
    assert!(server.run_in_loop(2, || {}).is_err(), "no third loop");
    server.stop();
    assert!(server.run_in_loop(0, || {}).is_err(), "stopped server");
}

#[test]
fn dropping_the_handle_stops_the_server() {
    let server = Server::new(Echo)
        .config(two_loops())
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.write_all(b"accepted?").unwrap();
    let mut buf = [0; 9];
    client.read_exact(&mut buf).unwrap();
    drop(server);
    let mut buf = Vec::new();
    client.read_to_end(&mut buf).unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after drop"
    );
}

#[test]
fn a_start_that_fails_half_way_removes_the_socket_file_it_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let path = socket_path("half-way");
    let err = Server::new(Echo)
        .bind_unix(&path)
        .unwrap()
        .bind(taken.local_addr().unwrap())
        .unwrap()
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn run_serves_on_the_calling_thread_with_one_loop_and_no_other_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let mut config = ServerConfig::default();
        config.set_loops(Some(1));
        let caller = std::thread::current().id();
        Server::new(Where)
            .config(config)
            .bind("127.0.0.1:0")
            .unwrap()
            .run(|server| tx.send((server.clone(), caller)).unwrap())
            .unwrap();
    });
    let (server, caller) = rx.recv_timeout(TIMEOUT).unwrap();
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.write_all(b"?").unwrap();
    let mut buf = [0; 64];
    let n = client.read(&mut buf).unwrap();
    // The connection was accepted and served by the thread that called `run`: there is
    // no acceptor and no loop thread.
    assert_eq!(&buf[..n], format!("{caller:?}").as_bytes());
    server.stop();
    runner.join().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn start_without_an_address_fails() {
    let err = Server::new(Echo).start().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

struct Echo;

impl Handler for Echo {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        let _ = cx.send(msg);
    }
}

/// Answers every message with the id of the thread that served it.
struct Where;

impl Handler for Where {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, _: Bytes) {
        let _ = cx.send(Bytes::from(format!("{:?}", std::thread::current().id())));
    }
}

/// Says "done" once `.0` bytes have arrived.
struct Sink(usize);

impl Handler for Sink {
    type Protocol = Raw;
    type State = usize;

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        *cx.state() += msg.len();
        if *cx.state() == self.0 {
            let _ = cx.send(Bytes::from_static(b"done\n"));
        }
    }
}

fn two_loops() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    config
}

/// A fresh socket path in the temp directory, unique per test and process.
fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("gale-mio-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

const TIMEOUT: Duration = Duration::from_secs(30);
