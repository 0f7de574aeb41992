//! `mio-floor`: the smallest correct mio echo server, the floor gale is measured against.
//!
//! One thread, one `mio::Poll`, one shared 64 KiB read buffer, no framing, no timers. On any
//! event for a connection: write back what is still pending; then read until `WouldBlock`,
//! writing each chunk straight back. Whatever the socket does not take is kept per connection,
//! and reading pauses until it is written (so a client that does not read cannot make the
//! server buffer without bound). `TCP_NODELAY` is set on accepted sockets.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "mio-floor",
    about = "Minimal mio echo server (benchmark floor)"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(short, long)]
    port: u16,
}

/// One accepted connection.
struct Conn {
    stream: TcpStream,
    /// Echo bytes the socket has not taken yet.
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    // Room for many idle connections; the hard limit is the ceiling.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, cli.port));
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut events = Events::with_capacity(1024);
    eprintln!("mio-floor listening on {addr}");
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&listener, &poll, &mut conns)?;
                continue;
            }
            let key = ev.token().0 - 1;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if !matches!(drive(conn, &mut buf), Ok(true)) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Accepts until `WouldBlock`.
fn accept_all(listener: &TcpListener, poll: &Poll, conns: &mut Slab<Conn>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nodelay(true)?;
                let entry = conns.vacant_entry();
                let token = Token(entry.key() + 1);
                poll.registry().register(
                    &mut stream,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                entry.insert(Conn {
                    stream,
                    pending: Vec::new(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Out of file descriptors and the like: drop this attempt, keep serving.
            Err(e) => {
                eprintln!("mio-floor: accept: {e}");
                return Ok(());
            }
        }
    }
}

/// Echoes until the socket would block. `Ok(false)`: the peer closed; drop the connection.
fn drive(conn: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        if !conn.pending.is_empty() {
            let n = write_some(&mut conn.stream, &conn.pending)?;
            conn.pending.drain(..n);
            if !conn.pending.is_empty() {
                return Ok(true); // wait for a writable edge
            }
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let w = write_some(&mut conn.stream, &buf[..n])?;
        conn.pending.extend_from_slice(&buf[w..n]);
    }
}

/// Writes as much of `data` as the socket takes without blocking; returns how much.
fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Token of the listener; connection `k` of the slab has token `k + 1`.
const LISTENER: Token = Token(0);
/// The one read buffer shared by all connections.
const BUF_SIZE: usize = 64 * 1024;
