//! Opening connections, and one client connection's send/verify state.
//!
//! Sockets are registered edge-triggered for `READABLE | WRITABLE` once, when created, and never
//! re-registered: a writable edge means "flush what is queued", a readable edge "read and
//! verify".

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::deflate::ClientDeflate;
use crate::payload;
use crate::rng::WyRand;
use crate::wire::Wire;
use crate::ws;

/// How connections are opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectConfig {
    /// At most this many connects in progress at once.
    pub(crate) concurrency: usize,
    /// Deadline for all connections to be established.
    pub(crate) timeout: Duration,
}

/// Opens `n` connections to `addr`, connection `i` registered with `poll` under `Token(i)`
/// and seeded with `seed ^ i * SEED_STRIDE`.
///
/// If `wire` [upgrades](Wire::upgrades), every connection first does the WebSocket upgrade
/// handshake and counts as open only once a valid `101` arrived.
///
/// With `ping: Some(size)`, a connection only counts as open once one `size`-byte message has
/// been echoed and verified on it. As at most `cfg.concurrency` connections are opening at a
/// time, that paces the connects to what the server has really accepted and served, so the
/// listen backlog never overflows (an overflow costs a SYN retransmit: a second or more).
/// Without it, "open" means the TCP handshake completed, which the kernel does before the
/// server calls `accept`. The ping (framed by `wire`) follows the upgrade, if any.
///
/// Returns once all are open (`TCP_NODELAY` set), or fails on the first refused or broken
/// connection or when `cfg.timeout` passes. Events for tokens `>= n` are ignored.
pub(crate) fn open_all<W: Wire + ?Sized>(
    poll: &mut Poll,
    addr: SocketAddr,
    n: usize,
    cfg: ConnectConfig,
    seed: u64,
    wire: &mut W,
    ping: Option<usize>,
) -> io::Result<Vec<Conn>> {
    let deadline = Instant::now() + cfg.timeout;
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let mut state: Vec<Opening> = Vec::with_capacity(n);
    let (mut in_progress, mut done) = (0usize, 0usize);
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut buf = vec![0u8; READ_BUF];
    while done < n {
        while in_progress < cfg.concurrency.max(1) && conns.len() < n {
            let i = conns.len();
            let mut s = TcpStream::connect(addr)
                .map_err(|e| context(e, &format!("connect #{i} to {addr}")))?;
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            conns.push(Conn::new(s, seed ^ (i as u64).wrapping_mul(SEED_STRIDE)));
            state.push(Opening::Connecting);
            in_progress += 1;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "only {done} of {n} connections to {addr} open after {:?}",
                    cfg.timeout
                ),
            ));
        }
        if let Err(e) = poll.poll(&mut events, Some(deadline - now)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let (Some(c), Some(st)) = (conns.get_mut(i), state.get_mut(i)) else {
                continue;
            };
            let what = || format!("connection #{i} to {addr}");
            match st {
                Opening::Open => continue,
                Opening::Connecting => {
                    if let Some(e) = c.stream.take_error()? {
                        return Err(context(e, &what()));
                    }
                    match c.stream.peer_addr() {
                        Ok(_) => c.stream.set_nodelay(true)?,
                        // Spurious wake-up: the connect is still in progress.
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                        Err(e) => return Err(context(e, &what())),
                    }
                    if wire.upgrades() {
                        let key = ws::new_key(&mut c.rng);
                        let offer = wire.offer();
                        c.out
                            .extend_from_slice(&ws::request(addr, &key, offer.as_ref()));
                        c.flush().map_err(|e| context(e, &what()))?;
                        *st = Opening::Upgrading(ws::accept_for(&key));
                        continue;
                    }
                    if let Some(size) = ping {
                        c.queue(wire, size, Instant::now());
                        c.flush().map_err(|e| context(e, &what()))?;
                        *st = Opening::Pinging;
                        continue;
                    }
                }
                Opening::Upgrading(accept) => {
                    if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                        c.flush().map_err(|e| context(e, &what()))?;
                        continue;
                    }
                    let done = c
                        .read_handshake(&mut buf, accept)
                        .map_err(|e| context(e, &what()))?;
                    let Some(head) = done else {
                        continue;
                    };
                    if let Some(offer) = wire.offer() {
                        let answer = ws::extensions(&head).ok_or_else(|| {
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{}: the server declined permessage-deflate", what()),
                            )
                        })?;
                        let codec = offer.accept(&answer).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", what()))
                        })?;
                        c.deflate = Some(Box::new(codec));
                    }
                    if c.mismatched > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: unexpected bytes after the 101 response", what()),
                        ));
                    }
                    if let Some(size) = ping {
                        c.queue(wire, size, Instant::now());
                        c.flush().map_err(|e| context(e, &what()))?;
                        *st = Opening::Pinging;
                        continue;
                    }
                }
                Opening::Pinging => {
                    if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                        c.flush().map_err(|e| context(e, &what()))?;
                        continue;
                    }
                    let r = c
                        .on_readable(&mut buf, Instant::now(), ev.is_read_closed(), None)
                        .map_err(|e| context(e, &what()))?;
                    if c.mismatched > 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: ping echo mismatched", what()),
                        ));
                    }
                    if r.eof {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("{}: closed by the server during the ping", what()),
                        ));
                    }
                    if r.completed == 0 {
                        continue;
                    }
                }
            }
            *st = Opening::Open;
            in_progress -= 1;
            done += 1;
        }
    }
    Ok(conns)
}

/// Where a connection is while [`open_all`] runs.
#[derive(Debug, Clone)]
enum Opening {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent; waiting for the `101` with this `Sec-WebSocket-Accept`.
    Upgrading(String),
    /// Connected; waiting for the ping's echo.
    Pinging,
    /// Done.
    Open,
}

/// One client connection: queued output, the reply bytes still owed by the server, and the
/// messages whose reply is not complete yet.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    rng: WyRand,
    payload: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    expect: Vec<u8>,
    expect_pos: usize,
    in_flight: VecDeque<InFlight>,
    /// The handshake response received so far (empty once upgraded).
    handshake: Vec<u8>,
    /// permessage-deflate, when agreed in the upgrade.
    deflate: Option<Box<ClientDeflate>>,
    /// Prepared messages shared by all connections, cycled by [`Self::queue`] once
    /// [`Self::use_prepared`] set them; `None`: every message is generated when queued.
    prepared: Option<Arc<Prepared>>,
    /// Index of the next prepared message.
    next_prepared: usize,
    /// A prepared message being written straight from the shared set (index, bytes
    /// written), ahead of `out`.
    out_front: Option<(usize, usize)>,
    /// The expected reply of a prepared message, compared straight from the shared set
    /// (index, bytes verified), ahead of `expect`.
    expect_front: Option<(usize, usize)>,
    /// Bytes written to / read from the socket (handshake included) since the last reset.
    pub(crate) bytes_out: u64,
    pub(crate) bytes_in: u64,
    expected_total: u64,
    received_total: u64,
    /// Bytes that differed from the expectation, or arrived when nothing was expected.
    pub(crate) mismatched: u64,
    /// Reply bytes compared with the expectation (matching or not).
    pub(crate) checked: u64,
    /// Messages completed in the measured window (maintained by the caller).
    pub(crate) window_completed: u64,
    /// `false` once the connection failed or was closed by the server.
    pub(crate) alive: bool,
}

/// What one readable event produced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOutcome {
    /// Messages whose reply completed.
    pub(crate) completed: usize,
    /// The server closed its side.
    pub(crate) eof: bool,
}

impl Conn {
    /// Wraps an established stream; `seed` fixes its payload stream.
    pub(crate) fn new(stream: TcpStream, seed: u64) -> Self {
        Self {
            stream,
            rng: WyRand::new(seed),
            payload: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            expect: Vec::new(),
            expect_pos: 0,
            in_flight: VecDeque::new(),
            handshake: Vec::new(),
            deflate: None,
            prepared: None,
            next_prepared: 0,
            out_front: None,
            expect_front: None,
            bytes_out: 0,
            bytes_in: 0,
            expected_total: 0,
            received_total: 0,
            mismatched: 0,
            checked: 0,
            window_completed: 0,
            alive: true,
        }
    }

    /// The socket (for deregistering).
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Messages sent whose reply is not complete.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Makes [`Self::queue`] send the messages of `set` in turn, starting at `start`, instead
    /// of generating each message when it is queued (see [`Prepared`]).
    pub(crate) fn use_prepared(&mut self, set: Arc<Prepared>, start: usize) {
        self.next_prepared = start % set.len().max(1);
        self.prepared = (!set.is_empty()).then_some(set);
    }

    /// Queues one message of `size` bytes (the next prepared one, or fresh random bytes),
    /// sent at `now` (call [`Self::flush`]).
    pub(crate) fn queue<W: Wire + ?Sized>(&mut self, wire: &mut W, size: usize, now: Instant) {
        if let Some(set) = &self.prepared {
            let i = self.next_prepared;
            self.next_prepared = (i + 1) % set.len();
            let (out, expect) = &set.messages[i];
            // Straight from the set when nothing is queued ahead of it (ping-pong: always),
            // else copied behind what is.
            if self.out_front.is_none() && self.out_pos == self.out.len() {
                self.out_front = Some((i, 0));
            } else {
                self.out.extend_from_slice(out);
            }
            if self.expect_front.is_none() && self.expect_pos == self.expect.len() {
                self.expect_front = Some((i, 0));
            } else {
                self.expect.extend_from_slice(expect);
            }
            self.expected_total += expect.len() as u64;
            self.in_flight.push_back(InFlight {
                end: self.expected_total,
                at: now,
            });
            return;
        }
        self.payload.resize(size, 0);
        payload::fill(wire.payload(), &mut self.rng, &mut self.payload);
        let before = self.expect.len();
        let deflate = self.deflate.as_deref_mut();
        wire.encode(&self.payload, deflate, &mut self.out, &mut self.expect);
        self.expected_total += (self.expect.len() - before) as u64;
        self.in_flight.push_back(InFlight {
            end: self.expected_total,
            at: now,
        });
    }

    /// Writes queued output until all is written or the socket would block.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if let (Some((i, pos)), Some(set)) = (self.out_front, &self.prepared) {
            let bytes = &set.messages[i].0;
            let mut pos = pos;
            let done = write_some(&mut self.stream, bytes, &mut pos, &mut self.bytes_out)?;
            self.out_front = if done { None } else { Some((i, pos)) };
            if !done {
                return Ok(());
            }
        }
        if !write_some(
            &mut self.stream,
            &self.out,
            &mut self.out_pos,
            &mut self.bytes_out,
        )? {
            return Ok(());
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Reads what is available, verifies it, and records the latency of each completed
    /// message into `hist` (if given).
    ///
    /// A short read ends the loop without waiting for `WouldBlock`: for TCP it means the
    /// receive queue was empty, and with edge triggering every later arrival raises a new
    /// edge. That saves one syscall per message. When `read_closed` (the event carried
    /// EOF/HUP), it reads until EOF or `WouldBlock` so a server's close is never missed.
    pub(crate) fn on_readable(
        &mut self,
        buf: &mut [u8],
        now: Instant,
        read_closed: bool,
        mut hist: Option<&mut Histogram<u64>>,
    ) -> io::Result<ReadOutcome> {
        let mut out = ReadOutcome {
            completed: 0,
            eof: false,
        };
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    out.eof = true;
                    break;
                }
                Ok(n) => {
                    self.bytes_in += n as u64;
                    self.verify(&buf[..n]);
                    while let Some(f) = self.in_flight.front()
                        && f.end <= self.received_total
                    {
                        if let Some(h) = hist.as_deref_mut() {
                            let ns = u64::try_from(now.duration_since(f.at).as_nanos());
                            h.saturating_record(ns.unwrap_or(u64::MAX).max(1));
                        }
                        self.in_flight.pop_front();
                        out.completed += 1;
                    }
                    if n < buf.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Reads the WebSocket handshake response; `Ok(Some(head))` once a valid `101` with
    /// `accept` arrived. Bytes after its head go through the verification (nothing is expected
    /// yet, so they count as mismatched). Fails on EOF or an invalid response.
    fn read_handshake(&mut self, buf: &mut [u8], accept: &str) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "closed by the server during the upgrade handshake",
                    ));
                }
                Ok(n) => {
                    self.bytes_in += n as u64;
                    self.handshake.extend_from_slice(&buf[..n]);
                    match ws::parse_response(&self.handshake, accept) {
                        Ok(None) => {}
                        Ok(Some(head)) => {
                            let rest = self.handshake.split_off(head);
                            let head = std::mem::take(&mut self.handshake);
                            self.verify(&rest);
                            return Ok(Some(head));
                        }
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Compares received bytes with the expectation and consumes both.
    fn verify(&mut self, mut data: &[u8]) {
        if let (Some((i, pos)), Some(set)) = (self.expect_front, &self.prepared) {
            let want = &set.messages[i].1[pos..];
            let m = data.len().min(want.len());
            if data[..m] != want[..m] {
                let bad = data[..m].iter().zip(want).filter(|(a, b)| a != b).count();
                self.mismatched += bad as u64;
            }
            self.checked += m as u64;
            self.received_total += m as u64;
            self.expect_front = (m < want.len()).then_some((i, pos + m));
            data = &data[m..];
            if data.is_empty() {
                return;
            }
        }
        let m = data.len().min(self.expect.len() - self.expect_pos);
        let want = &self.expect[self.expect_pos..self.expect_pos + m];
        let got = &data[..m];
        if got != want {
            let bad = got.iter().zip(want).filter(|(a, b)| a != b).count();
            self.mismatched += bad as u64;
        }
        self.checked += m as u64;
        // Bytes beyond what was asked for are all wrong.
        self.mismatched += (data.len() - m) as u64;
        self.expect_pos += m;
        self.received_total += m as u64;
        if self.expect_pos == self.expect.len() {
            self.expect.clear();
            self.expect_pos = 0;
        } else if self.expect_pos >= COMPACT_AT && self.expect_pos * 2 >= self.expect.len() {
            self.expect.drain(..self.expect_pos);
            self.expect_pos = 0;
        }
    }
}

/// Writes `bytes[*pos..]` until done (`true`) or the socket would block (`false`).
fn write_some(
    stream: &mut TcpStream,
    bytes: &[u8],
    pos: &mut usize,
    counter: &mut u64,
) -> io::Result<bool> {
    while *pos < bytes.len() {
        match stream.write(&bytes[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *pos += n;
                *counter += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Messages generated before a run and then sent in turn by every connection, each
/// connection starting at its own offset.
///
/// Generating a message (random payload, masking, the expected reply) and copying it into a
/// connection's buffers costs the client about as much CPU as the echo costs a server at
/// 4 KiB, so without this the client, not the server, is the bottleneck. Prepared messages
/// are written from and compared against the set in place, and the set is small enough to
/// stay in the CPU cache (16 messages of 4 KiB: 128 KiB). The server still gets a fresh
/// payload and mask key on each of `n` messages in a row, and every reply is still checked
/// byte for byte.
///
/// Not with permessage-deflate: with context takeover, a message's compressed bytes depend
/// on every message before it on that connection.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// (request bytes, expected reply bytes) of each message.
    messages: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Prepared {
    /// `n` messages of `size` bytes framed by `wire`, payloads from `seed`.
    pub(crate) fn new<W: Wire + ?Sized>(wire: &mut W, size: usize, n: usize, seed: u64) -> Self {
        let mut rng = WyRand::new(seed);
        let mut body = vec![0u8; size];
        let messages = (0..n)
            .map(|_| {
                let (mut out, mut expect) = (Vec::new(), Vec::new());
                body.resize(size, 0);
                payload::fill(wire.payload(), &mut rng, &mut body);
                wire.encode(&body, None, &mut out, &mut expect);
                (out, expect)
            })
            .collect();
        Self { messages }
    }

    fn len(&self) -> usize {
        self.messages.len()
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// A message whose reply has not fully arrived.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Offset in the connection's reply stream just past this message's reply.
    end: u64,
    /// When it was queued.
    at: Instant,
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Spreads per-connection seeds (golden ratio, odd).
const SEED_STRIDE: u64 = 0x9e37_79b9_7f4a_7c15;
/// Read buffer size (one per loop, shared by all connections).
pub(crate) const READ_BUF: usize = 64 * 1024;
/// `mio::Events` capacity.
pub(crate) const EVENTS_CAPACITY: usize = 1024;
/// Drop verified bytes from the front of the expectation once this many accumulated.
const COMPACT_AT: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use std::sync::Arc;

    use super::{Conn, Prepared};
    use crate::wire::Raw;

    /// Calls `on_readable` until `done(conn)` holds; returns the summed completions and EOF.
    fn read_until(c: &mut Conn, buf: &mut [u8], done: impl Fn(&Conn) -> bool) -> (usize, bool) {
        let (mut completed, mut eof) = (0, false);
        for _ in 0..1_000_000 {
            let r = c
                .on_readable(buf, Instant::now(), true, None)
                .expect("read");
            completed += r.completed;
            eof |= r.eof;
            if done(c) || eof {
                return (completed, eof);
            }
            std::thread::yield_now();
        }
        panic!("loopback data did not arrive");
    }

    /// A client `Conn` (seed 1) and the server side of its loopback connection.
    fn connected() -> (Conn, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (server, _) = l.accept().expect("accept");
        client.set_nonblocking(true).expect("nonblocking");
        (Conn::new(mio::net::TcpStream::from_std(client), 1), server)
    }

    #[test]
    fn prepared_messages_cycle_and_are_verified() {
        let (mut c, mut server) = connected();
        c.use_prepared(Arc::new(Prepared::new(&mut Raw, 8, 3, 5)), 1);
        let t0 = Instant::now();
        for _ in 0..4 {
            c.queue(&mut Raw, 8, t0);
        }
        c.flush().expect("flush");
        let mut sent = [0u8; 32];
        server
            .read_exact(&mut sent)
            .expect("read what the client sent");
        let m: Vec<&[u8]> = sent.chunks(8).collect();
        assert!(
            m[0] != m[1] && m[1] != m[2] && m[0] != m[2],
            "3 distinct messages"
        );
        assert_eq!(m[3], m[0], "then the first again");

        let mut wrong = sent;
        wrong[30] ^= 1; // in the fourth message
        server.write_all(&wrong).expect("echo");
        let mut buf = [0u8; 64];
        assert_eq!(
            read_until(&mut c, &mut buf, |c| c.checked == 32),
            (4, false)
        );
        assert_eq!(
            c.mismatched, 1,
            "a prepared message's reply is still checked"
        );
    }

    #[test]
    fn verifies_split_echo_counts_mismatches_and_extra_bytes() {
        let (mut c, mut server) = connected();
        let t0 = Instant::now();
        c.queue(&mut Raw, 10, t0);
        c.queue(&mut Raw, 7, t0);
        assert_eq!(c.in_flight(), 2);
        c.flush().expect("flush");
        let mut sent = [0u8; 17];
        server
            .read_exact(&mut sent)
            .expect("read what the client sent");
        assert_ne!(sent[..7], sent[10..17], "each message has its own payload");

        let mut buf = [0u8; 4]; // smaller than a message: many reads per call
        server.write_all(&sent[..5]).expect("echo part");
        assert_eq!(read_until(&mut c, &mut buf, |c| c.checked == 5), (0, false));
        let mut rest = sent[5..].to_vec();
        rest[7] ^= 0xff; // byte 12: inside the second message
        server.write_all(&rest).expect("echo rest");
        assert_eq!(
            read_until(&mut c, &mut buf, |c| c.checked == 17),
            (2, false)
        );
        assert_eq!((c.mismatched, c.in_flight()), (1, 0));

        server.write_all(b"xy").expect("extra bytes");
        drop(server);
        let (completed, eof) = read_until(&mut c, &mut buf, |_| false);
        assert_eq!((completed, eof, c.mismatched, c.checked), (0, true, 3, 17));
    }
}
