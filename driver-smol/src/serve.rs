//! The runtime-native entry point: [`serve`] a listener on smol's global executor or an
//! [`Executor`] you own.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gale_core::server::{Directory, Registry, ServerConfig};
use gale_core::{ConnConfig, ConnHandle, ConnId, Connection, Handler, Mailbox, Outgoing, PeerAddr};
use slab::Slab;
use smol::channel::{self, Receiver, Sender};
use smol::future::FutureExt as _;
use smol::{Executor, Task, Timer};

use crate::conn::{ConnTask, DRAIN, FORCE, TaskMailbox};
use crate::net::{Listener, Stream};
use crate::poller::{Drive, Polled, Poller};
use crate::stats::Metrics;

/// Serves `listener` with `handler`: one task per connection, spawned on smol's global
/// executor ([`smol::spawn`]) or, after [`Serve::executor`], on an [`Executor`] of yours.
///
/// Nothing runs until the returned [`Serve`] is awaited (or its [`run`](Serve::run) future
/// spawned). Take a [`ServeHandle`] first to stop it, count connections or arm timers.
///
/// ```no_run
/// # use bytes::Bytes;
/// # use gale_smol::gale_core::{codec::Lines, Context, Handler};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Protocol = Lines;
/// #     type State = ();
/// #     fn protocol(&self) -> Lines { Lines::new() }
/// #     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) { let _ = cx.send(line); }
/// # }
/// # fn main() -> std::io::Result<()> {
/// smol::block_on(async {
///     let listener = smol::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 9000))?;
///     let server = gale_smol::serve(listener, Echo, Default::default());
///     let handle = server.handle();
///     let running = smol::spawn(server.run());
///     // … later: stop accepting, flush and close every connection, wait.
///     handle.stop();
///     running.await;
///     Ok(())
/// })
/// # }
/// ```
pub fn serve<H: Handler>(
    listener: impl Into<Listener>,
    handler: H,
    config: ServerConfig,
) -> Serve<H> {
    Serve::new(listener.into(), Arc::new(handler), config)
}

/// A server not yet running: await it (or spawn [`run`](Self::run)) to serve.
pub struct Serve<H: Handler> {
    listener: Listener,
    shared: Arc<Shared<H>>,
    jobs: Receiver<Job>,
    spawner: Spawner,
    /// Created with the server, so that its descriptors exist from the start; a failure is
    /// reported when the server runs.
    poller: io::Result<(Arc<Poller>, Drive)>,
}

/// Controls a server started with [`serve`]: cheap to clone, usable from any thread.
pub struct ServeHandle<H: Handler> {
    shared: Arc<Shared<H>>,
}

impl<H: Handler> Serve<H> {
    pub(crate) fn new(listener: Listener, handler: Arc<H>, config: ServerConfig) -> Self {
        let (jobs_tx, jobs) = channel::unbounded();
        let conns = Arc::new(Conns::default());
        let shared = Arc::new(Shared {
            handler,
            local_addr: listener.local_addr(),
            conn_config: Arc::new(config.conn().clone()),
            config,
            registry: Registry::from_directory(conns.clone()),
            conns,
            metrics: Metrics::new(),
            deadline: Mutex::new(None),
            draining: Signal::new(),
            stopped: Signal::new(),
            jobs: jobs_tx,
        });
        Self {
            listener,
            shared,
            jobs,
            spawner: Spawner(None),
            poller: Poller::new(),
        }
    }

    /// Fails if the server could not create its socket poller (which [`run`](Self::run)
    /// would otherwise only log).
    pub(crate) fn ready(mut self) -> io::Result<Self> {
        if let Err(e) = self.poller {
            self.poller = Err(io::Error::new(e.kind(), "already reported"));
            return Err(e);
        }
        Ok(self)
    }

    /// Spawns connection and timer tasks on `executor` instead of smol's global one.
    pub fn executor(mut self, executor: Arc<Executor<'static>>) -> Self {
        self.spawner = Spawner(Some(executor));
        self
    }

    /// A handle to control the server.
    pub fn handle(&self) -> ServeHandle<H> {
        ServeHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Accepts connections until [`ServeHandle::stop`] is called, then stops gracefully:
    /// stops accepting, asks every connection to flush and close, and waits for them until
    /// the config's stop timeout, after which the remaining connections are closed at once.
    pub async fn run(self) {
        let Self {
            listener,
            shared,
            jobs,
            spawner,
            poller,
        } = self;
        let mut timers: Vec<Task<()>> = Vec::new();
        let (poller, drive) = match poller {
            Ok(poller) => poller,
            Err(e) => {
                tracing::error!(error = %e, "gale-smol server cannot poll sockets");
                shared.stopped.fire();
                return;
            }
        };
        let drive = spawner.spawn(drive);
        tracing::info!(addr = ?shared.local_addr, "gale-smol server running");
        while !shared.draining.is_fired() {
            let step = async {
                shared.draining.wait().await;
                Step::Stop
            }
            .or(async { jobs.recv().await.map_or(Step::Stop, Step::Job) })
            .or(async { Step::Accepted(listener.accept().await) })
            .await;
            match step {
                Step::Stop => {}
                Step::Job(job) => {
                    timers.retain(|t| !t.is_finished());
                    timers.push(spawner.spawn(job.run()));
                }
                Step::Accepted(Ok((stream, peer))) => {
                    shared.admit(stream, peer, &poller, &spawner);
                }
                Step::Accepted(Err(e)) => accept_failed(e).await,
            }
        }
        drop(listener);
        drop(timers);
        let deadline = shared
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        shared.conns.signal(DRAIN);
        if !within(deadline, shared.conns.drained()).await {
            tracing::warn!(
                open = shared.conns.len(),
                "stop timeout: closing the remaining connections"
            );
            shared.conns.signal(FORCE);
            // Each task closes at once when forced; this only bounds a wedged handler.
            within(Instant::now() + FORCE_GRACE, shared.conns.drained()).await;
        }
        // Every connection is gone: nothing is registered with the poller any more.
        drop(drive);
        shared.stopped.fire();
        tracing::info!(addr = ?shared.local_addr, "gale-smol server stopped");
    }
}

impl<H: Handler> IntoFuture for Serve<H> {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<H: Handler> ServeHandle<H> {
    /// The bound TCP address (`None` for Unix sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.shared.conns.len()
    }

    /// The live connections, to reach or broadcast to from any thread.
    pub fn connections(&self) -> Registry<Outgoing<H>> {
        self.shared.registry.clone()
    }

    /// Calls `f` once, `delay` from now, on an executor task (never block in it). Dropped if
    /// the server stops first.
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        let _ = self.shared.jobs.try_send(Job::After(delay, Box::new(f)));
    }

    /// Calls `f` every `period` (first call one period from now) until the server stops.
    /// Ticks missed because the executor was busy are skipped, not bunched.
    pub fn run_every(&self, period: Duration, f: impl FnMut() + Send + 'static) {
        let _ = self.shared.jobs.try_send(Job::Every(period, Box::new(f)));
    }

    /// Starts a graceful stop (see [`Serve::run`]) and returns at once; idempotent. Await
    /// [`stopped`](Self::stopped) to know when it is done.
    pub fn stop(&self) {
        let mut deadline = self
            .shared
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if deadline.is_none() {
            *deadline = Some(Instant::now() + self.shared.config.stop_timeout());
            self.shared.draining.fire();
        }
    }

    /// Resolves once the server has stopped and every connection is closed.
    pub async fn stopped(&self) {
        self.shared.stopped.wait().await;
    }

    /// Whether the server has stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_fired()
    }
}

impl<H: Handler> Clone for ServeHandle<H> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H: Handler> std::fmt::Debug for ServeHandle<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeHandle")
            .field("local_addr", &self.shared.local_addr)
            .field("connections", &self.shared.conns.len())
            .finish_non_exhaustive()
    }
}

/// A one-shot broadcast: fired once, observed by any number of waiters (a closed channel).
#[derive(Debug)]
pub(crate) struct Signal {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Signal {
    fn new() -> Self {
        let (tx, rx) = channel::bounded(1);
        Self { tx, rx }
    }

    fn fire(&self) {
        self.tx.close();
    }

    fn is_fired(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once fired.
    pub(crate) async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// What the acceptor and every connection task share.
pub(crate) struct Shared<H: Handler> {
    handler: Arc<H>,
    config: ServerConfig,
    /// `config.conn()`, shared by every connection.
    conn_config: Arc<ConnConfig>,
    local_addr: Option<SocketAddr>,
    /// A view of `conns`.
    pub(crate) registry: Registry<Outgoing<H>>,
    conns: Arc<Conns<Outgoing<H>>>,
    pub(crate) metrics: Metrics,
    /// Set by the first `stop`.
    deadline: Mutex<Option<Instant>>,
    /// Fired when the stop begins: the acceptor stops (connections get [`DRAIN`] and
    /// [`FORCE`] through their mailboxes).
    pub(crate) draining: Signal,
    stopped: Signal,
    jobs: Sender<Job>,
}

impl<H: Handler> Shared<H> {
    /// Starts a task for an accepted connection, or closes it at once when the server is
    /// full (it never reaches the handler).
    fn admit(
        self: &Arc<Self>,
        stream: Stream,
        peer: PeerAddr,
        poller: &Arc<Poller>,
        spawner: &Spawner,
    ) {
        if !self.config.admits(self.conns.len()) {
            self.metrics.refused();
            tracing::debug!(%peer, "connection refused: max_connections reached");
            return;
        }
        let result = match stream {
            Stream::Tcp(s) => poller.register(s).map(Socket::Tcp),
            #[cfg(unix)]
            Stream::Unix(s) => poller.register(s).map(Socket::Unix),
        };
        let socket = match result {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot register connection");
                return;
            }
        };
        let mailbox = self.conns.insert();
        let id = mailbox.id();
        tracing::debug!(%id, %peer, "connection accepted");
        let mut conn = Connection::new(
            Arc::clone(&self.handler),
            Arc::clone(&self.conn_config),
            peer,
            Instant::now(),
        );
        conn.set_handle(ConnHandle::new(id, mailbox.clone()));
        self.metrics.accepted();
        let shared = Arc::clone(self);
        match socket {
            Socket::Tcp(s) => spawner.spawn(ConnTask::new(conn, s, mailbox, shared)),
            #[cfg(unix)]
            Socket::Unix(s) => spawner.spawn(ConnTask::new(conn, s, mailbox, shared)),
        }
        .detach();
    }

    /// A connection's task ended: forget it.
    pub(crate) fn forget(&self, id: ConnId) {
        self.conns.remove(id);
    }
}

/// The open connections' mailboxes, by slab key: the server's [`Registry`] (one slab slot
/// per connection, no second map) and how a stop reaches every task.
pub(crate) struct Conns<O: 'static> {
    slab: Mutex<Table<O>>,
    /// Holds a token after the last connection was removed.
    empty_tx: Sender<()>,
    empty_rx: Receiver<()>,
}

struct Table<O: 'static> {
    mailboxes: Slab<Arc<TaskMailbox<O>>>,
    /// Bumped for every connection, so that a reused slab key makes a new id.
    generation: u32,
}

impl<O: 'static> Default for Conns<O> {
    fn default() -> Self {
        let (empty_tx, empty_rx) = channel::bounded(1);
        Self {
            slab: Mutex::new(Table {
                mailboxes: Slab::new(),
                generation: 0,
            }),
            empty_tx,
            empty_rx,
        }
    }
}

impl<O: Send + 'static> Conns<O> {
    /// A mailbox for a new connection, with its new id (generation << 32 | slab key).
    fn insert(&self) -> Arc<TaskMailbox<O>> {
        let mut table = self.lock();
        table.generation = table.generation.wrapping_add(1);
        let generation = table.generation;
        let entry = table.mailboxes.vacant_entry();
        let id = ConnId((u64::from(generation) << 32) | entry.key() as u64);
        let mailbox = Arc::new(TaskMailbox::new(id));
        entry.insert(Arc::clone(&mailbox));
        mailbox
    }

    fn remove(&self, id: ConnId) {
        let mut table = self.lock();
        let key = key_of(id);
        if table.mailboxes.get(key).is_some_and(|m| m.id() == id) {
            table.mailboxes.remove(key);
        }
        if table.mailboxes.is_empty() {
            // Full means a token is already waiting.
            let _ = self.empty_tx.try_send(());
        }
    }

    /// Sends a stop signal ([`DRAIN`] or [`FORCE`]) to every connection.
    fn signal(&self, how: u8) {
        for mailbox in self.snapshot() {
            mailbox.stop(how);
        }
    }

    /// Resolves once no connection is left.
    async fn drained(&self) {
        // A token may be stale (an earlier moment without connections): look again.
        while !self.lock().mailboxes.is_empty() {
            if self.empty_rx.recv().await.is_err() {
                return;
            }
        }
    }

    fn snapshot(&self) -> Vec<Arc<TaskMailbox<O>>> {
        self.lock()
            .mailboxes
            .iter()
            .map(|(_, m)| Arc::clone(m))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Table<O>> {
        // Every critical section is one slab operation: a panic cannot leave it half-done.
        self.slab.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<O: Send + 'static> Directory<O> for Conns<O> {
    fn len(&self) -> usize {
        self.lock().mailboxes.len()
    }

    fn get(&self, id: ConnId) -> Option<ConnHandle<O>> {
        let table = self.lock();
        let mailbox = table.mailboxes.get(key_of(id)).filter(|m| m.id() == id)?;
        Some(ConnHandle::new(
            id,
            Arc::clone(mailbox) as Arc<dyn Mailbox<O>>,
        ))
    }

    fn for_each(&self, f: &mut dyn FnMut(ConnHandle<O>)) {
        // Not under the lock: `f` may send to the handle.
        for mailbox in self.snapshot() {
            f(ConnHandle::new(mailbox.id(), mailbox));
        }
    }
}

/// The slab key of an id made by [`Conns::insert`].
fn key_of(id: ConnId) -> usize {
    (id.0 & u64::from(u32::MAX)) as usize
}

/// Where tasks go: an executor of the caller's, or smol's global one.
struct Spawner(Option<Arc<Executor<'static>>>);

impl Spawner {
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> Task<()> {
        match &self.0 {
            Some(ex) => ex.spawn(fut),
            None => smol::spawn(fut),
        }
    }
}

/// An accepted socket, registered.
enum Socket {
    Tcp(Polled<mio::net::TcpStream>),
    #[cfg(unix)]
    Unix(Polled<mio::net::UnixStream>),
}

enum Step {
    Stop,
    Job(Job),
    Accepted(io::Result<(Stream, PeerAddr)>),
}

/// A `run_after` / `run_every` request, started as a task by the acceptor.
enum Job {
    After(Duration, Box<dyn FnOnce() + Send>),
    Every(Duration, Box<dyn FnMut() + Send>),
}

impl Job {
    async fn run(self) {
        match self {
            Self::After(delay, f) => {
                Timer::after(delay).await;
                f();
            }
            Self::Every(period, mut f) => {
                let period = period.max(Duration::from_millis(1));
                let mut next = Instant::now() + period;
                loop {
                    Timer::at(next).await;
                    f();
                    // Skip ticks that already passed instead of firing them in a burst.
                    let now = Instant::now();
                    next += period;
                    if next <= now {
                        let behind = now.duration_since(next).as_nanos() / period.as_nanos();
                        next += period * u32::try_from(behind + 1).unwrap_or(u32::MAX);
                    }
                }
            }
        }
    }
}

/// Whether `fut` finished before `deadline`.
async fn within(deadline: Instant, fut: impl Future) -> bool {
    async {
        fut.await;
        true
    }
    .or(async {
        Timer::at(deadline).await;
        false
    })
    .await
}

/// Logs a failed accept and, unless the error concerns only that connection, pauses so that
/// running out of file descriptors does not spin the acceptor.
async fn accept_failed(e: io::Error) {
    tracing::warn!(error = %e, "accept failed");
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) {
        Timer::after(ACCEPT_BACKOFF).await;
    }
}

/// Pause after an accept error that may persist (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long tasks get to finish once told to close at once.
const FORCE_GRACE: Duration = Duration::from_secs(1);
