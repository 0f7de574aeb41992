//! Listeners and streams: TCP and Unix sockets behind one type each.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use gale_core::PeerAddr;
use gale_core::server::ServerConfig;
use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// A bound listener [`serve`](crate::serve) accepts connections from: a tokio
/// [`TcpListener`] or, on Unix, a [`UnixListener`] (both convert with `into()`).
#[derive(Debug)]
pub struct Listener {
    kind: ListenerKind,
}

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self {
            kind: ListenerKind::Tcp(listener),
        }
    }
}

#[cfg(unix)]
impl From<UnixListener> for Listener {
    fn from(listener: UnixListener) -> Self {
        Self {
            kind: ListenerKind::Unix(listener),
        }
    }
}

impl Listener {
    /// The bound TCP address (`None` for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            ListenerKind::Tcp(l) => l.local_addr().ok(),
            #[cfg(unix)]
            ListenerKind::Unix(_) => None,
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match &self.kind {
            ListenerKind::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Replies are small and latency matters more than packet count.
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), PeerAddr::Tcp(peer)))
            }
            #[cfg(unix)]
            ListenerKind::Unix(l) => {
                let (stream, peer) = l.accept().await?;
                let path = peer.as_pathname().map(Path::to_path_buf);
                Ok((Stream::Unix(stream), PeerAddr::Unix(path)))
            }
        }
    }
}

/// An accepted connection's socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

/// What a connection's task needs from its socket. Implemented by [`TcpStream`] and
/// `UnixStream`; the task is generic over it, so it holds the socket without an enum tag.
pub(crate) trait ConnSocket: AsyncRead + AsFd + Unpin + Send + Sized + 'static {
    /// Ready once the socket may take bytes; otherwise registers `cx`.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Writes `bufs` with one socket call, `send` for one slice and `sendmsg` for several:
    /// socket calls skip the VFS layer that `write`/`writev` go through. `WouldBlock`
    /// clears the readiness.
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Reads what is there into `buf`, or registers `cx` for readability. A short read
    /// clears tokio's readiness, so no read is spent to see `WouldBlock`.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self).poll_read(cx, buf)
    }

    /// Sends FIN; reading goes on.
    fn shutdown_write(&self) -> io::Result<()> {
        SockRef::from(self).shutdown(Shutdown::Write)
    }
}

impl ConnSocket for TcpStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_write_ready(self, cx)
    }

    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            // tokio's TcpStream::try_write is mio's, which is std's `send(MSG_NOSIGNAL)`.
            [one] => self.try_write(one),
            _ => self.try_io(Interest::WRITABLE, || {
                SockRef::from(self).send_vectored_with_flags(bufs, SEND_FLAGS)
            }),
        }
    }
}

#[cfg(unix)]
impl ConnSocket for UnixStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_write_ready(self, cx)
    }

    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, || {
            SockRef::from(self).send_vectored_with_flags(bufs, SEND_FLAGS)
        })
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

    /// Binds with the configured backlog (and `SO_REUSEPORT` when asked); must run inside the
    /// runtime that will accept.
    pub(crate) fn bind(&self, config: &ServerConfig) -> io::Result<Listener> {
        let backlog = i32::try_from(config.backlog()).unwrap_or(i32::MAX);
        match self {
            Self::Tcp(addrs) => {
                let mut last = None;
                for addr in addrs {
                    match bind_tcp(*addr, backlog, config.reuse_port()) {
                        Ok(l) => return Ok(TcpListener::from_std(l)?.into()),
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
                socket.set_nonblocking(true)?;
                let std: std::os::unix::net::UnixListener = socket.into();
                Ok(UnixListener::from_std(std)?.into())
            }
        }
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(reuse_port)?;
    #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
    let _ = reuse_port;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A peer that reset the connection makes `sendmsg` fail with `EPIPE` rather than raise
/// `SIGPIPE` (std's `send` for one slice does the same).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: i32 = 0;
