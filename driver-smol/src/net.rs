//! Listeners and streams: TCP and Unix sockets behind one type each.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use gale_core::PeerAddr;
use gale_core::server::ServerConfig;
use smol::Async;
use socket2::{Domain, SockRef, Socket, Type};

use crate::poller::Polled;

/// A bound listener [`serve`](crate::serve) accepts connections from: an
/// [`Async<TcpListener>`] or, on Unix, an [`Async<UnixListener>`] (both convert with
/// `into()`).
#[derive(Debug)]
pub struct Listener {
    kind: ListenerKind,
}

#[derive(Debug)]
enum ListenerKind {
    Tcp(Async<TcpListener>),
    #[cfg(unix)]
    Unix(Async<UnixListener>),
}

impl From<Async<TcpListener>> for Listener {
    fn from(listener: Async<TcpListener>) -> Self {
        Self {
            kind: ListenerKind::Tcp(listener),
        }
    }
}

#[cfg(unix)]
impl From<Async<UnixListener>> for Listener {
    fn from(listener: Async<UnixListener>) -> Self {
        Self {
            kind: ListenerKind::Unix(listener),
        }
    }
}

impl Listener {
    /// The bound TCP address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.get_ref().local_addr().ok(),
            #[cfg(unix)]
            ListenerKind::Unix(_) => None,
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match &self.kind {
            ListenerKind::Tcp(l) => {
                let (stream, peer) = l.read_with(|l| l.accept()).await?;
                stream.set_nonblocking(true)?;
                // Replies are small and latency matters more than packet count.
                stream.set_nodelay(true)?;
                Ok((
                    Stream::Tcp(mio::net::TcpStream::from_std(stream)),
                    PeerAddr::Tcp(peer),
                ))
            }
            #[cfg(unix)]
            ListenerKind::Unix(l) => {
                let (stream, peer) = l.read_with(|l| l.accept()).await?;
                stream.set_nonblocking(true)?;
                let path = peer.as_pathname().map(Path::to_path_buf);
                Ok((
                    Stream::Unix(mio::net::UnixStream::from_std(stream)),
                    PeerAddr::Unix(path),
                ))
            }
        }
    }
}

/// An accepted connection's socket (non-blocking, not registered anywhere yet).
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
}

/// What a connection's task needs from its socket. Implemented by TCP and Unix streams
/// registered with the server's [`Poller`](crate::poller::Poller); the task is generic over
/// it, so it holds the socket without an enum tag.
pub(crate) trait ConnSocket: Unpin + Send + Sync + 'static {
    /// Ready once the poller reported readability since the last `Ready`; otherwise
    /// registers `cx`.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// As `poll_readable`, for writability.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// One non-blocking read.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes `bufs` with one socket call, `send` for one slice and `sendmsg` for several:
    /// socket calls skip the VFS layer that `write`/`writev` go through.
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Sends FIN; reading goes on.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl ConnSocket for Polled<mio::net::TcpStream> {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_readable(self, cx)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_writable(self, cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.get_ref().read(buf)
    }

    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            // mio's TcpStream::write is std's: `send(MSG_NOSIGNAL)`.
            [one] => self.get_ref().write(one),
            _ => SockRef::from(self.get_ref()).send_vectored_with_flags(bufs, SEND_FLAGS),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.get_ref().shutdown(Shutdown::Write)
    }
}

#[cfg(unix)]
impl ConnSocket for Polled<mio::net::UnixStream> {
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_readable(self, cx)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_writable(self, cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.get_ref().read(buf)
    }

    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        SockRef::from(self.get_ref()).send_vectored_with_flags(bufs, SEND_FLAGS)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.get_ref().shutdown(Shutdown::Write)
    }
}

/// Where a [`Server`](crate::Server) listens, bound when it starts.
#[derive(Debug, Clone)]
pub(crate) enum BindAddr {
    Tcp(Vec<SocketAddr>),
    #[cfg(unix)]
    Unix(PathBuf),
}

impl BindAddr {
    pub(crate) fn tcp(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "address resolved to nothing",
            ));
        }
        Ok(Self::Tcp(addrs))
    }

    /// Binds with the configured backlog (and `SO_REUSEPORT` when asked).
    pub(crate) fn bind(&self, config: &ServerConfig) -> io::Result<Listener> {
        let backlog = i32::try_from(config.backlog()).unwrap_or(i32::MAX);
        match self {
            Self::Tcp(addrs) => {
                let mut last = None;
                for addr in addrs {
                    match bind_tcp(*addr, backlog, config.reuse_port()) {
                        Ok(l) => return Ok(Async::new(l)?.into()),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()))
            }
            #[cfg(unix)]
            Self::Unix(path) => {
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                socket.bind(&socket2::SockAddr::unix(path)?)?;
                socket.listen(backlog)?;
                let std: UnixListener = socket.into();
                Ok(Async::new(std)?.into())
            }
        }
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(reuse_port)?;
    #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
    let _ = reuse_port;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A peer that reset the connection makes `sendmsg` fail with `EPIPE` rather than raise
/// `SIGPIPE` (std's `send` for one slice does the same).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: i32 = 0;
