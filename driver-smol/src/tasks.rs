//! [`TaskPool`]: long work off the connection tasks, on smol's blocking pool or as tasks.

use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};
use std::time::Instant;

use gale_core::task::{
    AsyncWork, CatchPanic, Dispatcher, Submitted, TaskConfig, TaskId, TaskStats, Work, catch_panic,
};
use smol::channel::{self, Receiver, Sender, TrySendError};
use smol::future::FutureExt as _;
use smol::{Executor, Timer};

/// Runs work for handlers, admitted by gale-core's
/// [`TaskQueue`](gale_core::task::TaskQueue): at most `max_running` at once, at most
/// `max_waiting` waiting (FIFO), each waiting no longer than `wait_timeout` (see
/// [`TaskConfig`]). Blocking work ([`submit`](Self::submit)) runs on smol's blocking pool
/// ([`smol::unblock`]), `async` work ([`submit_async`](Self::submit_async)) as a task on the
/// pool's [`Executor`].
///
/// A handler submits work that replies through a [`ConnHandle`](gale_core::ConnHandle) when
/// it is done, and says what to answer if the task expires; a refused task is answered at
/// once. Every admitted task ends exactly once: its work runs (a panic or an `Err` counts as
/// failed), or its `on_expired` is called.
///
/// Cheap to clone; when the last clone is dropped, the admitted tasks still run or expire,
/// then the pool's timer task (and, for [`new`](Self::new), its thread) ends.
///
/// ```no_run
/// use bytes::Bytes;
/// use gale_core::{Context, Handler, codec::Lines, task::TaskConfig};
///
/// struct Slow(gale_smol::TaskPool);
///
/// impl Handler for Slow {
///     type Protocol = Lines;
///     type State = ();
///     fn protocol(&self) -> Lines {
///         Lines::new()
///     }
///     fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
///         let Some(done) = cx.handle() else { return };
///         let expired = done.clone();
///         let submitted = self.0.submit(
///             move || {
///                 // … long work …
///                 done.send(line).map_err(|e| e.to_string())
///             },
///             move || {
///                 let _ = expired.send(Bytes::from_static(b"timeout"));
///             },
///         );
///         if submitted.is_refused() {
///             let _ = cx.send(Bytes::from_static(b"busy"));
///         }
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let pool = gale_smol::TaskPool::new(TaskConfig::default())?;
/// let server = gale_smol::Server::new(Slow(pool)).bind("127.0.0.1:9000")?.start()?;
/// server.wait();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TaskPool {
    shared: Arc<Shared>,
}

impl TaskPool {
    /// Starts a pool with an executor of its own, run by one thread, `gale-smol-task-timer`,
    /// which runs the timer and the `async` work; blocking work runs on smol's blocking pool.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn new(config: TaskConfig) -> io::Result<Self> {
        let executor = Arc::new(Executor::new());
        let (pool, timer) = Self::build(config, Arc::clone(&executor));
        std::thread::Builder::new()
            .name("gale-smol-task-timer".into())
            .spawn(move || smol::block_on(executor.run(timer)))?;
        Ok(pool)
    }

    /// Starts a pool on an executor you own, which runs its timer task and the `async` work
    /// while something runs the executor.
    pub fn with_executor(config: TaskConfig, executor: Arc<Executor<'static>>) -> Self {
        let (pool, timer) = Self::build(config, Arc::clone(&executor));
        executor.spawn(timer).detach();
        pool
    }

    /// Offers blocking `work`, returning at once: it starts now on the blocking pool
    /// ([`Submitted::Started`]), waits for a slot ([`Submitted::Waiting`]; if its deadline
    /// passes first, `on_expired` is called instead), or is refused because the waiting line
    /// is full ([`Submitted::Refused`]: neither closure runs; answer "busy" yourself).
    /// `work` returning `Err` or panicking counts as failed. `on_expired` runs on an
    /// executor or worker thread: keep it short.
    pub fn submit(
        &self,
        work: impl FnOnce() -> Result<(), String> + Send + 'static,
        on_expired: impl FnOnce() + Send + 'static,
    ) -> Submitted<()> {
        self.offer(Job::Blocking(Box::new(work)), Box::new(on_expired))
    }

    /// Like [`submit`](Self::submit), for `async` work: it runs as a task on the pool's
    /// executor once it has a slot.
    pub fn submit_async(
        &self,
        work: impl Future<Output = Result<(), String>> + Send + 'static,
        on_expired: impl FnOnce() + Send + 'static,
    ) -> Submitted<()> {
        self.offer(Job::Async(Box::pin(work)), Box::new(on_expired))
    }

    /// Tasks running and waiting now, and counters since the pool started.
    pub fn stats(&self) -> TaskStats {
        self.shared.dispatcher.stats()
    }

    /// The limits the pool was started with.
    pub fn config(&self) -> &TaskConfig {
        self.shared.dispatcher.config()
    }

    fn build(
        config: TaskConfig,
        executor: Arc<Executor<'static>>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (kick, kicks) = channel::bounded(1);
        let shared = Arc::new(Shared {
            dispatcher: Dispatcher::new(config),
            executor,
            kick,
        });
        let timer = expire_waiters(Arc::downgrade(&shared), kicks);
        (Self { shared }, timer)
    }

    fn offer(&self, job: Job, on_expired: Box<dyn FnOnce() + Send>) -> Submitted<()> {
        let submitted =
            self.shared
                .dispatcher
                .submit(job, on_expired, Instant::now(), |id, job| {
                    self.shared.start(id, job);
                });
        if matches!(submitted, Submitted::Waiting { .. }) {
            self.shared.kick();
        }
        submitted
    }
}

impl std::fmt::Debug for TaskPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TaskPool")
            .field(&self.shared.dispatcher)
            .finish()
    }
}

/// Work of either kind.
enum Job {
    Blocking(Work),
    Async(AsyncWork),
}

/// What the pool's clones, its running tasks and (weakly) its timer share.
struct Shared {
    dispatcher: Dispatcher<Job>,
    executor: Arc<Executor<'static>>,
    /// Wakes the timer: a new deadline. Dropped with `Shared`, which ends the timer.
    kick: Sender<()>,
}

impl Shared {
    /// Spawns a task the dispatcher started (called with the dispatcher locked).
    fn start(self: &Arc<Self>, id: TaskId, job: Job) {
        let shared = Arc::clone(self);
        match job {
            Job::Blocking(work) => {
                smol::unblock(move || shared.finish(id, catch_panic(work))).detach();
            }
            Job::Async(work) => {
                self.executor
                    .spawn(async move { shared.finish(id, CatchPanic::new(work).await) })
                    .detach();
            }
        }
    }

    /// Reports a task's end; the next waiter, if any, takes its slot.
    fn finish(self: &Arc<Self>, id: TaskId, result: Result<(), String>) {
        if let Err(error) = &result {
            tracing::debug!(task = id.as_u64(), %error, "task failed");
        }
        let reported =
            self.dispatcher
                .handle_task_done(id, result.into(), Instant::now(), |id, job| {
                    self.start(id, job);
                });
        if let Err(e) = reported {
            tracing::error!(task = id.as_u64(), error = %e, "task pool refused a report");
        }
    }

    fn kick(&self) {
        match self.kick.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Closed(())) => tracing::error!("the task pool's timer is gone"),
        }
    }
}

/// The timer task: sleeps until the next wait deadline (or a kick), expires waiters, and
/// ends when the pool is gone.
async fn expire_waiters(shared: Weak<Shared>, kicks: Receiver<()>) {
    loop {
        let Some(deadline) = shared.upgrade().map(|s| s.dispatcher.poll_timeout()) else {
            return;
        };
        let kicked = match deadline {
            Some(at) => {
                let kick = async { Some(kicks.recv().await) };
                kick.or(async {
                    Timer::at(at).await;
                    None
                })
                .await
            }
            None => Some(kicks.recv().await),
        };
        match kicked {
            Some(Ok(())) => continue,
            Some(Err(_)) => return,
            None => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.dispatcher.handle_timeout(Instant::now());
    }
}
