//! The runtime-native entry point: [`serve`] a listener on the caller's tokio runtime.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gale_core::server::{Directory, Registry, ServerConfig};
use gale_core::{ConnConfig, ConnHandle, ConnId, Connection, Handler, Mailbox, Outgoing, PeerAddr};
use slab::Slab;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, interval_at, sleep, timeout, timeout_at};

use crate::conn::{ConnTask, DRAIN, FORCE, TaskMailbox};
use crate::net::{Listener, Stream};
use crate::stats::Metrics;

/// Serves `listener` with `handler` on the current tokio runtime (current-thread or
/// multi-thread): one task per connection, spawned with [`tokio::spawn`].
///
/// Nothing runs until the returned [`Serve`] is awaited (or its [`run`](Serve::run) future
/// spawned). Take a [`ServeHandle`] first to stop it, count connections or arm timers.
///
/// ```no_run
/// # use bytes::Bytes;
/// # use gale_tokio::gale_core::{codec::Lines, Context, Handler};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Protocol = Lines;
/// #     type State = ();
/// #     fn protocol(&self) -> Lines { Lines::new() }
/// #     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) { let _ = cx.send(line); }
/// # }
/// # async fn example() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// let server = gale_tokio::serve(listener, Echo, Default::default());
/// let handle = server.handle();
/// tokio::spawn(server.run());
/// // … later: stop accepting, flush and close every connection, wait.
/// handle.stop();
/// handle.stopped().await;
/// # Ok(())
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
    jobs: mpsc::UnboundedReceiver<Job>,
}

/// Controls a server started with [`serve`]: cheap to clone, usable from any thread.
pub struct ServeHandle<H: Handler> {
    shared: Arc<Shared<H>>,
}

impl<H: Handler> Serve<H> {
    pub(crate) fn new(listener: Listener, handler: Arc<H>, config: ServerConfig) -> Self {
        let (jobs_tx, jobs) = mpsc::unbounded_channel();
        let conns = Arc::new(Conns::default());
        let shared = Arc::new(Shared {
            handler,
            local_addr: listener.local_addr(),
            conn_config: Arc::new(config.conn().clone()),
            config,
            registry: Registry::from_directory(conns.clone()),
            conns,
            metrics: Metrics::new(),
            run_state: watch::Sender::new(RunState::Running),
            jobs: jobs_tx,
        });
        Self {
            listener,
            shared,
            jobs,
        }
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
            mut jobs,
        } = self;
        let mut run_state = shared.run_state.subscribe();
        let mut timers = JoinSet::new();
        tracing::info!(addr = ?shared.local_addr, "gale-tokio server running");
        while *run_state.borrow_and_update() == RunState::Running {
            tokio::select! {
                _ = run_state.changed() => {}
                Some(job) = jobs.recv() => {
                    timers.spawn(job.run());
                }
                Some(_) = timers.join_next(), if !timers.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => shared.admit(stream, peer),
                    Err(e) => accept_failed(e).await,
                },
            }
        }
        drop(listener);
        timers.abort_all();
        let deadline = match *run_state.borrow() {
            RunState::Draining(at) => at,
            _ => Instant::now(),
        };
        shared.conns.signal(DRAIN);
        if timeout_at(deadline.into(), shared.conns.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.conns.len(),
                "stop timeout: closing the remaining connections"
            );
            shared.run_state.send_replace(RunState::Forced);
            shared.conns.signal(FORCE);
            // Each task closes at once on `FORCE`; this only bounds a wedged handler.
            let _ = timeout(FORCE_GRACE, shared.conns.drained()).await;
        }
        shared.run_state.send_replace(RunState::Stopped);
        tracing::info!(addr = ?shared.local_addr, "gale-tokio server stopped");
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

    /// Calls `f` once, `delay` from now, on a runtime task (never block in it). Dropped if
    /// the server stops first.
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        let _ = self.shared.jobs.send(Job::After(delay, Box::new(f)));
    }

    /// Calls `f` every `period` (first call one period from now) until the server stops.
    /// Ticks missed because the runtime was busy are skipped, not bunched.
    pub fn run_every(&self, period: Duration, f: impl FnMut() + Send + 'static) {
        let _ = self.shared.jobs.send(Job::Every(period, Box::new(f)));
    }

    /// Starts a graceful stop (see [`Serve::run`]) and returns at once; idempotent. Await
    /// [`stopped`](Self::stopped) to know when it is done.
    pub fn stop(&self) {
        let deadline = Instant::now() + self.shared.config.stop_timeout();
        self.shared.run_state.send_if_modified(|state| {
            let running = *state == RunState::Running;
            if running {
                *state = RunState::Draining(deadline);
            }
            running
        });
    }

    /// Resolves once the server has stopped and every connection is closed.
    pub async fn stopped(&self) {
        let mut rx = self.shared.run_state.subscribe();
        let _ = rx.wait_for(|s| *s == RunState::Stopped).await;
    }

    /// Whether the server has stopped.
    pub fn is_stopped(&self) -> bool {
        *self.shared.run_state.borrow() == RunState::Stopped
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

/// Where a server is in its life; the acceptor and `stopped` watch it (connections get
/// [`DRAIN`] and [`FORCE`] through their mailboxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// Stopping gracefully until the deadline.
    Draining(Instant),
    /// The deadline passed: close at once.
    Forced,
    Stopped,
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
    run_state: watch::Sender<RunState>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl<H: Handler> Shared<H> {
    /// Starts a task for an accepted connection, or closes it at once when the server is
    /// full (it never reaches the handler).
    fn admit(self: &Arc<Self>, stream: Stream, peer: PeerAddr) {
        if !self.config.admits(self.conns.len()) {
            self.metrics.refused();
            tracing::debug!(%peer, "connection refused: max_connections reached");
            return;
        }
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
        match stream {
            Stream::Tcp(s) => tokio::spawn(ConnTask::new(conn, s, mailbox, shared)),
            #[cfg(unix)]
            Stream::Unix(s) => tokio::spawn(ConnTask::new(conn, s, mailbox, shared)),
        };
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
    /// Notified when the last connection is removed.
    empty: Notify,
}

struct Table<O: 'static> {
    mailboxes: Slab<Arc<TaskMailbox<O>>>,
    /// Bumped for every connection, so that a reused slab key makes a new id.
    generation: u32,
}

impl<O: 'static> Default for Conns<O> {
    fn default() -> Self {
        Self {
            slab: Mutex::new(Table {
                mailboxes: Slab::new(),
                generation: 0,
            }),
            empty: Notify::new(),
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
            self.empty.notify_waiters();
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
        loop {
            let empty = self.empty.notified();
            tokio::pin!(empty);
            empty.as_mut().enable();
            if self.lock().mailboxes.is_empty() {
                return;
            }
            empty.await;
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

/// A `run_after` / `run_every` request, started as a task by the acceptor.
enum Job {
    After(Duration, Box<dyn FnOnce() + Send>),
    Every(Duration, Box<dyn FnMut() + Send>),
}

impl Job {
    async fn run(self) {
        match self {
            Self::After(delay, f) => {
                sleep(delay).await;
                f();
            }
            Self::Every(period, mut f) => {
                let period = period.max(Duration::from_millis(1));
                let mut ticks = interval_at(tokio::time::Instant::now() + period, period);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
                loop {
                    ticks.tick().await;
                    f();
                }
            }
        }
    }
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
        sleep(ACCEPT_BACKOFF).await;
    }
}

/// Pause after an accept error that may persist (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long tasks get to finish once told to close at once.
const FORCE_GRACE: Duration = Duration::from_secs(1);
