//! The driver API convention (`Server` / `ServerHandle`) over real sockets on 127.0.0.1.
//! Waits poll with a deadline; nothing sleeps to wait for readiness.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gale_core::codec::{Lines, Raw};
use gale_core::server::ServerConfig;
use gale_core::{Context, Handler};
use gale_tokio as driver;
use gale_tokio::gale_core;

/// Lines: `big` queues [`BIG`] bytes of reply lines, `bye` shuts down the write side;
/// anything else is echoed.
struct Cmd;

impl Handler for Cmd {
    type Protocol = Lines;
    type State = ();
    fn protocol(&self) -> Lines {
        Lines::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        if line == "big" {
            for _ in 0..BIG / LINE {
                let _ = cx.send(Bytes::from(vec![b'x'; LINE - 1]));
            }
        } else if line == "bye" {
            let _ = cx.send(line);
            cx.shutdown_write();
        } else {
            let _ = cx.send(line);
        }
    }
}

/// Raw echo that records the largest send queue it saw.
#[derive(Default)]
struct Echo {
    peak_queued: Arc<AtomicUsize>,
}

impl Handler for Echo {
    type Protocol = Raw;
    type State = ();
    fn protocol(&self) -> Raw {
        Raw::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, bytes: Bytes) {
        let _ = cx.send(bytes);
        self.peak_queued
            .fetch_max(cx.write_buffer_len(), Ordering::Relaxed);
    }
}

const BIG: usize = 16 << 20;
const LINE: usize = 64 * 1024;

fn start<H: Handler>(handler: H, config: ServerConfig) -> driver::ServerHandle<H> {
    driver::Server::new(handler)
        .config(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap()
}

fn connect<H: Handler>(server: &driver::ServerHandle<H>) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Reads to EOF (a reset after the server closed counts as EOF).
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    match stream.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read failed: {e}"),
    }
    buf
}

fn config(edit: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    edit(&mut config);
    config
}

#[test]
fn echo_round_trip_tcp_and_unix() {
    let server = start(Cmd, config(|_| {}));
    let mut c = connect(&server);
    c.write_all(b"hello\nworld\n").unwrap();
    assert_eq!(read_exact(&mut c, 12), b"hello\nworld\n");
    wait_until("one connection", || server.connection_count() == 1);
    drop(c);
    wait_until("no connection", || server.connection_count() == 0);
    server.stop();

    let path = std::env::temp_dir().join(format!(
        "{}-{}.sock",
        env!("CARGO_PKG_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let server = driver::Server::new(Cmd)
        .bind_unix(&path)
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(server.local_addr(), None);
    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(b"unix\n").unwrap();
    let mut buf = [0; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"unix\n");
    server.stop();
    assert!(!path.exists(), "the socket file is removed on stop");
}

#[test]
fn large_payload_is_echoed_byte_exact() {
    let server = start(Echo::default(), config(|_| {}));
    let mut c = connect(&server);
    let payload: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut writer = c.try_clone().unwrap();
    let sent = payload.clone();
    let t = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    assert!(read_exact(&mut c, payload.len()) == payload);
    t.join().unwrap();
}

#[test]
fn idle_connections_are_closed() {
    let server = start(
        Cmd,
        config(|c| {
            c.conn_mut()
                .set_idle_timeout(Some(Duration::from_millis(100)));
        }),
    );
    let mut c = connect(&server);
    c.write_all(b"a\n").unwrap();
    assert_eq!(read_to_end(&mut c), b"a\n");
    wait_until("no connection", || server.connection_count() == 0);
}

#[test]
fn conn_handle_sends_and_closes_from_another_thread() {
    let server = start(Cmd, config(|_| {}));
    let mut c = connect(&server);
    wait_until("one connection", || server.connection_count() == 1);
    let handle = server.connections().handles().pop().unwrap();
    std::thread::spawn(move || {
        handle.send(Bytes::from_static(b"pushed")).unwrap();
        handle.close().unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(read_to_end(&mut c), b"pushed\n");
    wait_until("no connection", || server.connection_count() == 0);
}

#[test]
fn run_every_fires_repeatedly_and_run_after_once() {
    let server = start(Cmd, config(|_| {}));
    let ticks = Arc::new(AtomicUsize::new(0));
    let once = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&ticks);
    server.run_every(Duration::from_millis(5), move || {
        t.fetch_add(1, Ordering::Relaxed);
    });
    let o = Arc::clone(&once);
    server.run_after(Duration::from_millis(5), move || {
        o.fetch_add(1, Ordering::Relaxed);
    });
    wait_until("three ticks", || ticks.load(Ordering::Relaxed) >= 3);
    wait_until("run_after", || once.load(Ordering::Relaxed) == 1);
    server.stop();
    let after_stop = ticks.load(Ordering::Relaxed);
    assert_eq!(once.load(Ordering::Relaxed), 1);
    assert_eq!(
        ticks.load(Ordering::Relaxed),
        after_stop,
        "timers end with the server"
    );
}

#[test]
fn max_connections_refuses_the_extra_one() {
    let server = start(
        Cmd,
        config(|c| {
            c.set_max_connections(Some(1));
        }),
    );
    let mut first = connect(&server);
    first.write_all(b"1\n").unwrap();
    assert_eq!(read_exact(&mut first, 2), b"1\n");
    let mut second = connect(&server);
    assert_eq!(read_to_end(&mut second), b"", "refused: closed at once");
    assert_eq!(server.connection_count(), 1);
    first.write_all(b"2\n").unwrap();
    assert_eq!(read_exact(&mut first, 2), b"2\n");
}

#[test]
fn stop_flushes_a_queued_reply() {
    let server = start(
        Cmd,
        config(|c| {
            c.set_stop_timeout(TIMEOUT);
            c.conn_mut().set_close_linger(TIMEOUT);
        }),
    );
    // A small receive window: most of the reply stays queued in the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket
        .connect(&server.local_addr().unwrap().into())
        .unwrap();
    let mut c: TcpStream = socket.into();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(b"big\n").unwrap();
    // The reply is queued (its first byte arrived) and far from written when stop begins.
    let first = read_exact(&mut c, 1);
    let stopper = std::thread::spawn(move || server.stop());
    let reply = [first, read_to_end(&mut c)].concat();
    assert_eq!(reply.len(), BIG);
    assert!(
        reply
            .chunks(LINE)
            .all(|l| l[..LINE - 1].iter().all(|&b| b == b'x') && l[LINE - 1] == b'\n')
    );
    stopper.join().unwrap();
}

#[test]
fn half_close_still_gets_replies_then_close() {
    let server = start(Cmd, config(|_| {}));
    let mut c = connect(&server);
    c.write_all(b"a\nb\nlast-without-newline").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"a\nb\nlast-without-newline\n");
    wait_until("no connection", || server.connection_count() == 0);
}

#[test]
fn server_shutdown_write_sends_fin_and_keeps_reading() {
    let server = start(Cmd, config(|_| {}));
    let mut c = connect(&server);
    c.write_all(b"bye\n").unwrap();
    assert_eq!(read_to_end(&mut c), b"bye\n", "reply, then FIN");
    // The server still reads: the connection stays open until the client finishes too.
    c.write_all(b"more\n").unwrap();
    assert_eq!(server.connection_count(), 1);
    c.shutdown(Shutdown::Write).unwrap();
    wait_until("no connection", || server.connection_count() == 0);
}

#[test]
fn slow_reader_is_bounded_by_the_watermark() {
    let high = 16 * 1024;
    let echo = Echo::default();
    let peak = Arc::clone(&echo.peak_queued);
    let server = start(
        echo,
        config(|c| {
            c.conn_mut().set_watermarks(4 * 1024, high);
        }),
    );
    let mut c = connect(&server);
    c.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Write without reading until the server stops taking bytes.
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0usize;
    loop {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
        assert!(
            sent < 256 << 20,
            "the server kept reading from a peer that does not read"
        );
    }
    // What the server holds is bounded by the high watermark plus one read's worth of reply.
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= high + 64 * 1024, "peak send queue {peak}");
    // Everything is still delivered once the peer reads.
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    let echoed = read_exact(&mut c, sent);
    assert!(echoed.iter().all(|&b| b == 7));
}

const TIMEOUT: Duration = Duration::from_secs(10);
