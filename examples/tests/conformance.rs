//! The driver conformance suite: the same I/O plumbing checks, run against every driver in
//! [`DRIVERS`]. Everything runs on 127.0.0.1, every wait polls with a deadline, and sockets
//! carry timeouts so that a broken driver fails a test instead of hanging it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gale_core::codec::Raw;
use gale_core::server::{Balance, ServerConfig};
use gale_core::{CloseReason, Context, Handler, MailboxClosed, Outgoing};
use gale_examples::handlers::Echo;
use gale_examples::{Driver, RunningServer, run, start};

/// The drivers under test; a new driver is a new [`Driver`] variant.
const DRIVERS: &[Driver] = Driver::ALL;

/// Tests share the process's file descriptors: the fd-leak test runs alone (write lock),
/// the others together (read lock).
static FDS: RwLock<()> = RwLock::new(());

#[test]
fn echo_is_byte_exact_from_1_byte_to_8_mib_over_many_connections() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let sizes = [
            1,
            2,
            100,
            1460,
            4096,
            65_535,
            65_536,
            65_537,
            200_000,
            1 << 20,
            (3 << 20) + 17,
            8 << 20,
        ];
        let clients: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let addr = addr_of(&*server);
                thread::spawn(move || {
                    let payload = pattern(i as u64 + 1, len);
                    let got = echo_round_trip(addr, &payload);
                    assert!(got == payload, "{driver:?}: echo of {len} bytes differs");
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client thread");
        }
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn echo_works_with_every_balance_strategy_and_reuse_port() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        for (balance, reuse_port) in [
            (Balance::RoundRobin, false),
            (Balance::LeastConnections, false),
            (Balance::SourceHash, false),
            (Balance::RoundRobin, true),
        ] {
            let mut config = config();
            config.set_loops(Some(3)).set_balance(balance);
            config.set_reuse_port(reuse_port);
            let server = serve(driver, Echo, config);
            let mut clients: Vec<TcpStream> = (0..24).map(|_| connect(addr_of(&*server))).collect();
            for (i, c) in clients.iter_mut().enumerate() {
                let msg = format!("hello {i}");
                c.write_all(msg.as_bytes()).unwrap();
                let mut buf = vec![0; msg.len()];
                c.read_exact(&mut buf).unwrap();
                assert_eq!(
                    buf,
                    msg.as_bytes(),
                    "{driver:?} {balance:?} reuse={reuse_port}"
                );
            }
            drop(clients);
            wait_for_no_connections(&*server);
            server.stop();
        }
    }
}

#[test]
fn a_burst_far_larger_than_one_read_is_read_to_the_end() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let total = 16 << 20;
        let server = serve(driver, Sink(total), config());
        let mut client = connect(addr_of(&*server));
        client.write_all(&pattern(9, total)).unwrap();
        let mut reply = [0; 5];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"done\n", "{driver:?}");
        server.stop();
    }
}

#[test]
fn two_thousand_connections_with_traffic_leak_no_fds() {
    let _alone = FDS.write();
    rlimit::increase_nofile_limit(8192).expect("raise RLIMIT_NOFILE");
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let before = open_fds();
        let mut clients: Vec<TcpStream> = (0..2000).map(|_| connect(addr_of(&*server))).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("ping {i:04}\n").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let mut buf = [0; 10];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, format!("ping {i:04}\n").as_bytes(), "{driver:?}");
        }
        wait_until("2000 connections counted", || {
            server.connection_count() == 2000
        });
        assert_eq!(server.connections().len(), 2000);
        drop(clients);
        wait_for_no_connections(&*server);
        assert!(server.connections().is_empty());
        if let Some(before) = before {
            wait_until("fds back to the count before the clients", || {
                open_fds() == Some(before)
            });
        }
        server.stop();
    }
}

#[test]
fn a_client_that_stops_reading_costs_at_most_the_high_watermark_plus_one_read() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let probe = Arc::new(Probe::default());
        let mut config = config();
        config.conn_mut().set_watermarks(16 * 1024, 64 * 1024);
        let high = config.conn().high_watermark();
        let server = serve(driver, ProbeEcho(probe.clone()), config);
        let client = connect(addr_of(&*server));
        let total = 8 << 20;
        let payload = Arc::new(pattern(7, total));
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (mut client, payload, written) = (
                client.try_clone().unwrap(),
                payload.clone(),
                written.clone(),
            );
            thread::spawn(move || {
                for chunk in payload.chunks(16 * 1024) {
                    client.write_all(chunk).unwrap();
                    written.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            })
        };
        wait_until("the server pauses under backpressure", || {
            probe.paused.load(Ordering::SeqCst)
        });
        // Let a misbehaving driver show itself: wait until the writer stalls for a while
        // (a driver that kept reading would swallow all 8 MiB first).
        wait_until_stable("the writer stalls", || written.load(Ordering::SeqCst));
        let mut reader = client;
        let mut echoed = vec![0; total];
        reader.read_exact(&mut echoed).unwrap();
        writer.join().unwrap();
        assert!(echoed == *payload, "{driver:?}: echo differs");
        let (send, recv) = (
            probe.max_send.load(Ordering::SeqCst),
            probe.max_recv.load(Ordering::SeqCst),
        );
        assert!(
            send <= high + ONE_READ,
            "{driver:?}: {send} bytes queued for a non-reading peer (high watermark {high})"
        );
        assert!(
            recv <= ONE_READ,
            "{driver:?}: {recv} bytes read from a peer while paused"
        );
        server.stop();
    }
}

#[test]
fn idle_timeout_closes_the_idle_connection_and_not_the_active_one() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let mut config = config();
        config
            .conn_mut()
            .set_idle_timeout(Some(Duration::from_millis(1000)));
        let server = serve(driver, Echo, config);
        let mut idle = connect(addr_of(&*server));
        let mut active = connect(addr_of(&*server));
        idle.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0; 16];
        loop {
            assert!(
                Instant::now() < deadline,
                "{driver:?}: idle connection not closed"
            );
            ping(&mut active);
            match idle.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => panic!("{driver:?}: idle connection got {n} bytes"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("{driver:?}: idle connection failed: {e}"),
            }
        }
        ping(&mut active);
        wait_until("one connection left", || server.connection_count() == 1);
        drop(active);
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn a_foreign_thread_sends_and_closes_through_a_conn_handle() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let mut client = connect(addr_of(&*server));
        let registry = server.connections();
        wait_until("the connection is registered", || registry.len() == 1);
        let handle = registry.handles().pop().unwrap();
        let sender = handle.clone();
        thread::spawn(move || {
            sender.send(Bytes::from_static(b"from afar")).unwrap();
            sender.close().unwrap();
        })
        .join()
        .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"from afar", "{driver:?}");
        wait_until("the handle reports the close", || {
            handle.send(Bytes::from_static(b"late")) == Err(MailboxClosed)
        });
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn run_every_fires_repeatedly_and_run_after_once() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let ticks = Arc::new(AtomicUsize::new(0));
        let once = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        server.run_every(
            Duration::from_millis(5),
            Box::new(move || {
                t.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let o = once.clone();
        server.run_after(
            Duration::from_millis(5),
            Box::new(move || {
                o.fetch_add(1, Ordering::SeqCst);
            }),
        );
        wait_until("run_every fired 5 times", || {
            ticks.load(Ordering::SeqCst) >= 5
        });
        assert_eq!(once.load(Ordering::SeqCst), 1, "{driver:?}");
        server.stop();
    }
}

#[test]
fn run_every_broadcasts_to_every_connection() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let mut clients: Vec<TcpStream> = (0..8).map(|_| connect(addr_of(&*server))).collect();
        wait_until("8 connections registered", || {
            server.connections().len() == 8
        });
        let registry = server.connections();
        server.run_every(
            Duration::from_millis(10),
            Box::new(move || {
                registry.broadcast(&Bytes::from_static(b"hello\n"));
            }),
        );
        for c in &mut clients {
            let mut buf = [0; 12];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello\nhello\n", "{driver:?}");
        }
        server.stop();
    }
}

#[test]
fn max_connections_refuses_the_extra_connection() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let mut config = config();
        config.set_max_connections(Some(2));
        let server = serve(driver, Echo, config);
        let mut a = connect(addr_of(&*server));
        let mut b = connect(addr_of(&*server));
        ping(&mut a);
        ping(&mut b);
        let mut extra = connect(addr_of(&*server));
        let _ = extra.write_all(b"x");
        let mut buf = [0; 1];
        match extra.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("{driver:?}: extra connection not refused: {other:?}"),
        }
        assert_eq!(server.connection_count(), 2, "{driver:?}");
        drop(a);
        wait_until("a slot frees up", || server.connection_count() == 1);
        let mut c = connect(addr_of(&*server));
        ping(&mut c);
        ping(&mut b);
        server.stop();
    }
}

#[test]
fn stop_delivers_a_queued_reply_before_closing() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let probe = Arc::new(Probe::default());
        let mut config = config();
        config.set_stop_timeout(TIMEOUT);
        let server: Arc<dyn RunningServer<Bytes>> =
            Arc::from(serve(driver, BigReply(probe.clone()), config));
        let mut client = connect_small_window(addr_of(&*server));
        client.write_all(b"go").unwrap();
        wait_until("the reply is queued", || {
            probe.replied.load(Ordering::SeqCst)
        });
        let stopper = {
            let server = server.clone();
            thread::spawn(move || server.stop())
        };
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert!(
            got == big_reply(),
            "{driver:?}: reply lost or damaged ({} bytes)",
            got.len()
        );
        stopper.join().unwrap();
        assert_eq!(
            *probe.close_reason.lock().unwrap(),
            Some(CloseReason::Shutdown),
            "{driver:?}"
        );
        assert_eq!(server.connection_count(), 0);
        server.stop(); // idempotent
    }
}

#[test]
fn run_serves_on_the_calling_thread_and_a_timer_can_stop_it() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let (tx, rx) = std::sync::mpsc::channel();
        let runner = thread::spawn(move || {
            let mut config = ServerConfig::default();
            config.set_loops(Some(1));
            let caller = thread::current().id();
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            run(driver, Where, config, addr, |server| {
                tx.send((server, caller)).unwrap();
            })
            .expect("runs");
        });
        let (server, caller) = rx.recv_timeout(TIMEOUT).expect("on_start was called");
        let mut client = connect(addr_of(&*server));
        client.write_all(b"?").unwrap();
        let mut buf = [0; 64];
        let n = client.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            format!("{caller:?}").as_bytes(),
            "{driver:?}: served by another thread than run's caller"
        );
        // A stop from the server's own thread must not wait for itself.
        let handle = Arc::clone(&server);
        server.run_after(Duration::from_millis(1), Box::new(move || handle.stop()));
        // Another thread's wait returns once the server has stopped.
        server.wait();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{driver:?}");
        let deadline = Instant::now() + TIMEOUT;
        while !runner.is_finished() {
            assert!(Instant::now() < deadline, "{driver:?}: run did not return");
            thread::sleep(POLL);
        }
        runner.join().expect("runner");
    }
}

#[test]
fn peer_half_close_still_gets_every_reply_then_the_close() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        let client = connect_small_window(addr_of(&*server));
        let payload = Arc::new(pattern(3, 1 << 20));
        let writer = {
            let (mut client, payload) = (client.try_clone().unwrap(), payload.clone());
            thread::spawn(move || {
                client.write_all(&payload).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = Vec::new();
        (&client).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(
            got == *payload,
            "{driver:?}: {} of {} bytes",
            got.len(),
            payload.len()
        );
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn server_shutdown_write_sends_fin_and_keeps_reading() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let probe = Arc::new(Probe::default());
        let server = serve(driver, ShutdownOnBye(probe.clone()), config());
        let mut client = connect(addr_of(&*server));
        client.write_all(b"bye").unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye", "{driver:?}: the reply before the FIN");
        client.write_all(b"still there").unwrap();
        wait_until("the server reads after its FIN", || {
            probe.max_recv.load(Ordering::SeqCst) >= b"bye".len() + b"still there".len()
        });
        drop(client);
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn peer_reset_does_not_break_the_server() {
    let _shared = FDS.read();
    for &driver in DRIVERS {
        let server = serve(driver, Echo, config());
        // Reset right away, and reset with a reply in flight that the peer never reads.
        let quick = connect(addr_of(&*server));
        reset(quick);
        let mut busy = connect(addr_of(&*server));
        busy.write_all(&pattern(5, 256 * 1024)).unwrap();
        wait_until("the busy connection is registered", || {
            server.connection_count() >= 1
        });
        reset(busy);
        wait_for_no_connections(&*server);
        let mut fine = connect(addr_of(&*server));
        ping(&mut fine);
        drop(fine);
        wait_for_no_connections(&*server);
        server.stop();
    }
}

// --- handlers -----------------------------------------------------------------------------

/// What the probing handlers observed.
#[derive(Default)]
struct Probe {
    paused: AtomicBool,
    max_send: AtomicUsize,
    max_recv: AtomicUsize,
    replied: AtomicBool,
    close_reason: Mutex<Option<CloseReason>>,
}

impl Probe {
    fn record<H: Handler>(&self, cx: &Context<'_, H>) {
        self.max_send
            .fetch_max(cx.write_buffer_len(), Ordering::SeqCst);
        self.max_recv
            .fetch_max(cx.read_buffer_len(), Ordering::SeqCst);
        if !cx.is_writable() {
            self.paused.store(true, Ordering::SeqCst);
        }
    }
}

/// Echo that records buffer sizes after every callback.
struct ProbeEcho(Arc<Probe>);

impl Handler for ProbeEcho {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        self.0.record(cx);
        let _ = cx.send(msg);
        self.0.record(cx);
    }

    fn on_writable(&self, cx: &mut Context<'_, Self>) {
        self.0.record(cx);
    }
}

/// Answers the first message with a reply much larger than the socket buffers.
struct BigReply(Arc<Probe>);

impl Handler for BigReply {
    type Protocol = Raw;
    type State = bool;

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, _msg: Bytes) {
        if !*cx.state() {
            *cx.state() = true;
            cx.send(Bytes::from(big_reply())).unwrap();
            self.0.replied.store(true, Ordering::SeqCst);
        }
    }

    fn on_close(&self, _cx: &mut Context<'_, Self>, reason: &CloseReason) {
        *self.0.close_reason.lock().unwrap() = Some(reason.clone());
    }
}

/// Counts the bytes it receives and says "done" once `.0` bytes have arrived; every byte
/// sent must be read, also when the sender is much faster than the server.
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
            cx.send(Bytes::from_static(b"done\n")).unwrap();
        }
    }
}

/// Echoes "bye", then shuts down its write side; counts every byte it reads in `max_recv`.
/// Answers every message with the id of the thread that served it.
struct Where;

impl Handler for Where {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, _msg: Bytes) {
        let _ = cx.send(Bytes::from(format!("{:?}", thread::current().id())));
    }
}

struct ShutdownOnBye(Arc<Probe>);

impl Handler for ShutdownOnBye {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        self.0.max_recv.fetch_add(msg.len(), Ordering::SeqCst);
        if &msg[..] == b"bye" {
            cx.send(msg).unwrap();
            cx.shutdown_write();
        }
    }
}

fn big_reply() -> Vec<u8> {
    pattern(11, 4 << 20)
}

// --- helpers ------------------------------------------------------------------------------

/// Longest any single wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest window a connection reads into at once.
const ONE_READ: usize = 64 * 1024;
/// SO_RCVBUF of clients that must make the server's writes block.
const SMALL_WINDOW: usize = 4096;

fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    config
}

fn serve<H: Handler>(
    driver: Driver,
    handler: H,
    config: ServerConfig,
) -> Box<dyn RunningServer<Outgoing<H>>> {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    start(driver, handler, config, addr).expect("server starts")
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

/// A client with a small receive buffer: the server's writes block long before a large reply
/// is through, so its partial-write and `WRITABLE` paths run (loopback buffers would
/// otherwise swallow megabytes).
fn connect_small_window(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(SMALL_WINDOW).unwrap();
    socket.connect(&addr.into()).expect("connect");
    let s = TcpStream::from(socket);
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Sends `payload` from one thread while reading the echo on this one.
fn echo_round_trip(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut client = connect_small_window(addr);
    let mut writer = client.try_clone().unwrap();
    let owned = payload.to_vec();
    let w = thread::spawn(move || writer.write_all(&owned).unwrap());
    let mut got = vec![0; payload.len()];
    client.read_exact(&mut got).unwrap();
    w.join().unwrap();
    got
}

fn ping(stream: &mut TcpStream) {
    stream.write_all(b"?").unwrap();
    let mut buf = [0; 1];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"?");
}

/// Closes with SO_LINGER 0: the peer gets a reset instead of a FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn wait_for_no_connections<O: 'static>(server: &dyn RunningServer<O>) {
    wait_until("no connections left", || {
        server.connection_count() == 0 && server.connections().is_empty()
    });
}

/// Polls `cond` until it holds; fails the test after [`TIMEOUT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(POLL);
    }
}

/// Polls `value` until it stays the same for 25 polls in a row.
fn wait_until_stable(what: &str, mut value: impl FnMut() -> usize) {
    let deadline = Instant::now() + TIMEOUT;
    let (mut last, mut same) = (value(), 0);
    while same < 25 {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
        let now = value();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
}

/// Open file descriptors of this process (Linux only).
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

const POLL: Duration = Duration::from_millis(2);
