//! [`TaskPool`]: long work off the event loops, on a fixed pool of worker threads.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::Instant;

use gale_core::task::{Dispatcher, Submitted, TaskConfig, TaskId, TaskStats, Work, catch_panic};

/// Runs blocking work for handlers, admitted by gale-core's
/// [`TaskQueue`](gale_core::task::TaskQueue): at most `max_running` at once on as many
/// worker threads, at most `max_waiting` waiting (FIFO), each waiting no longer than
/// `wait_timeout` (see [`TaskConfig`]).
///
/// A handler submits work that replies through a [`ConnHandle`](gale_core::ConnHandle) when
/// it is done, and says what to answer if the task expires; a refused task is answered at
/// once. Every admitted task ends exactly once: its work runs (a panic or an `Err` counts as
/// failed), or its `on_expired` is called.
///
/// Threads: `gale-mio-task-N` workers, one per slot, and `gale-mio-task-timer`, which
/// expires waiters at their deadline. Cheap to clone; when the last clone is dropped, the
/// admitted tasks still run or expire, then the threads exit.
///
/// ```no_run
/// use bytes::Bytes;
/// use gale_core::{Context, Handler, codec::Lines, task::TaskConfig};
///
/// struct Slow(gale_mio::TaskPool);
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
/// let pool = gale_mio::TaskPool::new(TaskConfig::default())?;
/// let server = gale_mio::Server::new(Slow(pool)).bind("127.0.0.1:9000")?.start()?;
/// server.wait();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TaskPool {
    shared: Arc<Shared>,
}

impl TaskPool {
    /// Starts a pool: `max_running` worker threads and a timer thread.
    ///
    /// # Errors
    ///
    /// A thread could not be spawned (the ones already started exit again).
    pub fn new(config: TaskConfig) -> io::Result<Self> {
        let (kick, kicks) = mpsc::sync_channel(1);
        let workers = Arc::new(Workers::default());
        let pool = Self {
            shared: Arc::new(Shared {
                dispatcher: Dispatcher::new(config),
                workers: Arc::clone(&workers),
                kick,
            }),
        };
        for i in 0..pool.shared.dispatcher.max_running().get() {
            let workers = Arc::clone(&workers);
            thread::Builder::new()
                .name(format!("gale-mio-task-{i}"))
                .spawn(move || workers.run())?;
        }
        let shared = Arc::downgrade(&pool.shared);
        thread::Builder::new()
            .name("gale-mio-task-timer".into())
            .spawn(move || expire_waiters(&shared, &kicks))?;
        Ok(pool)
    }

    /// Offers `work`, returning at once: it runs now on a free worker
    /// ([`Submitted::Started`]), waits for one ([`Submitted::Waiting`]; if its deadline
    /// passes first, `on_expired` is called instead, on the timer or a worker thread), or is
    /// refused because the waiting line is full ([`Submitted::Refused`]: neither closure
    /// runs; answer "busy" yourself). `work` returning `Err` or panicking counts as failed.
    pub fn submit(
        &self,
        work: impl FnOnce() -> Result<(), String> + Send + 'static,
        on_expired: impl FnOnce() + Send + 'static,
    ) -> Submitted<()> {
        let submitted = self.shared.dispatcher.submit(
            Box::new(work),
            Box::new(on_expired),
            Instant::now(),
            |id, work| self.shared.start(id, work),
        );
        if matches!(submitted, Submitted::Waiting { .. }) {
            self.shared.kick();
        }
        submitted
    }

    /// Tasks running and waiting now, and counters since the pool started.
    pub fn stats(&self) -> TaskStats {
        self.shared.dispatcher.stats()
    }

    /// The limits the pool was started with.
    pub fn config(&self) -> &TaskConfig {
        self.shared.dispatcher.config()
    }
}

impl std::fmt::Debug for TaskPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TaskPool")
            .field(&self.shared.dispatcher)
            .finish()
    }
}

/// What the pool's clones, its running tasks and (weakly) its timer share.
struct Shared {
    dispatcher: Dispatcher<Work>,
    workers: Arc<Workers>,
    /// Wakes the timer: a new deadline. Dropped with `Shared`, which ends the timer.
    kick: SyncSender<()>,
}

impl Shared {
    /// Hands a task the dispatcher started to a worker (called with the dispatcher locked).
    fn start(self: &Arc<Self>, id: TaskId, work: Work) {
        self.workers.push(Run {
            id,
            work,
            shared: Arc::clone(self),
        });
    }

    fn kick(&self) {
        match self.kick.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::error!("the task pool's timer thread is gone");
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.workers.close();
    }
}

/// A task to run, with the pool to report to.
struct Run {
    id: TaskId,
    work: Work,
    shared: Arc<Shared>,
}

impl Run {
    /// Runs the task and reports it; returns the task that took its slot, if any.
    fn execute(self) -> Option<Self> {
        let Self { id, work, shared } = self;
        let result = catch_panic(work);
        if let Err(error) = &result {
            tracing::debug!(task = id.as_u64(), %error, "task failed");
        }
        let mut next = None;
        let reported =
            shared
                .dispatcher
                .handle_task_done(id, result.into(), Instant::now(), |id, work| {
                    let run = Self {
                        id,
                        work,
                        shared: Arc::clone(&shared),
                    };
                    // One slot freed, so one task starts; run it on this thread.
                    match next {
                        None => next = Some(run),
                        Some(_) => shared.workers.push(run),
                    }
                });
        if let Err(e) = reported {
            tracing::error!(task = id.as_u64(), error = %e, "task pool refused a report");
        }
        next
    }
}

/// The worker threads' queue of tasks to run.
#[derive(Default)]
struct Workers {
    state: Mutex<WorkerState>,
    ready: Condvar,
}

#[derive(Default)]
struct WorkerState {
    runs: VecDeque<Run>,
    /// The pool is gone: exit once `runs` is empty.
    closed: bool,
}

impl Workers {
    fn push(&self, run: Run) {
        self.lock().runs.push_back(run);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// A worker thread: runs tasks until the pool is gone.
    fn run(&self) {
        while let Some(run) = self.next() {
            let mut next = Some(run);
            while let Some(run) = next {
                next = run.execute();
            }
        }
    }

    /// The next task, or `None` once the pool is closed and nothing is left to run.
    fn next(&self) -> Option<Run> {
        let mut state = self.lock();
        loop {
            if let Some(run) = state.runs.pop_front() {
                return Some(run);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, WorkerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The timer thread: sleeps until the next wait deadline (or a kick), expires waiters, and
/// exits when the pool is gone.
fn expire_waiters(shared: &Weak<Shared>, kicks: &Receiver<()>) {
    loop {
        let Some(deadline) = shared.upgrade().map(|s| s.dispatcher.poll_timeout()) else {
            return;
        };
        let woken = match deadline {
            Some(at) => kicks.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => kicks.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match woken {
            Ok(()) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.dispatcher.handle_timeout(Instant::now());
    }
}
