//! The driver API convention shared by every gale driver: [`Server`] builds, binds and starts
//! a server on threads of its own (or runs it on the calling thread); [`ServerHandle`]
//! controls it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, ThreadId};
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

/// A running server started by [`Server::start`] (or [`Server::run`]). Dropping it stops
/// the server.
pub struct ServerHandle<H: Handler> {
    handle: ServeHandle<H>,
    /// The threads of a server started by [`Server::start`].
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The server's threads (for [`Server::run`], its caller's and the workers').
    own: Mutex<Vec<ThreadId>>,
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
        let (executor, serve, server, loops) = self.prepare()?;
        let ex = Arc::clone(&executor);
        // The acceptor is a task of its own: the future given to `Executor::run` is polled
        // on every wake-up of the thread, which would try to accept once per batch of I/O.
        let acceptor = std::thread::Builder::new()
            .name("gale-smol-0".into())
            .spawn(move || smol::block_on(ex.run(ex.spawn(serve.run()))))?;
        server.own_thread(acceptor.thread().id());
        server
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(acceptor);
        // On failure, dropping `server` stops the threads started so far.
        let workers = spawn_workers(&executor, &server.handle, loops)?;
        for worker in workers {
            server.own_thread(worker.thread().id());
            server
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(worker);
        }
        Ok(server)
    }

    /// Binds and runs the server on the calling thread until it stops: this thread is the
    /// one [`start`](Self::start) would name `gale-smol-0` (it accepts and runs tasks), and
    /// `loops - 1` more threads run the executor with it. `on_start` gets the handle first:
    /// arm timers, hand it to whatever will call [`stop`](ServerHandle::stop).
    ///
    /// ```no_run
    /// # use gale_smol::gale_core::{Context, Handler, codec::Raw, server::ServerConfig};
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
    /// gale_smol::Server::new(Echo)
    ///     .config(config)
    ///     .bind("127.0.0.1:9000")?
    ///     .run(|server| {
    ///         // Stop after a minute, from a timer on the server's own executor.
    ///         let handle = server.clone();
    ///         server.run_after(Duration::from_secs(60), move || handle.stop());
    ///     })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn run(self, on_start: impl FnOnce(&Arc<ServerHandle<H>>)) -> io::Result<()> {
        let (executor, serve, server, loops) = self.prepare()?;
        let server = Arc::new(server);
        // Not the handle's to join: a `stop` on one of them would wait for itself.
        let workers = spawn_workers(&executor, &server.handle, loops)?;
        server.own_thread(std::thread::current().id());
        for worker in &workers {
            server.own_thread(worker.thread().id());
        }
        on_start(&server);
        smol::block_on(executor.run(executor.spawn(serve.run())));
        for worker in workers {
            if worker.join().is_err() {
                tracing::error!("gale-smol server thread panicked");
            }
        }
        server.remove_socket_file();
        Ok(())
    }

    /// The executor, the bound server, its handle (no threads yet) and the thread count.
    fn prepare(self) -> io::Result<Prepared<H>> {
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
        let server = ServerHandle {
            handle: serve.handle(),
            threads: Mutex::new(Vec::new()),
            own: Mutex::new(Vec::new()),
            #[cfg(unix)]
            unix_path: match addr {
                BindAddr::Unix(path) => Some(path),
                BindAddr::Tcp(_) => None,
            },
        };
        Ok((executor, serve, server, loops))
    }
}

/// What [`Server::start`] and [`Server::run`] share: see `Server::prepare`.
type Prepared<H> = (Arc<Executor<'static>>, Serve<H>, ServerHandle<H>, usize);

/// Threads 1.. of a server: each runs `executor` until the server has stopped.
fn spawn_workers<H: Handler>(
    executor: &Arc<Executor<'static>>,
    handle: &ServeHandle<H>,
    loops: usize,
) -> io::Result<Vec<JoinHandle<()>>> {
    let mut workers = Vec::new();
    for i in 1..loops {
        let ex = Arc::clone(executor);
        let stopped = handle.clone();
        let worker = std::thread::Builder::new()
            .name(format!("gale-smol-{i}"))
            .spawn(move || smol::block_on(ex.run(stopped.stopped())));
        match worker {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                // Stops (and so ends) the threads started so far.
                handle.stop();
                return Err(e);
            }
        }
    }
    Ok(workers)
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
    /// threads. Idempotent. Called from one of the server's own threads (a handler callback
    /// or a timer), it only starts the stop and returns without waiting.
    pub fn stop(&self) {
        self.handle.stop();
        self.wait();
    }

    /// Blocks until the server has stopped (after [`stop`](Self::stop), from any thread).
    /// Returns at once when called from one of the server's own threads.
    pub fn wait(&self) {
        let me = std::thread::current().id();
        if self
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&me)
        {
            return;
        }
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        if threads.is_empty() {
            drop(threads);
            // Run by `Server::run`, or joined already: the stop signal says when it is over.
            smol::block_on(self.handle.stopped());
            return;
        }
        for thread in threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("gale-smol server thread panicked");
            }
        }
        self.remove_socket_file();
    }

    /// `id` is one of the server's threads: `stop` and `wait` there must not wait.
    fn own_thread(&self, id: ThreadId) {
        self.own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }

    fn remove_socket_file(&self) {
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
