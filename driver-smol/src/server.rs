//! The driver API convention shared by every gale driver: [`Server`] builds, binds and starts
//! a server on threads of its own; [`ServerHandle`] controls it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gale_core::server::{Registry, ServerConfig};
use gale_core::{Handler, Outgoing};
use smol::Executor;

use crate::net::BindAddr;
use crate::serve::{Serve, ServeHandle};

/// Builds a server: handler, [`ServerConfig`], address; [`start`](Self::start) runs it.
///
/// ```no_run
/// # use bytes::Bytes;
/// # use gale_smol::gale_core::{codec::Lines, Context, Handler, server::ServerConfig};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Protocol = Lines;
/// #     type State = ();
/// #     fn protocol(&self) -> Lines { Lines::new() }
/// #     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) { let _ = cx.send(line); }
/// # }
/// # fn main() -> std::io::Result<()> {
/// let server = gale_smol::Server::new(Echo)
///     .config(ServerConfig::default())
///     .bind("127.0.0.1:9000")?
///     .start()?;
/// println!("listening on {:?}", server.local_addr());
/// server.wait();
/// # Ok(())
/// # }
/// ```
pub struct Server<H: Handler> {
    handler: Arc<H>,
    config: ServerConfig,
    addr: Option<BindAddr>,
}

/// A running server started by [`Server::start`]. Dropping it stops the server.
pub struct ServerHandle<H: Handler> {
    handle: ServeHandle<H>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    #[cfg(unix)]
    unix_path: Option<PathBuf>,
}

impl<H: Handler> Server<H> {
    /// A server running `handler` (shared by all connections) with the default config.
    pub fn new(handler: H) -> Self {
        Self::with_arc(Arc::new(handler))
    }

    /// A server running a handler that is already shared.
    pub fn with_arc(handler: Arc<H>) -> Self {
        Self {
            handler,
            config: ServerConfig::default(),
            addr: None,
        }
    }

    /// Sets the server options. `loops` is the number of executor threads; `balance` does
    /// not apply (the executor's work stealing spreads tasks).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Listens on TCP `addr` (bound by [`start`](Self::start), with the config's backlog and
    /// `SO_REUSEPORT` setting). Fails if `addr` does not resolve.
    pub fn bind(mut self, addr: impl ToSocketAddrs) -> io::Result<Self> {
        self.addr = Some(BindAddr::tcp(addr)?);
        Ok(self)
    }

    /// Listens on a Unix socket at `path`, removed again when the server stops. The path
    /// must not exist.
    #[cfg(unix)]
    pub fn bind_unix(mut self, path: impl AsRef<Path>) -> io::Result<Self> {
        self.addr = Some(BindAddr::Unix(path.as_ref().to_path_buf()));
        Ok(self)
    }

    /// Binds and starts the server and returns at once: an [`Executor`] run by `loops`
    /// threads (default: available parallelism), the first of which also accepts.
    pub fn start(self) -> io::Result<ServerHandle<H>> {
        let addr = self.addr.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "call bind() or bind_unix() before start()",
            )
        })?;
        let loops = self
            .config
            .loops()
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let listener = addr.bind(&self.config)?;
        let executor = Arc::new(Executor::new());
        let serve = Serve::new(listener, self.handler, self.config)
            .ready()?
            .executor(Arc::clone(&executor));
        let handle = serve.handle();
        let ex = Arc::clone(&executor);
        // The acceptor is a task of its own: the future given to `Executor::run` is polled
        // on every wake-up of the thread, which would try to accept once per batch of I/O.
        let acceptor = std::thread::Builder::new()
            .name("gale-smol-0".into())
            .spawn(move || smol::block_on(ex.run(ex.spawn(serve.run()))))?;
        let server = ServerHandle {
            handle,
            threads: Mutex::new(vec![acceptor]),
            #[cfg(unix)]
            unix_path: match addr {
                BindAddr::Unix(path) => Some(path),
                BindAddr::Tcp(_) => None,
            },
        };
        for i in 1..loops {
            let ex = Arc::clone(&executor);
            let stopped = server.handle.clone();
            // On failure, dropping `server` stops the threads started so far.
            let worker = std::thread::Builder::new()
                .name(format!("gale-smol-{i}"))
                .spawn(move || smol::block_on(ex.run(stopped.stopped())))?;
            server
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(worker);
        }
        Ok(server)
    }
}

impl<H: Handler> ServerHandle<H> {
    /// The bound TCP address (`None` for Unix sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.handle.local_addr()
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.handle.connection_count()
    }

    /// The live connections, to reach or broadcast to from any thread.
    pub fn connections(&self) -> Registry<Outgoing<H>> {
        self.handle.connections()
    }

    /// Calls `f` once, `delay` from now, on an executor thread (never block in it).
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        self.handle.run_after(delay, f);
    }

    /// Calls `f` every `period` until the server stops; missed ticks are skipped.
    pub fn run_every(&self, period: Duration, f: impl FnMut() + Send + 'static) {
        self.handle.run_every(period, f);
    }

    /// Stops gracefully: stops accepting, flushes and closes every connection (at most the
    /// config's stop timeout; connections still flushing then close at once), then joins the
    /// threads. Idempotent. It blocks: from a handler callback or a timer, which run on the
    /// server's own threads, call [`serve_handle`](Self::serve_handle)`().stop()` instead.
    pub fn stop(&self) {
        self.handle.stop();
        self.wait();
    }

    /// Blocks until the server has stopped (after [`stop`](Self::stop), from any thread).
    pub fn wait(&self) {
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        if threads.is_empty() {
            return;
        }
        for thread in threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("gale-smol server thread panicked");
            }
        }
        #[cfg(unix)]
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The runtime-native handle of the same server.
    pub fn serve_handle(&self) -> &ServeHandle<H> {
        &self.handle
    }
}

impl<H: Handler> Drop for ServerHandle<H> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<H: Handler> std::fmt::Debug for ServerHandle<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("serve", &self.handle)
            .finish_non_exhaustive()
    }
}
