//! Sockets: binding listeners (socket2, for SO_REUSEPORT and the backlog), accepting, and one
//! stream type over TCP and Unix domain sockets.

use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gale_core::PeerAddr;
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

/// An accepted connection's socket, TCP or Unix alike: every operation the loop needs
/// (recv, send, sendmsg, shutdown, epoll registration) is the same socket call for both, so
/// it is just the file descriptor (4 bytes; an enum of mio's two stream types was 8, and
/// every open connection holds one).
#[derive(Debug)]
pub(crate) struct Stream(Socket);

/// Most bytes of several slices gathered into one `send`.
const GATHER_LEN: usize = 8 * 1024;

thread_local! {
    /// Where small vectored writes are gathered (see [`Stream::send`]).
    static GATHER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; GATHER_LEN].into_boxed_slice());
}

/// A listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// What `Server::bind` / `Server::bind_unix` recorded; bound in `Server::start`.
#[derive(Debug, Clone)]
pub(crate) enum BindAddr {
    /// The resolved addresses; the first that binds is used.
    Tcp(Vec<SocketAddr>),
    Unix(PathBuf),
}

impl Stream {
    /// Writes `bufs` with one socket call: `send` for one slice, `sendmsg` for several.
    /// Socket calls skip the VFS layer that `write`/`writev` go through (about 5% of an
    /// echo server's CPU time on Linux loopback).
    ///
    /// Several slices that fit in this thread's gather buffer (a frame header and its
    /// payload) are copied into it and sent with `send`: on Linux loopback `sendmsg` with
    /// two slices costs 120-250 ns more than `send` (64 B-4 KiB, `bench/WEBSOCKET.md`),
    /// more than copying 8 KiB.
    pub(crate) fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            [one] => self.0.send_with_flags(one, SEND_FLAGS),
            _ if bufs.iter().map(|b| b.len()).sum::<usize>() <= GATHER_LEN => GATHER
                .with_borrow_mut(|buf| {
                    let mut len = 0;
                    for b in bufs {
                        buf[len..len + b.len()].copy_from_slice(b);
                        len += b.len();
                    }
                    self.0.send_with_flags(&buf[..len], SEND_FLAGS)
                }),
            _ => self.0.send_vectored_with_flags(bufs, SEND_FLAGS),
        }
    }

    /// Sends FIN: the peer reads EOF, this side keeps reading.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Self {
        Self(Socket::from(OwnedFd::from(stream)))
    }
}

impl From<UnixStream> for Stream {
    fn from(stream: UnixStream) -> Self {
        Self(Socket::from(OwnedFd::from(stream)))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(r)
    }
}

impl Listener {
    /// Accepts one pending connection. TCP connections get `TCP_NODELAY`: gale writes whole
    /// replies at once, so Nagle's algorithm only adds latency.
    pub(crate) fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Self::Tcp(l) => {
                let (stream, addr) = l.accept()?;
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                Ok((stream.into(), PeerAddr::Tcp(addr)))
            }
            Self::Unix(l) => {
                let (stream, addr) = l.accept()?;
                let path = addr.as_pathname().map(Path::to_path_buf);
                Ok((stream.into(), PeerAddr::Unix(path)))
            }
        }
    }

    /// The bound TCP address (`None` for a Unix socket).
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(_) => None,
        }
    }

    /// Accepts until the listener would block, handing each connection to `on_conn`.
    ///
    /// Returns `Some(delay)` when accepting failed for a reason that may pass (out of file
    /// descriptors, out of memory): the caller retries after `delay`. The pending connections
    /// stay in the backlog meanwhile.
    pub(crate) fn accept_ready(
        &self,
        mut on_conn: impl FnMut(Stream, PeerAddr),
    ) -> Option<Duration> {
        loop {
            match self.accept() {
                Ok((stream, peer)) => on_conn(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    return Some(ACCEPT_RETRY);
                }
            }
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(l) => l.register(r, t, i),
            Self::Unix(l) => l.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(l) => l.reregister(r, t, i),
            Self::Unix(l) => l.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(l) => l.deregister(r),
            Self::Unix(l) => l.deregister(r),
        }
    }
}

/// Every listener of a server, bound.
pub(crate) struct Bound {
    /// Served by the acceptor thread.
    pub(crate) shared: Vec<Listener>,
    /// Served by each loop itself (SO_REUSEPORT mode), one list per loop.
    pub(crate) per_loop: Vec<Vec<Listener>>,
    pub(crate) unix_paths: UnixPaths,
    /// The first TCP address.
    pub(crate) local_addr: Option<SocketAddr>,
}

/// Socket files a server created; removed by [`remove_all`](Self::remove_all) or on drop
/// (a start that failed half-way).
#[derive(Debug, Default)]
pub(crate) struct UnixPaths(Vec<PathBuf>);

impl UnixPaths {
    pub(crate) fn remove_all(&mut self) {
        for path in self.0.drain(..) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %e, "cannot remove socket file");
            }
        }
    }
}

impl Drop for UnixPaths {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// Binds every address. With `reuse_port`, each TCP address gets one SO_REUSEPORT listener
/// per loop (the first binds, possibly to port 0, the others to the port it got); with a
/// single loop, that loop owns the TCP listeners; Unix sockets and otherwise TCP listeners go
/// to the acceptor.
pub(crate) fn bind_all(
    binds: &[BindAddr],
    reuse_port: bool,
    loops: usize,
    backlog: u32,
) -> io::Result<Bound> {
    if binds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no address to listen on: call bind or bind_unix",
        ));
    }
    if binds.len() > MAX_LISTENERS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many addresses to listen on",
        ));
    }
    let mut bound = Bound {
        shared: Vec::new(),
        per_loop: (0..loops).map(|_| Vec::new()).collect(),
        unix_paths: UnixPaths::default(),
        local_addr: None,
    };
    for bind in binds {
        match bind {
            // One loop accepts itself: an acceptor thread would only add a hop per
            // connection (and a thread to the process).
            BindAddr::Tcp(addrs) if reuse_port || loops == 1 => {
                let first = bind_tcp(addrs, reuse_port, backlog)?;
                let addr = first
                    .local_addr()
                    .ok_or_else(|| io::Error::other("no address"))?;
                bound.local_addr = bound.local_addr.or(Some(addr));
                for own in &mut bound.per_loop[1..] {
                    own.push(bind_tcp(&[addr], true, backlog)?);
                }
                bound.per_loop[0].push(first);
            }
            BindAddr::Tcp(addrs) => {
                let l = bind_tcp(addrs, false, backlog)?;
                bound.local_addr = bound.local_addr.or(l.local_addr());
                bound.shared.push(l);
            }
            BindAddr::Unix(path) => {
                bound.shared.push(bind_unix(path, backlog)?);
                bound.unix_paths.0.push(path.clone());
            }
        }
    }
    Ok(bound)
}

/// Binds the first of `addrs` that accepts a listener (as `TcpListener::bind` does).
fn bind_tcp(addrs: &[SocketAddr], reuse_port: bool, backlog: u32) -> io::Result<Listener> {
    let mut last = None;
    for addr in addrs {
        match bind_tcp_one(*addr, reuse_port, backlog) {
            Ok(l) => return Ok(Listener::Tcp(l)),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to")))
}

/// Binds a Unix domain socket at `path` (which must not exist).
fn bind_unix(path: &Path, backlog: u32) -> io::Result<Listener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog_arg(backlog))?;
    let std: std::os::unix::net::UnixListener = socket.into();
    Ok(Listener::Unix(UnixListener::from_std(std)))
}

fn bind_tcp_one(addr: SocketAddr, reuse_port: bool, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog_arg(backlog))?;
    Ok(TcpListener::from_std(socket.into()))
}

fn backlog_arg(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

/// A peer that reset the connection makes `send` fail with `EPIPE` rather than raise
/// `SIGPIPE` (which kills processes that did not ignore it, as std's `TcpStream` also avoids).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: i32 = 0;

/// Most listeners per server (bounds the listener token range of a loop).
pub(crate) const MAX_LISTENERS: usize = 1024;
/// How long to wait before accepting again after a failure such as `EMFILE`.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
