//! The runtime-native entry point: [`serve`] a listener on the caller's tokio runtime.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gale_core::server::{Registry, ServerConfig};
use gale_core::{ConnHandle, ConnId, Connection, Handler, Outgoing, PeerAddr};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, interval_at, sleep, timeout, timeout_at};

use crate::conn::{Live, TaskMailbox, drive};
use crate::net::{Listener, Stream};
use crate::stats::ConnMetrics;

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
        let shared = Arc::new(Shared {
            handler,
            local_addr: listener.local_addr(),
            config,
            registry: Registry::new(),
            next_id: AtomicU64::new(1),
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
        let (wait_tx, mut wait_rx) = mpsc::channel::<()>(1);
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
                    Ok((stream, peer)) => shared.admit(stream, peer, &wait_tx),
                    Err(e) => accept_failed(e).await,
                },
            }
        }
        drop(listener);
        timers.abort_all();
        drop(wait_tx);
        let deadline = match *run_state.borrow() {
            RunState::Draining(at) => at,
            _ => Instant::now(),
        };
        if timeout_at(deadline.into(), wait_rx.recv()).await.is_err() {
            tracing::warn!(
                open = shared.registry.len(),
                "stop timeout: closing the remaining connections"
            );
            shared.run_state.send_replace(RunState::Forced);
            // Each task closes at once on `Forced`; this only bounds a wedged handler.
            let _ = timeout(FORCE_GRACE, wait_rx.recv()).await;
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
        self.shared.registry.len()
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
            .field("connections", &self.shared.registry.len())
            .finish_non_exhaustive()
    }
}

/// Where a server is in its life; connection tasks watch it.
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
    local_addr: Option<SocketAddr>,
    pub(crate) registry: Registry<Outgoing<H>>,
    next_id: AtomicU64,
    run_state: watch::Sender<RunState>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl<H: Handler> Shared<H> {
    /// Starts a task for an accepted connection, or closes it at once when the server is
    /// full (it never reaches the handler).
    fn admit(self: &Arc<Self>, stream: Stream, peer: PeerAddr, wait: &mpsc::Sender<()>) {
        if !self.config.admits(self.registry.len()) {
            ConnMetrics::refused();
            tracing::debug!(%peer, "connection refused: max_connections reached");
            return;
        }
        let id = ConnId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = ConnHandle::new(id, Arc::new(TaskMailbox(tx)));
        self.registry.insert(handle.clone());
        tracing::debug!(%id, %peer, "connection accepted");
        let now = Instant::now();
        let mut conn = Connection::new(
            Arc::clone(&self.handler),
            self.config.conn().clone(),
            peer,
            now,
        );
        conn.set_handle(handle);
        let live = Live {
            shared: Arc::clone(self),
            id,
            metrics: ConnMetrics::accepted(),
            _wait: wait.clone(),
        };
        tokio::spawn(drive(conn, stream, rx, self.run_state.subscribe(), live));
    }
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
