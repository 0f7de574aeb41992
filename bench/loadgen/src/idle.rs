//! Idle mode: open N connections (WebSocket-upgraded with `--ws`), say `ready N`, hold them.
//!
//! Used to measure a server's memory per idle connection: read the server's VmRSS before,
//! start this, wait for `ready N` (and, without `--ping`, for the server to have accepted all
//! N), read VmRSS again, then end the hold (`--hold`, closing stdin with `--until-stdin-eof`,
//! or a signal).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use crate::conn::{ConnectConfig, EVENTS_CAPACITY, READ_BUF, open_all};
use crate::deflate::Offer;
use crate::payload::Payload;
use crate::wire::{Raw, Wire};
use crate::ws::Ws;

/// Parameters of an idle run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) connect: ConnectConfig,
    /// How long to hold; `None` until stdin EOF (if asked) or a signal.
    pub(crate) hold: Option<Duration>,
    pub(crate) until_stdin_eof: bool,
    /// Exchange one verified echo per connection before reporting ready.
    pub(crate) ping: bool,
    /// Do the WebSocket upgrade handshake on every connection (and ping with a binary frame).
    pub(crate) ws: bool,
    /// Size of the ping message.
    pub(crate) ping_size: usize,
    /// What the ping carries (JSON: a text frame).
    pub(crate) payload: Payload,
    /// Offer permessage-deflate in the upgrade (`ws` only).
    pub(crate) deflate: Option<Offer>,
}

/// Runs idle mode. Returns `false` if the server closed or broke any connection.
pub(crate) fn run(cfg: &Config) -> io::Result<bool> {
    let mut poll = Poll::new()?;
    // Shared, so the eventfd outlives the stdin thread: closing it would drop a pending wake.
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let connect_start = Instant::now();
    let ping = cfg.ping.then_some(cfg.ping_size);
    let (mut raw, mut ws) = (Raw, Ws::new(0, cfg.payload, cfg.deflate));
    let wire: &mut dyn Wire = if cfg.ws { &mut ws } else { &mut raw };
    let mut conns = open_all(&mut poll, cfg.addr, cfg.conns, cfg.connect, 0, wire, ping)?;
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    println!("ready {}", cfg.conns);
    io::stdout().flush()?;
    eprintln!(
        "gale-load idle: {} connections to {} ready in {:.2} s{}",
        cfg.conns,
        cfg.addr,
        connect_start.elapsed().as_secs_f64(),
        match (cfg.ws, cfg.ping) {
            (false, false) => "",
            (false, true) => " (one echo each)",
            (true, false) => " (WebSocket upgraded)",
            (true, true) => " (WebSocket upgraded, one echo each)",
        }
    );
    if let (true, Some(offer)) = (cfg.ws, cfg.deflate) {
        eprintln!(
            "gale-load idle: permessage-deflate agreed on every connection (offered {:?}); \
             ping of {} B {:?}",
            offer.header_value(),
            cfg.ping_size,
            cfg.payload
        );
    }

    if cfg.until_stdin_eof {
        let waker = Arc::clone(&waker);
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            let _ = waker.wake();
        });
    }
    let hold_start = Instant::now();
    let deadline = cfg.hold.map(|h| hold_start + h);
    let mut closed = 0usize;
    'hold: loop {
        let timeout = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => break,
            },
            None => None,
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == WAKE {
                break 'hold;
            }
            let c = &mut conns[ev.token().0];
            if !c.alive || !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let r = c.on_readable(&mut buf, Instant::now(), true, None);
            if r.map_or(true, |r| r.eof) {
                c.alive = false;
                closed += 1;
                let _ = poll.registry().deregister(c.stream_mut());
            }
        }
    }
    let unexpected: u64 = conns.iter().map(|c| c.mismatched).sum();
    eprintln!(
        "gale-load idle: held {} connections for {:.1} s; {closed} closed by the server, \
         {unexpected} unexpected bytes received",
        cfg.conns,
        hold_start.elapsed().as_secs_f64()
    );
    Ok(closed == 0 && unexpected == 0)
}

/// Token of the waker that ends the hold when stdin closes.
const WAKE: Token = Token(usize::MAX);
