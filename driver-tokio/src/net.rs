//! Listeners and streams: TCP and Unix sockets behind one type each.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::{Path, PathBuf};

use gale_core::PeerAddr;
use gale_core::server::ServerConfig;
use socket2::{Domain, SockRef, Socket, Type};
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

impl Stream {
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.readable().await,
            #[cfg(unix)]
            Self::Unix(s) => s.readable().await,
        }
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.writable().await,
            #[cfg(unix)]
            Self::Unix(s) => s.writable().await,
        }
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_read(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.try_read(buf),
        }
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_write_vectored(bufs),
            #[cfg(unix)]
            Self::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    /// Sends FIN; reading goes on.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => SockRef::from(s).shutdown(Shutdown::Write),
            #[cfg(unix)]
            Self::Unix(s) => SockRef::from(s).shutdown(Shutdown::Write),
        }
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
