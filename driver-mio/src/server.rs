//! The public API: the [`Server`] builder and the [`ServerHandle`] of a running server.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use gale_core::server::{Registry, ServerConfig};
use gale_core::{ConnConfig, Handler, MailboxClosed, Outgoing};
use mio::{Poll, Waker};

use crate::acceptor::{self, Acceptor};
use crate::mailbox::{LoopShared, LoopTask, Loops, MAX_LOOPS, Msg};
use crate::net::{self, BindAddr, Bound, UnixPaths};
use crate::reactor::{self, Job, Reactor};

/// Builds a server: a handler, a [`ServerConfig`], one or more addresses.
///
/// ```no_run
/// # use gale_core::{Context, Handler, codec::Raw};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Protocol = Raw;
/// #     type State = ();
/// #     fn protocol(&self) -> Raw { Raw::new() }
/// #     fn on_message(&self, cx: &mut Context<'_, Self>, msg: bytes::Bytes) { let _ = cx.send(msg); }
/// # }
/// # fn main() -> std::io::Result<()> {
/// let server = gale_mio::Server::new(Echo)
///     .bind("127.0.0.1:9000")?
///     .bind_unix("/tmp/echo.sock")?
///     .start()?;
/// server.wait();
/// # Ok(())
/// # }
/// ```
pub struct Server<H: Handler> {
    handler: Arc<H>,
    config: ServerConfig,
    binds: Vec<BindAddr>,
    work_budget: usize,
}

/// A running server: its address, its connections, its timers, and how to stop it.
///
/// `Send + Sync`: share it behind an `Arc` to stop the server from another thread. Dropping
/// it stops the server (gracefully, as [`stop`](Self::stop)).
pub struct ServerHandle<H: Handler> {
    shared: Arc<ServerShared<H>>,
    local_addr: Option<SocketAddr>,
    unix_paths: Mutex<UnixPaths>,
    acceptor_waker: Option<Waker>,
    threads: Mutex<Option<Vec<JoinHandle<()>>>>,
    thread_ids: Vec<ThreadId>,
    stopped: Mutex<bool>,
    stopped_cv: Condvar,
}

/// What the handle, the acceptor and every loop share.
pub(crate) struct ServerShared<H: Handler> {
    pub(crate) handler: Arc<H>,
    pub(crate) config: ServerConfig,
    /// `config.conn()`, shared by every connection.
    pub(crate) conn_config: Arc<ConnConfig>,
    /// A view of the loops' live tables.
    pub(crate) registry: Registry<Outgoing<H>>,
    pub(crate) loops: Vec<Arc<LoopShared<H>>>,
    pub(crate) stopping: AtomicBool,
    pub(crate) work_budget: usize,
    /// Admitted connections not yet closed (queued for a loop or open on one).
    open: AtomicUsize,
}

impl<H: Handler> Server<H> {
    /// A server running `handler` with the default [`ServerConfig`].
    pub fn new(handler: H) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// A server running a handler the caller keeps a reference to.
    pub fn from_arc(handler: Arc<H>) -> Self {
        Self {
            handler,
            config: ServerConfig::default(),
            binds: Vec::new(),
            work_budget: DEFAULT_WORK_BUDGET,
        }
    }

    /// Replaces the configuration: loops, SO_REUSEPORT, balancing, max connections, stop
    /// timeout, backlog and the per-connection limits.
    #[must_use]
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Bytes one connection may read plus write in one turn before the loop serves its other
    /// connections (it continues in a later turn). Default 1 MiB; at least 1.
    #[must_use]
    pub fn work_budget(mut self, bytes: usize) -> Self {
        self.work_budget = bytes.max(1);
        self
    }

    /// Listens on a TCP address (port 0 picks a free port; see
    /// [`ServerHandle::local_addr`]). The address is resolved now and bound by
    /// [`start`](Self::start), which tries each resolved address until one binds. May be
    /// called several times, also together with [`bind_unix`](Self::bind_unix).
    pub fn bind(mut self, addr: impl ToSocketAddrs) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "address resolved to nothing",
            ));
        }
        self.binds.push(BindAddr::Tcp(addrs));
        Ok(self)
    }

    /// Listens on a Unix domain socket at `path`, bound by [`start`](Self::start). The path
    /// must not exist; it is removed when the server stops. Unix sockets are always served
    /// by the acceptor thread, also in SO_REUSEPORT mode.
    pub fn bind_unix(mut self, path: impl AsRef<Path>) -> io::Result<Self> {
        self.binds.push(BindAddr::Unix(path.as_ref().to_path_buf()));
        Ok(self)
    }

    /// Binds the listeners and starts the loop threads (and the acceptor thread, unless every
    /// listener is served by the loops in SO_REUSEPORT mode); returns at once.
    ///
    /// Threads: `gale-mio-loop-N`, one per loop ([`ServerConfig::loops`], default the
    /// available parallelism, at most 4096), and `gale-mio-accept`. Install a `metrics`
    /// recorder before calling this: the loops register their metric handles here.
    pub fn start(self) -> io::Result<ServerHandle<H>> {
        self.launch(false).map(|(handle, _)| handle)
    }

    /// Runs the server with loop 0 on the calling thread, until it has stopped. The other
    /// loops and the acceptor (needed only for Unix sockets, or for several loops without
    /// SO_REUSEPORT) get threads of their own, as with [`start`](Self::start).
    ///
    /// `on_start` gets the handle first, on this thread, before any connection is served:
    /// keep a clone, and stop the server with it from a handler, a timer
    /// ([`ServerHandle::run_every`]) or another thread. Dropping the last clone stops the
    /// server too, so a handle dropped at once means a server that stops at once.
    ///
    /// With one loop and TCP listeners only, no thread is started: a program that starts
    /// none of its own stays single-threaded, as with a current-thread async runtime. On
    /// Linux that makes every socket call cheaper (a file table shared by no other thread
    /// is used without reference counting, and libc skips the cancellation bookkeeping of
    /// `recv` and `send`): a few percent less CPU per message for a loopback echo.
    ///
    /// ```no_run
    /// # use gale_core::{Context, Handler, codec::Raw, server::ServerConfig};
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
    /// gale_mio::Server::new(Echo)
    ///     .config(config)
    ///     .bind("127.0.0.1:9000")?
    ///     .run(|server| {
    ///         // Stop after a minute, from loop 0 itself.
    ///         let handle = server.clone();
    ///         server.run_after(Duration::from_secs(60), move || handle.stop());
    ///     })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn run(self, on_start: impl FnOnce(&Arc<ServerHandle<H>>)) -> io::Result<()> {
        let (handle, reactor) = self.launch(true)?;
        let handle = Arc::new(handle);
        on_start(&handle);
        if let Some(reactor) = reactor {
            reactor.run();
        }
        // The loop ran until a stop; this waits for the other threads, if any.
        handle.stop();
        Ok(())
    }

    /// Binds and starts; with `here`, loop 0 is returned to run on the calling thread
    /// instead of being spawned.
    fn launch(self, here: bool) -> io::Result<(ServerHandle<H>, Option<Reactor<H>>)> {
        let config = self.config;
        let loops = config
            .loops()
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, usize::from))
            .clamp(1, MAX_LOOPS);
        let Bound {
            shared: shared_listeners,
            per_loop: loop_listeners,
            unix_paths,
            local_addr,
        } = net::bind_all(&self.binds, config.reuse_port(), loops, config.backlog())?;

        let mut polls = Vec::with_capacity(loops);
        let mut loop_shared = Vec::with_capacity(loops);
        for _ in 0..loops {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), reactor::WAKER)?;
            polls.push(poll);
            loop_shared.push(Arc::new(LoopShared::new(waker)));
        }
        let shared = Arc::new(ServerShared {
            handler: self.handler,
            conn_config: Arc::new(config.conn().clone()),
            config,
            registry: Registry::from_directory(Arc::new(Loops(loop_shared.clone()))),
            loops: loop_shared,
            stopping: AtomicBool::new(false),
            work_budget: self.work_budget,
            open: AtomicUsize::new(0),
        });
        let acceptor = if shared_listeners.is_empty() {
            None
        } else {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), acceptor::WAKER)?;
            let acceptor = Acceptor::new(poll, shared_listeners, Arc::clone(&shared))?;
            Some((acceptor, waker))
        };

        // From here on, dropping `handle` (on an error) stops what was started.
        let mut handle = ServerHandle {
            shared: Arc::clone(&shared),
            local_addr,
            unix_paths: Mutex::new(unix_paths),
            acceptor_waker: None,
            threads: Mutex::new(Some(Vec::new())),
            thread_ids: Vec::new(),
            stopped: Mutex::new(false),
            stopped_cv: Condvar::new(),
        };
        let mut own = None;
        for (index, (poll, listeners)) in polls.into_iter().zip(loop_listeners).enumerate() {
            let reactor = Reactor::new(index, poll, Arc::clone(&shared), listeners)?;
            if here && index == 0 {
                handle.thread_ids.push(thread::current().id());
                own = Some(reactor);
            } else {
                handle.spawn(format!("gale-mio-loop-{index}"), move || reactor.run())?;
            }
        }
        if let Some((acceptor, waker)) = acceptor {
            handle.acceptor_waker = Some(waker);
            handle.spawn("gale-mio-accept".into(), move || acceptor.run())?;
        }
        tracing::info!(loops, addr = ?handle.local_addr, "gale-mio server started");
        Ok((handle, own))
    }
}

impl<H: Handler> ServerHandle<H> {
    /// The first TCP address the server listens on (`None` when it listens only on Unix
    /// sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Open connections: admitted and not yet closed.
    pub fn connection_count(&self) -> usize {
        self.shared.open()
    }

    /// The live connections, to reach them from any thread (count, broadcast, handles).
    pub fn connections(&self) -> Registry<Outgoing<H>> {
        self.shared.registry.clone()
    }

    /// Runs `f` once, `delay` from now, on loop 0's thread (between I/O events: keep it
    /// short, hand long work to another thread). Dropped if the server stops first.
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        let now = Instant::now();
        let mut f = Some(f);
        let job: Job = Box::new(move || {
            if let Some(f) = f.take() {
                f();
            }
        });
        self.on_loop0(Box::new(move |r| {
            r.server_timers.run_after(now, delay, job);
        }));
    }

    /// Runs `f` every `period` (fixed rate, first at `now + period`; missed ticks are
    /// skipped) on loop 0's thread, until the server stops. A zero period is raised to 1 ms.
    pub fn run_every(&self, period: Duration, f: impl FnMut() + Send + 'static) {
        let now = Instant::now();
        let period = period.max(MIN_PERIOD);
        let job: Job = Box::new(f);
        self.on_loop0(Box::new(move |r| {
            // Cannot fail: the period is not zero.
            let _ = r.server_timers.run_every(now, period, job);
        }));
    }

    /// Runs `f` once on the thread of event loop `loop_index` (gev's `QueueInLoop`), between
    /// I/O events: keep it short. Fails with the closure's loop gone (the server stopped) or
    /// an index past the last loop.
    pub fn run_in_loop(
        &self,
        loop_index: usize,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), MailboxClosed> {
        let mailbox = self.shared.loops.get(loop_index).ok_or(MailboxClosed)?;
        mailbox
            .push(Msg::Run(Box::new(move |_| f())))
            .map_err(|_| MailboxClosed)
    }

    /// Number of event loops (threads owning connections).
    pub fn loop_count(&self) -> usize {
        self.shared.loops.len()
    }

    /// Stops the server gracefully and waits for it: stops accepting, asks every connection
    /// to close after flushing what is queued ([`CloseReason::Shutdown`]), and drops the
    /// connections still open after [`ServerConfig::stop_timeout`]. Idempotent; a second
    /// caller waits for the first.
    ///
    /// Called from one of the server's own threads (a handler or a timer), it only starts
    /// the stop and returns without waiting.
    ///
    /// [`CloseReason::Shutdown`]: gale_core::CloseReason::Shutdown
    pub fn stop(&self) {
        let on_own_thread = self.thread_ids.contains(&thread::current().id());
        let Some(threads) = self.lock_threads().take() else {
            if !on_own_thread {
                self.wait();
            }
            return;
        };
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(waker) = &self.acceptor_waker
            && let Err(e) = waker.wake()
        {
            tracing::error!(error = %e, "cannot wake the acceptor");
        }
        let deadline = Instant::now() + self.shared.config.stop_timeout();
        for l in &self.shared.loops {
            let _ = l.push(Msg::Stop(deadline));
        }
        for t in threads {
            if t.thread().id() == thread::current().id() {
                continue;
            }
            let name = t.thread().name().unwrap_or("gale-mio").to_owned();
            if t.join().is_err() {
                tracing::error!(thread = %name, "a gale-mio thread panicked");
            }
        }
        self.unix_paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove_all();
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.stopped_cv.notify_all();
        tracing::info!("gale-mio server stopped");
    }

    /// Blocks until the server has stopped (another thread called [`stop`](Self::stop)).
    /// Returns at once when called from one of the server's own threads.
    pub fn wait(&self) {
        if self.thread_ids.contains(&thread::current().id()) {
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

    fn on_loop0(&self, f: LoopTask<H>) {
        if self.shared.loops[0].push(Msg::Run(f)).is_err() {
            tracing::debug!("server stopped: timer dropped");
        }
    }

    fn spawn(&mut self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let t = thread::Builder::new().name(name).spawn(f)?;
        self.thread_ids.push(t.thread().id());
        self.threads
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Vec::new)
            .push(t);
        Ok(())
    }

    fn lock_threads(&self) -> MutexGuard<'_, Option<Vec<JoinHandle<()>>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
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
            .field("local_addr", &self.local_addr)
            .field("loops", &self.shared.loops.len())
            .field("connections", &self.shared.open())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> ServerShared<H> {
    /// Counts one more open connection if `max_connections` allows it.
    pub(crate) fn admit(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                self.config.admits(n).then_some(n + 1)
            })
            .is_ok()
    }

    /// An admitted connection closed (or was dropped before it started).
    pub(crate) fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// The default of [`Server::work_budget`].
const DEFAULT_WORK_BUDGET: usize = 1024 * 1024;
/// The smallest `run_every` period.
const MIN_PERIOD: Duration = Duration::from_millis(1);
