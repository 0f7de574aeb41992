//! `gale-load`: a single-threaded loopback load generator for gale's benchmarks.
//!
//! Modes:
//! - `echo`: N connections exchange random messages with an echo server, ping-pong (or K in
//!   flight with `--pipeline K`); every echoed byte is checked; throughput and latency
//!   percentiles are reported in human form and, with `--json`, as one JSON line.
//! - `ws`: the same over WebSocket: an HTTP/1.1 upgrade handshake per connection (`101` and
//!   `Sec-WebSocket-Accept` checked), then each message is one masked binary frame (random
//!   payload, random mask per frame) and its echo must be the same payload as one unmasked
//!   binary frame, byte for byte.
//! - `idle`: open N connections, print `ready N`, hold them (for measuring the server's memory
//!   per idle connection); `--ws` upgrades each one first.
//!
//! WebSocket options (`ws`, `idle --ws`): `--payload json` sends JSON text frames instead of
//! random binary ones; `--deflate` offers permessage-deflate (RFC 7692) and compresses what
//! reaches the threshold (see `deflate.rs` for how replies are checked), with
//! `--no-context-takeover` both ways if asked. `ws` reports the bytes on the wire per message.
//!
//! One thread, one `mio::Poll`, edge-triggered: the generator should cost less CPU per message
//! than the server it measures, so pin it to its own core (`taskset -c 1`).
//!
//! Adding a framing: implement [`wire::Wire`] for it and add a subcommand that passes it to
//! [`echo::run`]; see `wire.rs` and `ws.rs`.

mod conn;
mod cpu;
mod deflate;
mod echo;
mod idle;
mod payload;
mod report;
mod rng;
mod wire;
mod ws;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::deflate::Offer;
use crate::payload::Payload;

/// Command line of `gale-load`.
#[derive(Parser, Debug)]
#[command(
    name = "gale-load",
    version,
    about = "Loopback load generator for gale's benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Echo load: send random messages, verify every echoed byte, report msgs/s and latency.
    Echo(EchoArgs),
    /// Open and hold many idle connections; prints `ready N` once all are connected.
    Idle(IdleArgs),
    /// WebSocket echo load: upgrade every connection, then masked binary frames; every echoed
    /// frame (unmasked, same payload) is checked byte for byte.
    Ws(EchoArgs),
}

/// Where to connect and how fast to open connections (shared by every mode).
#[derive(Args, Debug, Clone)]
struct Target {
    /// Server port on 127.0.0.1.
    #[arg(short, long)]
    port: u16,
    /// Server host (IPv4 address).
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    host: Ipv4Addr,
    /// Number of connections.
    #[arg(short = 'c', long)]
    conns: Option<usize>,
    /// At most this many connections opening at once (keep it below the server's listen
    /// backlog: mio and std use 128).
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Give up if not all connections are established within this many seconds.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
}

impl Target {
    fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.host, self.port))
    }
}

#[derive(Args, Debug)]
struct EchoArgs {
    #[command(flatten)]
    target: Target,
    /// Message size in bytes.
    #[arg(short = 's', long, default_value_t = 512)]
    size: usize,
    /// Messages in flight per connection (1 = strict ping-pong).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Prepare this many distinct messages before the run, which every connection then
    /// sends in turn from its own offset (0: generate each message, payload and mask, when it
    /// is sent). Preparing takes the client's own per-message work (about a server's worth
    /// at 4 KiB) off the measured path; every reply is still checked byte for byte. Ignored
    /// with --deflate.
    #[arg(long, default_value_t = 0)]
    prepared: usize,
    /// Measured seconds (after the warm-up).
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds: load runs, nothing is recorded.
    #[arg(short, long, default_value_t = 1.0)]
    warmup: f64,
    /// Seed of the payload generator (per-connection streams derive from it).
    #[arg(long, default_value_t = 0x9e37_79b9_7f4a_7c15)]
    seed: u64,
    /// Print the result as one JSON line on stdout (the human report goes to stderr).
    #[arg(long)]
    json: bool,
    /// Also report this server process's CPU time per message and run-queue wait over the
    /// measured window (from /proc/PID/task/*/schedstat).
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    ws: WsOptions,
}

/// WebSocket message options (`ws`, and `idle --ws`).
#[derive(Args, Debug, Clone)]
struct WsOptions {
    /// What messages carry: random bytes in binary frames, or JSON in text frames.
    #[arg(long, value_enum, default_value_t = Payload::Random)]
    payload: Payload,
    /// Offer permessage-deflate (RFC 7692) and compress messages that reach the threshold;
    /// the server must agree. Expected replies model gale's compressor (see --deflate-level).
    #[arg(long)]
    deflate: bool,
    /// With --deflate, also offer server_no_context_takeover and client_no_context_takeover.
    #[arg(long, requires = "deflate")]
    no_context_takeover: bool,
    /// The server's compression level (gale's default), for the expected replies.
    #[arg(long, default_value_t = 1)]
    deflate_level: u32,
    /// Messages below this many bytes go uncompressed both ways (gale's default threshold).
    #[arg(long, default_value_t = 256)]
    deflate_threshold: usize,
}

impl WsOptions {
    fn offer(&self) -> Option<Offer> {
        self.deflate.then_some(Offer {
            no_context_takeover: self.no_context_takeover,
            server_level: self.deflate_level,
            server_threshold: self.deflate_threshold,
        })
    }
}

#[derive(Args, Debug)]
struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// Hold the connections this many seconds, then exit (default: until killed).
    #[arg(long)]
    hold: Option<f64>,
    /// Also exit when stdin reaches end of file (lets a script end the hold by closing a pipe).
    #[arg(long)]
    until_stdin_eof: bool,
    /// Before reporting ready, exchange one verified 16-byte echo on every connection, so the
    /// server has certainly accepted and served each one ("idle after one message"); with
    /// `--ws`, as one binary frame after the upgrade.
    #[arg(long)]
    ping: bool,
    /// Do the WebSocket upgrade handshake on every connection before reporting ready.
    #[arg(long)]
    ws: bool,
    /// Size of the --ping message in bytes (with `--ws --deflate --payload json`, at least
    /// the threshold, so that it is compressed both ways).
    #[arg(long, default_value_t = 16)]
    ping_size: usize,
    #[command(flatten)]
    ws_options: WsOptions,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Echo(a) => run_echo(a, false),
        Mode::Ws(a) => run_echo(a, true),
        Mode::Idle(a) => run_idle(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gale-load: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_echo(a: EchoArgs, ws: bool) -> std::io::Result<ExitCode> {
    if a.size == 0 || a.pipeline == 0 {
        return Err(invalid("--size and --pipeline must be at least 1"));
    }
    raise_nofile(a.target.conns.unwrap_or(DEFAULT_ECHO_CONNS))?;
    let cfg = echo::Config {
        mode: if ws { "ws" } else { "echo" },
        addr: a.target.addr(),
        conns: a.target.conns.unwrap_or(DEFAULT_ECHO_CONNS),
        connect: conn::ConnectConfig {
            concurrency: a.target.connect_concurrency,
            timeout: secs(a.target.connect_timeout)?,
        },
        size: a.size,
        pipeline: a.pipeline,
        prepared: a.prepared,
        duration: secs(a.duration)?,
        warmup: secs(a.warmup)?,
        seed: a.seed,
        server_pid: a.server_pid,
        payload: a.ws.payload,
        deflate: a.ws.offer(),
    };
    if !ws && (a.ws.deflate || a.ws.payload != Payload::Random) {
        return Err(invalid("--deflate and --payload are options of `ws`"));
    }
    let result = if ws {
        let wire = ws::Ws::new(a.seed.rotate_left(32), a.ws.payload, a.ws.offer());
        echo::run(&cfg, wire)?
    } else {
        echo::run(&cfg, wire::Raw)?
    };
    let human = report::human(&cfg, &result);
    if a.json {
        eprint!("{human}");
        println!("{}", report::json(&cfg, &result));
    } else {
        print!("{human}");
    }
    Ok(if result.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_idle(a: IdleArgs) -> std::io::Result<ExitCode> {
    let conns = a.target.conns.unwrap_or(DEFAULT_IDLE_CONNS);
    raise_nofile(conns)?;
    let cfg = idle::Config {
        addr: a.target.addr(),
        conns,
        connect: conn::ConnectConfig {
            concurrency: a.target.connect_concurrency,
            timeout: secs(a.target.connect_timeout)?,
        },
        hold: a.hold.map(secs).transpose()?,
        until_stdin_eof: a.until_stdin_eof,
        ping: a.ping,
        ws: a.ws,
        ping_size: a.ping_size,
        payload: a.ws_options.payload,
        deflate: a.ws_options.offer(),
    };
    if !a.ws && a.ws_options.deflate {
        return Err(invalid("--deflate needs --ws"));
    }
    let clean = idle::run(&cfg)?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Raises the soft RLIMIT_NOFILE to what `conns` sockets need, or fails with a hint.
fn raise_nofile(conns: usize) -> std::io::Result<()> {
    let want = conns as u64 + FD_HEADROOM;
    let got = rlimit::increase_nofile_limit(want)?;
    if got < want {
        return Err(invalid(&format!(
            "need {want} file descriptors for {conns} connections but the hard limit is {got}; \
             raise it (ulimit -Hn, /etc/security/limits.conf) or use fewer connections"
        )));
    }
    Ok(())
}

fn secs(s: f64) -> std::io::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| invalid("durations must be finite and >= 0"))
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_owned())
}

/// Default connection count of `echo`.
const DEFAULT_ECHO_CONNS: usize = 50;
/// Default connection count of `idle`.
const DEFAULT_IDLE_CONNS: usize = 10_000;
/// File descriptors beyond one per connection: stdio, epoll, waker, a few spare.
const FD_HEADROOM: u64 = 64;
