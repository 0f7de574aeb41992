//! The echo load: N connections, K messages in flight each, every reply byte verified.
//!
//! Timeline: connect all; start sending; run `warmup` without recording; reset; record for
//! `duration`; stop. A message's latency runs from when it was queued to when the last byte
//! of its reply was verified, so it includes time spent in this (single-threaded) client: the
//! numbers are for comparing servers under the same client, not absolute truths.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll};

use crate::conn::{Conn, ConnectConfig, EVENTS_CAPACITY, Prepared, READ_BUF, open_all};
use crate::cpu::CpuTimes;
use crate::deflate::Offer;
use crate::payload::Payload;
use crate::wire::Wire;

/// Parameters of one echo run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Mode name for the report (`echo`, `ws`).
    pub(crate) mode: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) conns: usize,
    pub(crate) connect: ConnectConfig,
    /// Payload bytes per message.
    pub(crate) size: usize,
    /// Messages in flight per connection.
    pub(crate) pipeline: usize,
    /// Distinct messages prepared before the run and cycled by every connection (0: each
    /// message generated when sent); see [`Prepared`].
    pub(crate) prepared: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) seed: u64,
    /// Server process whose CPU time to account over the measured window.
    pub(crate) server_pid: Option<u32>,
    /// What messages carry (for the report; the wire generates them).
    pub(crate) payload: Payload,
    /// The permessage-deflate offer, if any (for the report).
    pub(crate) deflate: Option<Offer>,
}

/// What one run measured (in the measured window only).
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Messages completed.
    pub(crate) msgs: u64,
    /// Length of the measured window.
    pub(crate) elapsed: Duration,
    /// Latency in nanoseconds.
    pub(crate) hist: Histogram<u64>,
    /// Reply bytes compared, over the whole run (warm-up included).
    pub(crate) checked: u64,
    /// Reply bytes that did not match or were not expected, over the whole run.
    pub(crate) mismatched: u64,
    /// Connections that failed or were closed by the server.
    pub(crate) conn_errors: u64,
    /// First few connection errors, for the report.
    pub(crate) errors: Vec<String>,
    /// Fewest and most messages completed by one connection in the window.
    pub(crate) per_conn: (u64, u64),
    /// Bytes written to and read from the sockets in the window (TCP payload, all
    /// connections).
    pub(crate) wire_bytes: (u64, u64),
    /// This process's CPU accounting over the window (`None` if unavailable).
    pub(crate) client_cpu: Option<CpuTimes>,
    /// The server's CPU accounting over the window (`None` if not asked or unavailable).
    pub(crate) server_cpu: Option<CpuTimes>,
}

impl Outcome {
    /// No mismatched byte and no failed connection.
    pub(crate) fn is_clean(&self) -> bool {
        self.mismatched == 0 && self.conn_errors == 0
    }
}

/// Runs the echo load described by `cfg`, framing messages with `wire`.
pub(crate) fn run<W: Wire>(cfg: &Config, mut wire: W) -> io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let mut conns = open_all(
        &mut poll,
        cfg.addr,
        cfg.conns,
        cfg.connect,
        cfg.seed,
        &mut wire,
        None,
    )?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut buf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut errors = Vec::new();
    let mut conn_errors = 0u64;

    if cfg.prepared > 0 && cfg.deflate.is_none() {
        let set = Arc::new(Prepared::new(&mut wire, cfg.size, cfg.prepared, cfg.seed));
        for (i, c) in conns.iter_mut().enumerate() {
            c.use_prepared(Arc::clone(&set), i);
        }
    }
    let start = Instant::now();
    for c in &mut conns {
        for _ in 0..cfg.pipeline {
            c.queue(&mut wire, cfg.size, start);
        }
        if let Err(e) = c.flush() {
            fail(&mut poll, c, &mut conn_errors, &mut errors, &e.to_string());
        }
    }
    let warmup_end = start + cfg.warmup;
    let end = warmup_end + cfg.duration;
    let mut measuring = cfg.warmup.is_zero();
    let mut window_start = start;
    let snapshot = || {
        (
            CpuTimes::of(None).ok(),
            cfg.server_pid.and_then(|p| CpuTimes::of(Some(p)).ok()),
        )
    };
    let mut cpu_start = if measuring { snapshot() } else { (None, None) };
    let mut msgs = 0u64;

    loop {
        let now = Instant::now();
        if !measuring && now >= warmup_end {
            measuring = true;
            window_start = now;
            cpu_start = snapshot();
            hist.reset();
            for c in &mut conns {
                (c.window_completed, c.bytes_out, c.bytes_in) = (0, 0, 0);
            }
        }
        if now >= end || conn_errors == cfg.conns as u64 {
            break;
        }
        let wake = if measuring { end } else { warmup_end };
        if let Err(e) = poll.poll(&mut events, Some(wake - now)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if !c.alive {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let now = Instant::now();
                let h = if measuring { Some(&mut hist) } else { None };
                match c.on_readable(&mut buf, now, ev.is_read_closed(), h) {
                    Ok(r) => {
                        if measuring {
                            msgs += r.completed as u64;
                            c.window_completed += r.completed as u64;
                        }
                        for _ in 0..r.completed {
                            c.queue(&mut wire, cfg.size, now);
                        }
                        if r.eof {
                            let why = format!("closed by the server ({} in flight)", c.in_flight());
                            fail(&mut poll, c, &mut conn_errors, &mut errors, &why);
                            continue;
                        }
                    }
                    Err(e) => {
                        fail(&mut poll, c, &mut conn_errors, &mut errors, &e.to_string());
                        continue;
                    }
                }
            }
            if let Err(e) = c.flush() {
                fail(&mut poll, c, &mut conn_errors, &mut errors, &e.to_string());
            }
        }
    }
    let elapsed = if measuring {
        Instant::now() - window_start
    } else {
        Duration::ZERO
    };
    let cpu_end = if measuring { snapshot() } else { (None, None) };
    let delta = |end: Option<CpuTimes>, start: Option<CpuTimes>| Some(end?.since(start?));
    let per_conn = conns.iter().map(|c| c.window_completed);
    let per_conn = (
        per_conn.clone().min().unwrap_or(0),
        per_conn.max().unwrap_or(0),
    );
    Ok(Outcome {
        msgs,
        elapsed,
        hist,
        checked: conns.iter().map(|c| c.checked).sum(),
        mismatched: conns.iter().map(|c| c.mismatched).sum(),
        conn_errors,
        errors,
        per_conn,
        wire_bytes: (
            conns.iter().map(|c| c.bytes_out).sum(),
            conns.iter().map(|c| c.bytes_in).sum(),
        ),
        client_cpu: delta(cpu_end.0, cpu_start.0),
        server_cpu: delta(cpu_end.1, cpu_start.1),
    })
}

/// Marks `c` dead, deregisters it and remembers why.
fn fail(poll: &mut Poll, c: &mut Conn, count: &mut u64, errors: &mut Vec<String>, why: &str) {
    c.alive = false;
    *count += 1;
    let _ = poll.registry().deregister(c.stream_mut());
    if errors.len() < MAX_ERRORS_KEPT {
        errors.push(why.to_owned());
    }
}

/// Highest latency the histogram tracks (60 s); larger values are clamped.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Connection errors kept verbatim for the report.
const MAX_ERRORS_KEPT: usize = 5;
