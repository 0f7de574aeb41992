//! The driver API convention shared by every gale driver: [`Server`] builds, binds and starts
//! a server on threads of its own (or runs it on the calling thread); [`ServerHandle`]
//! controls it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gale_core::server::{Registry, ServerConfig};
use gale_core::{Handler, Outgoing};
use tokio::runtime::{Builder, Runtime};

use crate::net::BindAddr;
use crate::serve::{Serve, ServeHandle};

/// Builds a server: handler, [`ServerConfig`], address; [`start`](Self::start) runs it.
///
/// ```no_run
/// # use bytes::Bytes;
/// # use gale_tokio::gale_core::{codec::Lines, Context, Handler, server::ServerConfig};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Protocol = Lines;
/// #     type State = ();
/// #     fn protocol(&self) -> Lines { Lines::new() }
/// #     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) { let _ = cx.send(line); }
/// # }
/// # fn main() -> std::io::Result<()> {
/// let server = gale_tokio::Server::new(Echo)
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

/// A running server started by [`Server::start`] (or [`Server::run`]). Dropping it stops
/// the server.
pub struct ServerHandle<H: Handler> {
    handle: ServeHandle<H>,
    /// The accept thread of a server started by [`Server::start`].
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set once the server has stopped and its runtime is gone.
    stopped: Mutex<bool>,
    stopped_cv: Condvar,
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

    /// Sets the server options. `loops` is the number of runtime worker threads (1: a
    /// current-thread runtime); `balance` does not apply (tokio's scheduler spreads tasks).
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

    /// Binds and starts the server on a runtime of its own, run by background threads, and
    /// returns at once: a current-thread runtime when `loops` is 1, otherwise a
    /// multi-thread runtime with `loops` workers (default: available parallelism), plus one
    /// thread that accepts.
    pub fn start(self) -> io::Result<ServerHandle<H>> {
        let (runtime, serve, mut handle) = self.prepare()?;
        let thread = std::thread::Builder::new()
            .name("gale-tokio-accept".into())
            .spawn(move || {
                runtime.block_on(serve.run());
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
            })?;
        handle.thread = Mutex::new(Some(thread));
        Ok(handle)
    }

    /// Binds and runs the server on the calling thread until it stops, as
    /// [`start`](Self::start) would on its accept thread: with one loop on a current-thread
    /// runtime, so the server needs no thread but this one (a single-threaded process makes
    /// cheaper socket calls). `on_start` gets the handle first: arm timers, hand it to
    /// whatever will call [`stop`](ServerHandle::stop).
    ///
    /// ```no_run
    /// # use gale_tokio::gale_core::{Context, Handler, codec::Raw, server::ServerConfig};
    /// # struct Echo;
    /// # impl Handler for Echo {
    /// #     type Protocol = Raw;
    /// #     type State = ();
    /// #     fn protocol(&self) -> Raw { Raw::new() }
    /// #     fn on_message(&self, cx: &mut Context<'_, Self>, msg: bytes::Bytes) { let _ = cx.send(msg); }
    /// # }
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    ///
    /// let mut config = ServerConfig::default();
    /// config.set_loops(Some(1));
    /// gale_tokio::Server::new(Echo)
    ///     .config(config)
    ///     .bind("127.0.0.1:9000")?
    ///     .run(|server| {
    ///         // Stop after a minute, from a timer on the server's own runtime.
    ///         let handle = server.clone();
    ///         server.run_after(Duration::from_secs(60), move || handle.stop());
    ///     })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn run(self, on_start: impl FnOnce(&Arc<ServerHandle<H>>)) -> io::Result<()> {
        let (runtime, serve, handle) = self.prepare()?;
        let handle = Arc::new(handle);
        on_start(&handle);
        runtime.block_on(serve.run());
        runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        handle.finish();
        Ok(())
    }

    /// The runtime, the bound server and its handle (without a thread yet).
    fn prepare(self) -> io::Result<(Runtime, Serve<H>, ServerHandle<H>)> {
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
        let mut builder = if loops == 1 {
            Builder::new_current_thread()
        } else {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(loops);
            b
        };
        let runtime = builder.enable_all().thread_name("gale-tokio").build()?;
        let listener = {
            let _entered = runtime.enter();
            addr.bind(&self.config)?
        };
        let serve = Serve::new(listener, self.handler, self.config);
        let handle = ServerHandle {
            handle: serve.handle(),
            thread: Mutex::new(None),
            stopped: Mutex::new(false),
            stopped_cv: Condvar::new(),
            #[cfg(unix)]
            unix_path: match addr {
                BindAddr::Unix(path) => Some(path),
                BindAddr::Tcp(_) => None,
            },
        };
        Ok((runtime, serve, handle))
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

    /// Calls `f` once, `delay` from now, on a runtime thread (never block in it).
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        self.handle.run_after(delay, f);
    }

    /// Calls `f` every `period` until the server stops; missed ticks are skipped.
    pub fn run_every(&self, period: Duration, f: impl FnMut() + Send + 'static) {
        self.handle.run_every(period, f);
    }

    /// Stops gracefully: stops accepting, flushes and closes every connection (at most the
    /// config's stop timeout; connections still flushing then close at once), then waits
    /// for the server's threads. Idempotent. Called from within a tokio runtime (a handler
    /// callback or a timer, which run on the server's own runtime), it only starts the stop
    /// and returns without waiting.
    pub fn stop(&self) {
        self.handle.stop();
        self.wait();
    }

    /// Blocks until the server has stopped (after [`stop`](Self::stop), from any thread).
    /// Returns at once when called from within a tokio runtime, where blocking could keep
    /// the server from stopping.
    pub fn wait(&self) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("gale-tokio server thread panicked");
            }
            self.finish();
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stopped {
            stopped = self
                .stopped_cv
                .wait(stopped)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The server has stopped: removes its Unix socket and wakes the waiters.
    fn finish(&self) {
        let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if !*stopped {
            *stopped = true;
            #[cfg(unix)]
            if let Some(path) = &self.unix_path {
                let _ = std::fs::remove_file(path);
            }
        }
        self.stopped_cv.notify_all();
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

/// Bound on waiting for runtime threads after the server stopped.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);
