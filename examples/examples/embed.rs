//! Embedding gale-core in an event loop you own: an echo server on a hand-written `mio::Poll`
//! loop, with no gale driver. Read it top to bottom; it is the whole contract between a
//! driver and gale-core (`docs/architecture.md`, "Core: the connection contract").
//!
//! `cargo run --example embed -- --port 1833 --idle-ms 10000`, then `nc 127.0.0.1 1833`.
//!
//! gale-core never touches a socket or a clock. For each TCP connection we keep a
//! `gale_core::Connection` and do four things:
//!
//! 1. **inputs**: bytes read (`handle_input`), EOF (`handle_eof`), bytes written
//!    (`handle_written`), a passed deadline (`handle_timeout`), socket errors;
//! 2. **the drain rule**: after every input, drain `poll_event` (close the socket, shut down
//!    its write side), then `poll_transmit` (vectored write, `handle_written`), then read
//!    `poll_timeout`;
//! 3. **timers**: the poll timeout is the earliest `poll_timeout` of all connections;
//! 4. **interest**: readable while `wants_read()`, writable while `wants_write()`.
//!
//! Everything else (decoding, idle timeout, backpressure, graceful close) is the
//! connection's business. The handler is the examples' `Echo`; any `Handler` works, except
//! that `Context::handle` returns `None` here: a `ConnHandle` needs a mailbox into the loop
//! (`Connection::set_handle`; gale-mio's is a queue plus a `mio::Waker`), left out for brevity.

use std::collections::HashMap;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use gale_core::{ConnConfig, Connection, Event, Handler, PeerAddr};
use gale_examples::handlers::Echo;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

/// Echo server on a hand-written mio loop driving gale-core directly.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Close connections idle for this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    idle_ms: u64,
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_writer(io::stderr).init();
    // Limits, watermarks and timeouts: one per-connection config, with defaults.
    let mut config = ConnConfig::default();
    config.set_idle_timeout(Some(Duration::from_millis(args.idle_ms)));
    let server = Server::bind(SocketAddr::new(args.bind, args.port))?;
    let stop = Arc::clone(&server.stop);
    ctrlc::set_handler(move || stop.stop()).map_err(io::Error::other)?;
    println!("listening on {}", server.listener.local_addr()?);
    server.run(Echo, config)
}

/// A `mio::Poll` with a listener, and a way to stop the loop from another thread.
pub(crate) struct Server {
    poll: Poll,
    pub(crate) listener: TcpListener,
    pub(crate) stop: Arc<Stop>,
}

/// A stop flag, and the `Waker` that makes the loop look at it.
pub(crate) struct Stop(AtomicBool, Waker);

impl Stop {
    pub(crate) fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
        let _ = self.1.wake();
    }
}

/// One connection: its socket, gale's state machine, and the interest registered with mio.
struct Client<H: Handler> {
    stream: TcpStream,
    conn: Connection<H>,
    interest: Option<Interest>,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

impl Server {
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let stop = Arc::new(Stop(AtomicBool::new(false), waker));
        Ok(Self {
            poll,
            listener,
            stop,
        })
    }

    /// Serves `handler` until stopped, then closes every connection gracefully (replies
    /// flushed within the close linger, `on_close` called) and returns.
    pub(crate) fn run<H: Handler>(mut self, handler: H, config: ConnConfig) -> io::Result<()> {
        let handler = Arc::new(handler);
        let mut conns: HashMap<Token, Client<H>> = HashMap::new();
        let mut next_token = 2;
        let mut events = Events::with_capacity(1024);
        // One read buffer for every connection: gale copies only the bytes that arrived.
        let mut scratch = vec![0; 64 * 1024];
        let mut stopping = false;
        loop {
            // Timers: sleep until the earliest deadline of any connection (idle timeout, close
            // linger, handler timers). A scan is fine here; a server with many connections
            // keeps them in a `gale_core::timer::TimerQueue` instead.
            let next = conns.values().filter_map(|c| c.conn.poll_timeout()).min();
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                result => result?,
            }
            // gale-core takes the time as a parameter: the loop reads the clock once a turn.
            let now = Instant::now();
            let registry = self.poll.registry();
            for event in &events {
                match event.token() {
                    WAKER => {} // the stop flag is checked below
                    LISTENER => loop {
                        // Accept everything pending: a `Connection`, then `handle_connect`
                        // (the handler's `on_connect` may already queue bytes).
                        let (stream, peer) = match self.listener.accept() {
                            Ok(accepted) => accepted,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                break;
                            }
                        };
                        let peer = PeerAddr::Tcp(peer);
                        let conn = Connection::new(handler.clone(), config.clone(), peer, now);
                        let token = Token(next_token);
                        next_token += 1;
                        conns.insert(
                            token,
                            Client {
                                stream,
                                conn,
                                interest: None,
                            },
                        );
                        drive(&mut conns, registry, token, now, &mut scratch, |c| {
                            c.handle_connect(now)
                        });
                    },
                    // Readable or writable, we do the same: write what is queued, and read
                    // until the socket would block (mio is edge-triggered).
                    token => drive(&mut conns, registry, token, now, &mut scratch, |_| {}),
                }
            }
            let due: Vec<Token> = conns
                .iter()
                .filter(|(_, c)| c.conn.poll_timeout().is_some_and(|at| at <= now))
                .map(|(&token, _)| token)
                .collect();
            for token in due {
                drive(&mut conns, registry, token, now, &mut scratch, |c| {
                    c.handle_timeout(now)
                });
            }
            if !stopping && self.stop.0.load(Ordering::SeqCst) {
                // Stop accepting; ask every connection to flush and close.
                stopping = true;
                registry.deregister(&mut self.listener)?;
                let all: Vec<Token> = conns.keys().copied().collect();
                for token in all {
                    drive(&mut conns, registry, token, now, &mut scratch, |c| {
                        c.handle_shutdown(now)
                    });
                }
            }
            if stopping && conns.is_empty() {
                return Ok(());
            }
        }
    }
}

/// Gives one connection one input, then serves it (drain, read, drain, … until the socket
/// would block or the connection wants no more); then drops it if it closed, or registers
/// the interest its state asks for.
fn drive<H: Handler>(
    conns: &mut HashMap<Token, Client<H>>,
    registry: &Registry,
    token: Token,
    now: Instant,
    scratch: &mut [u8],
    input: impl FnOnce(&mut Connection<H>),
) {
    let Some(client) = conns.get_mut(&token) else {
        return; // it closed earlier in this turn
    };
    input(&mut client.conn);
    let mut closed = client.serve(now, scratch);
    if !closed && let Err(e) = client.update_interest(registry, token) {
        client.conn.handle_io_error(now, e.kind());
        closed = client.serve(now, scratch);
    }
    if closed && let Some(mut client) = conns.remove(&token) {
        // Dropping the stream closes the socket; mio wants it deregistered first.
        if client.interest.is_some() {
            let _ = registry.deregister(&mut client.stream);
        }
    }
}

impl<H: Handler> Client<H> {
    /// Drains, then reads while the connection wants input. Returns whether it closed.
    fn serve(&mut self, now: Instant, scratch: &mut [u8]) -> bool {
        loop {
            if self.drain(now) {
                return true;
            }
            // `wants_read()` is false under backpressure (too much queued for a slow reader),
            // after EOF and while closing. Only writes make it true again, and `drain`
            // returns here after them, so no readiness edge is lost.
            if !self.conn.wants_read() {
                return false;
            }
            match self.stream.read(scratch) {
                Ok(0) => self.conn.handle_eof(now),
                Ok(n) => self.conn.handle_input(now, &scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.conn.handle_io_error(now, e.kind()),
            }
        }
    }

    /// The drain rule: events first, then vectored writes until nothing is left or the
    /// socket would block. `handle_written` is an input too, so events are drained again
    /// after each write. Returns whether the connection closed.
    fn drain(&mut self, now: Instant) -> bool {
        loop {
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::ShutdownWrite => drop(self.stream.shutdown(Shutdown::Write)),
                    Event::Closed(reason) => {
                        tracing::debug!(%reason, "connection closed");
                        return true;
                    }
                    _ => {} // `Event` is non-exhaustive: nothing else exists yet
                }
            }
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.conn.poll_transmit(&mut slices);
            if n == 0 {
                return false;
            }
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => self.conn.handle_io_error(now, ErrorKind::WriteZero),
                Ok(written) => self.conn.handle_written(now, written),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // The peer is behind: queued replies stop sharing read buffers.
                    self.conn.handle_write_blocked();
                    return false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.conn.handle_io_error(now, e.kind()),
            }
        }
    }

    /// Interest follows state: READABLE while it reads, WRITABLE while bytes are queued.
    /// Re-register only on a change (mio cannot register an empty interest: deregister).
    fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = match (self.conn.wants_read(), self.conn.wants_write()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        };
        if want == self.interest {
            return Ok(());
        }
        match (self.interest, want) {
            (None, Some(new)) => registry.register(&mut self.stream, token, new)?,
            (Some(_), Some(new)) => registry.reregister(&mut self.stream, token, new)?,
            (_, None) => registry.deregister(&mut self.stream)?,
        }
        self.interest = want;
        Ok(())
    }
}
