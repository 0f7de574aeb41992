//! The `embed` example's hand-written mio loop, run in a thread on 127.0.0.1:0: echo (small
//! and large enough to hit backpressure and partial writes), idle timeout, graceful stop.
//! Sockets carry timeouts and waits poll with deadlines, so a broken loop fails a test
//! instead of hanging it.

#[path = "../examples/embed.rs"]
#[allow(dead_code)] // the example's `main` and `Args`
mod embed;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gale_core::codec::Raw;
use gale_core::{CloseReason, ConnConfig, Context, Handler};

#[test]
fn echo_is_byte_exact_from_one_byte_to_past_the_watermarks() {
    let server = start(ConnConfig::default());
    let mut small = connect(server.addr);
    small.write_all(b"hello").unwrap();
    let mut got = [0; 5];
    small.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");

    // 16 MiB through a small receive window: the loop's writes block, the connection goes
    // above its high watermark and stops reading, then resumes as the client drains.
    let payload = pattern(BIG);
    let mut big = connect_small_window(server.addr);
    let mut writer = big.try_clone().unwrap();
    let sent = payload.clone();
    let w = thread::spawn(move || writer.write_all(&sent).unwrap());
    let mut echoed = vec![0; payload.len()];
    big.read_exact(&mut echoed).unwrap();
    w.join().unwrap();
    assert!(echoed == payload, "the 16 MiB echo differs");
    assert!(
        server.backpressure.load(Ordering::SeqCst),
        "the echo never went above the high watermark: the test did not test it"
    );

    drop((small, big));
    wait_until("both connections closed", || server.closes().len() == 2);
    assert_eq!(server.closes(), vec![CloseReason::PeerClosed; 2]);
    server.stop();
}

#[test]
fn a_reply_far_larger_than_the_socket_buffers_goes_out_on_writability() {
    // Nothing more arrives after the request, so only WRITABLE readiness (interest derived
    // from `wants_write()`) can wake the loop to write the rest.
    let server = start(ConnConfig::default());
    let mut client = connect_small_window(server.addr);
    client.write_all(b"!").unwrap();
    let mut got = vec![0; BIG];
    client.read_exact(&mut got).unwrap();
    assert!(got == pattern(BIG), "the big reply differs");
    drop(client);
    wait_until("the connection closed", || server.closes().len() == 1);
    server.stop();
}

#[test]
fn an_idle_connection_is_closed_by_its_own_deadline() {
    let mut config = ConnConfig::default();
    config.set_idle_timeout(Some(Duration::from_millis(50)));
    let server = start(config);
    let mut client = connect(server.addr);
    client.write_all(b"ping").unwrap();
    let mut got = [0; 4];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    // Nothing more from us: the loop's poll timeout is the connection's idle deadline, and
    // the connection closes itself. We see the FIN.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    wait_until("on_close ran", || !server.closes().is_empty());
    assert_eq!(server.closes(), [CloseReason::IdleTimeout]);
    server.stop();
}

#[test]
fn stop_closes_open_connections_gracefully_and_returns() {
    let server = start(ConnConfig::default());
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for c in &mut clients {
        c.write_all(b"x").unwrap();
        let mut got = [0; 1];
        c.read_exact(&mut got).unwrap();
    }
    let closes = Arc::clone(&server.closes);
    server.stop();
    for mut c in clients {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    assert_eq!(*closes.lock().unwrap(), vec![CloseReason::Shutdown; 3]);
}

/// Echo that records every close reason and whether it saw backpressure; a connection's
/// first message, if it starts with `!`, is answered with [`BIG`] bytes of [`pattern`].
struct RecordingEcho(Arc<Mutex<Vec<CloseReason>>>, Arc<AtomicBool>);

impl Handler for RecordingEcho {
    type Protocol = Raw;
    /// Messages seen on the connection.
    type State = u64;

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        *cx.state() += 1;
        let reply = if *cx.state() == 1 && msg.starts_with(b"!") {
            Bytes::from(pattern(BIG))
        } else {
            msg
        };
        if cx.send(reply).is_err() {
            cx.close();
        }
        if !cx.is_writable() {
            self.1.store(true, Ordering::SeqCst); // above the high watermark: reading stops
        }
    }

    fn on_close(&self, _cx: &mut Context<'_, Self>, reason: &CloseReason) {
        self.0.lock().unwrap().push(reason.clone());
    }
}

/// The example's loop running in a thread, and what its handler saw.
struct Running {
    addr: SocketAddr,
    stop: Arc<embed::Stop>,
    closes: Arc<Mutex<Vec<CloseReason>>>,
    /// Whether a connection went above its high watermark.
    backpressure: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn closes(&self) -> Vec<CloseReason> {
        self.closes.lock().unwrap().clone()
    }

    fn stop(self) {
        self.stop.stop();
        self.thread.join().unwrap().expect("the loop returns Ok");
    }
}

/// Binds the example's server on an ephemeral port and runs its loop in a thread.
fn start(config: ConnConfig) -> Running {
    let server = embed::Server::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = server.listener.local_addr().unwrap();
    let stop = Arc::clone(&server.stop);
    let closes = Arc::default();
    let backpressure = Arc::new(AtomicBool::new(false));
    let handler = RecordingEcho(Arc::clone(&closes), Arc::clone(&backpressure));
    let thread = thread::spawn(move || server.run(handler, config));
    Running {
        addr,
        stop,
        closes,
        backpressure,
        thread,
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);
/// Far more than loopback socket buffers hold.
const BIG: usize = 16 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// A client with a small receive buffer, so the server's writes block long before 8 MiB are
/// through.
fn connect_small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).expect("connect");
    let s = TcpStream::from(socket);
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}
