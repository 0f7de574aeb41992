//! [`Intake`]: admission through gale-core's [`TaskQueue`], the journal before the answer,
//! workers with leases, retries from the journal.
//!
//! ```text
//!   submit(body) ─► TaskQueue ─┬─ Started ──────────────► insert (durable) ─► answer 200 ─► Action
//!                              ├─ Waiting ─ slot frees ─┘        │ store down: 503     │
//!                              │          └ --process-max-timeout passes: 503          ▼
//!                              └─ Refused (line full): 503 + Retry-After      mark_done / mark_failed
//!                                                                              (backoff, terminal)
//!   poller, when slots are idle: claim due messages from the journal (retries, and claims a
//!   crashed process left behind once their lease expired) ─► TaskQueue ─► Action
//! ```
//!
//! The answer to a request is given once its message is in the journal, so a 200 survives
//! a crash: on restart, [`Store::recover`] makes this worker's old claims due again, and
//! other workers take them over when their lease expires. Processing is at least once; the
//! [`Action`] makes its effect idempotent.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gale_core::task::{Outcome, Submitted, TaskConfig, TaskEvent, TaskId, TaskQueue};
use tokio::sync::Notify;

use super::action::Action;
use super::sql::duration_ms;
use super::store::{Failure, Inserted, NewMessage, Store, StoreError, StoredMessage};

/// How an [`Intake`] admits and processes messages.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Messages processed at once: GSEAsyncServer's `--work-channel-len`. Default 10.
    pub max_running: NonZeroUsize,
    /// Requests that may wait for a slot; beyond, 503 at once. Default 1024.
    pub max_waiting: usize,
    /// How long a request waits for a slot: `--process-max-timeout`. Default 30 s.
    pub wait_timeout: Duration,
    /// This process's name in the journal's `claimed_by`. Must be unique among live
    /// processes and stable across restarts of the same one (host and port, say).
    pub worker_id: String,
    /// How often idle workers look for due retries and expired claims. Default 1 s.
    pub poll_interval: Duration,
    /// How long a claim lasts without renewal; renewed every third of it while an action
    /// runs. Must match the store's lease. Default 30 s.
    pub lease: Duration,
    /// How long finished (`done`) messages, and with them their idempotency keys, are
    /// kept; `None` keeps them forever. Default 7 days.
    pub retention: Option<Duration>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            max_running: TaskConfig::DEFAULT_MAX_RUNNING,
            max_waiting: TaskConfig::DEFAULT_MAX_WAITING,
            wait_timeout: TaskConfig::DEFAULT_WAIT_TIMEOUT,
            worker_id: "intake".to_owned(),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// The answer to a submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Journaled under `id`; it will be processed.
    Accepted {
        /// The journal id.
        id: i64,
    },
    /// The idempotency key was accepted before, with the same body, as message `id`.
    Duplicate {
        /// The first message's id.
        id: i64,
    },
    /// The idempotency key was accepted before with another body.
    KeyReused {
        /// The first message's id.
        id: i64,
    },
    /// Every slot is busy and the waiting line is full.
    Busy,
    /// The message waited for a slot longer than the wait timeout.
    TimedOut,
    /// The journal could not store it.
    Unavailable(String),
    /// The intake is shutting down.
    Stopping,
}

/// Receives the [`Answer`] for one submission, on any thread, exactly once.
pub type Responder = Box<dyn FnOnce(Answer) + Send>;

/// Admission, journal and workers; cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

impl Intake {
    /// Recovers this worker's claims from an earlier run, then starts the deadline timer
    /// and the journal poller on `runtime`.
    pub async fn start(
        runtime: tokio::runtime::Handle,
        store: Arc<dyn Store>,
        action: Arc<dyn Action>,
        config: IntakeConfig,
    ) -> Result<Self, StoreError> {
        let recovered = store.recover(&config.worker_id, epoch_ms()).await?;
        if recovered > 0 {
            tracing::info!(recovered, worker = %config.worker_id, "claims of an earlier run are due again");
        }
        let mut tasks = TaskConfig::default();
        tasks
            .max_running(config.max_running)
            .max_waiting(config.max_waiting)
            .wait_timeout(config.wait_timeout);
        let inner = Arc::new(Inner {
            store,
            action,
            runtime,
            state: Mutex::new(State {
                queue: TaskQueue::new(tasks),
                accepting: true,
            }),
            deadlines: Notify::new(),
            changed: Notify::new(),
            stopping: Notify::new(),
            config,
        });
        let intake = Self { inner };
        intake.inner.runtime.spawn(intake.clone().run_deadlines());
        intake.inner.runtime.spawn(intake.clone().run_poller());
        Ok(intake)
    }

    /// Offers a message; `reply` gets the answer once it is journaled, refused or timed
    /// out. Never blocks.
    pub fn submit(&self, body: Bytes, idempotency_key: Option<String>, reply: Responder) {
        let job = Job::Fresh(Fresh {
            body,
            key: idempotency_key,
            reply,
        });
        let mut st = self.inner.lock();
        if !st.accepting {
            drop(st);
            self.refuse(job, Answer::Stopping);
            return;
        }
        let submitted = st.queue.submit(job, Instant::now());
        let events = drain(&mut st);
        drop(st);
        match submitted {
            Submitted::Refused(job) => self.refuse(job, Answer::Busy),
            Submitted::Waiting { .. } => self.inner.deadlines.notify_one(),
            _ => {}
        }
        self.dispatch(events);
    }

    /// Stops accepting at once (new submissions get [`Answer::Stopping`]) and stops
    /// claiming from the journal; the returned future waits up to `grace` for running and
    /// waiting messages to finish and says whether everything did. Requests still waiting
    /// for a slot when `grace` is over are answered [`Answer::Stopping`] (they were never
    /// journaled); messages still running are recovered on the next start.
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = bool> + Send + 'static {
        self.inner.lock().accepting = false;
        self.inner.stopping.notify_waiters();
        self.inner.deadlines.notify_one();
        let intake = self.clone();
        async move {
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                let changed = intake.inner.changed.notified();
                if intake.inner.lock().queue.is_idle() {
                    return true;
                }
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    let waiting = intake.inner.lock().queue.cancel_waiting();
                    if !waiting.is_empty() {
                        tracing::warn!(
                            waiting = waiting.len(),
                            "shutdown grace over: requests still waiting for a worker are answered 503"
                        );
                    }
                    for (_, job) in waiting {
                        intake.refuse(job, Answer::Stopping);
                    }
                    return intake.inner.lock().queue.is_idle();
                }
            }
        }
    }

    /// Tasks running and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let stats = self.inner.lock().queue.stats();
        (stats.running, stats.waiting)
    }

    /// The journal.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Runs what the queue handed out: spawns `Run`s, answers `Expired`s.
    fn dispatch(&self, events: Vec<TaskEvent<Job>>) {
        for event in events {
            match event {
                TaskEvent::Run { id, task } => {
                    self.inner.runtime.spawn(self.clone().run(id, task));
                }
                TaskEvent::Expired { task, .. } => self.refuse(task, Answer::TimedOut),
                _ => {}
            }
        }
    }

    async fn run(self, id: TaskId, job: Job) {
        let outcome = match job {
            Job::Fresh(fresh) => self.run_fresh(id, fresh).await,
            Job::Stored(msg) => self.process(id, msg).await,
        };
        let mut st = self.inner.lock();
        if let Err(e) = st.queue.handle_task_done(id, outcome, Instant::now()) {
            tracing::error!(task = id.as_u64(), error = %e, "task queue refused a report");
        }
        let events = drain(&mut st);
        drop(st);
        self.dispatch(events);
        self.inner.changed.notify_waiters();
    }

    async fn run_fresh(&self, id: TaskId, fresh: Fresh) -> Outcome {
        let new = NewMessage {
            idempotency_key: fresh.key.as_deref(),
            body: &fresh.body,
            worker: &self.inner.config.worker_id,
            now_ms: epoch_ms(),
        };
        match self.inner.store.insert(new).await {
            Ok(Inserted::New(msg)) => {
                metrics::counter!("intake_accepted_total").increment(1);
                tracing::info!(task = id.as_u64(), message_id = msg.id, "message accepted");
                (fresh.reply)(Answer::Accepted { id: msg.id });
                self.process(id, msg).await
            }
            Ok(Inserted::Duplicate {
                id: first,
                same_body,
                ..
            }) => {
                metrics::counter!("intake_duplicates_total").increment(1);
                tracing::info!(
                    task = id.as_u64(),
                    message_id = first,
                    same_body,
                    "idempotency key seen before"
                );
                (fresh.reply)(if same_body {
                    Answer::Duplicate { id: first }
                } else {
                    Answer::KeyReused { id: first }
                });
                Outcome::Done
            }
            Err(e) => {
                metrics::counter!("intake_refused_total", "reason" => "store").increment(1);
                tracing::error!(task = id.as_u64(), error = %e, "journal refused a message");
                (fresh.reply)(Answer::Unavailable(e.to_string()));
                Outcome::Failed
            }
        }
    }

    /// Runs the action on a claimed message, renewing the lease, and records the outcome.
    async fn process(&self, id: TaskId, msg: StoredMessage) -> Outcome {
        let store = &self.inner.store;
        let renew_every = (self.inner.config.lease / 3).max(Duration::from_millis(10));
        let action = self.inner.action.process(&msg);
        tokio::pin!(action);
        let result = loop {
            tokio::select! {
                result = &mut action => break result,
                () = tokio::time::sleep(renew_every) => {
                    if let Err(e) = store.renew(&msg, epoch_ms()).await {
                        tracing::warn!(task = id.as_u64(), message_id = msg.id, error = %e, "lease renewal failed");
                        if matches!(e, StoreError::LeaseLost { .. }) {
                            // Another worker owns it now: stop, it will finish the job.
                            return Outcome::Failed;
                        }
                    }
                }
            }
        };
        let now = epoch_ms();
        let attempt = msg.attempts;
        match result {
            Ok(()) => match store.mark_done(&msg, now).await {
                Ok(()) => {
                    metrics::counter!("intake_processed_total", "outcome" => "done").increment(1);
                    tracing::info!(
                        task = id.as_u64(),
                        message_id = msg.id,
                        attempt,
                        outcome = "done",
                        "message processed"
                    );
                    Outcome::Done
                }
                Err(e) => {
                    tracing::warn!(task = id.as_u64(), message_id = msg.id, attempt, error = %e, "processed, but could not mark it done: it will run again");
                    Outcome::Failed
                }
            },
            Err(error) => {
                match store.mark_failed(&msg, &error, now).await {
                    Ok(Failure::Retry { at }) => {
                        metrics::counter!("intake_processed_total", "outcome" => "retry")
                            .increment(1);
                        tracing::warn!(task = id.as_u64(), message_id = msg.id, attempt, outcome = "retry", retry_in_ms = at - now, %error, "attempt failed");
                    }
                    Ok(Failure::Terminal) => {
                        metrics::counter!("intake_processed_total", "outcome" => "failed")
                            .increment(1);
                        tracing::error!(task = id.as_u64(), message_id = msg.id, attempt, outcome = "failed", %error, "message failed for good");
                    }
                    Err(e) => {
                        tracing::warn!(task = id.as_u64(), message_id = msg.id, attempt, error = %e, "could not record a failed attempt; its lease will expire");
                    }
                }
                Outcome::Failed
            }
        }
    }

    /// Expires waiters at their deadline.
    async fn run_deadlines(self) {
        loop {
            let woken = self.inner.deadlines.notified();
            let (deadline, accepting) = {
                let st = self.inner.lock();
                (st.queue.poll_timeout(), st.accepting)
            };
            if !accepting && self.inner.lock().queue.is_idle() {
                return;
            }
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = woken => continue,
                    }
                }
                None => woken.await,
            }
            let mut st = self.inner.lock();
            st.queue.handle_timeout(Instant::now());
            let events = drain(&mut st);
            drop(st);
            self.dispatch(events);
        }
    }

    /// Feeds idle slots with due messages from the journal, purges old finished ones, and
    /// publishes the journal's gauges.
    async fn run_poller(self) {
        let worker = self.inner.config.worker_id.clone();
        let mut last_purge: Option<Instant> = None;
        loop {
            let stopped = self.inner.stopping.notified();
            let free = {
                let st = self.inner.lock();
                if !st.accepting {
                    return;
                }
                let stats = st.queue.stats();
                if stats.waiting > 0 {
                    0
                } else {
                    self.inner
                        .config
                        .max_running
                        .get()
                        .saturating_sub(stats.running)
                }
            };
            if free > 0 {
                match self.inner.store.claim(&worker, free, epoch_ms()).await {
                    Ok(claimed) => {
                        for msg in claimed {
                            self.submit_stored(msg);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming due messages failed"),
                }
            }
            if let Some(retention) = self.inner.config.retention
                && last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY)
            {
                last_purge = Some(Instant::now());
                let before = epoch_ms() - duration_ms(retention);
                match self.inner.store.purge(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "finished messages past retention deleted"),
                    Err(e) => tracing::warn!(error = %e, "purging finished messages failed"),
                }
            }
            if let Ok(stats) = self.inner.store.stats().await {
                metrics::gauge!("intake_store_pending").set(stats.pending as f64);
                metrics::gauge!("intake_store_claimed").set(stats.claimed as f64);
                metrics::gauge!("intake_store_failed").set(stats.failed as f64);
                let age = stats
                    .oldest_open_created_at
                    .map_or(0, |t| (epoch_ms() - t).max(0));
                metrics::gauge!("intake_store_oldest_open_seconds").set(age as f64 / 1000.0);
            }
            tokio::select! {
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
                () = stopped => {}
            }
        }
    }

    /// Answers a job that will not run: a fresh request gets `answer`, a claimed message
    /// goes back to the journal.
    fn refuse(&self, job: Job, answer: Answer) {
        match job {
            Job::Fresh(fresh) => {
                let reason = match &answer {
                    Answer::Busy => "busy",
                    Answer::TimedOut => "timeout",
                    _ => "stopping",
                };
                metrics::counter!("intake_refused_total", "reason" => reason).increment(1);
                (fresh.reply)(answer);
            }
            Job::Stored(msg) => {
                let store = Arc::clone(&self.inner.store);
                self.inner.runtime.spawn(async move {
                    if let Err(e) = store.release(&msg, epoch_ms()).await {
                        tracing::warn!(message_id = msg.id, error = %e, "could not give a claimed message back; its lease will expire");
                    }
                });
            }
        }
    }

    /// A claimed message from the journal takes a slot; it may not wait longer than a
    /// third of its lease, and is given back if it cannot run.
    fn submit_stored(&self, msg: StoredMessage) {
        let now = Instant::now();
        let mut st = self.inner.lock();
        let deadline = now + self.inner.config.lease / 3;
        let submitted = st
            .queue
            .submit_with_deadline(Job::Stored(msg), deadline, now);
        let events = drain(&mut st);
        drop(st);
        if let Submitted::Refused(job) = submitted {
            self.refuse(job, Answer::Busy);
        }
        self.dispatch(events);
    }
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("worker_id", &self.inner.config.worker_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn Store>,
    action: Arc<dyn Action>,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    /// Wakes the deadline timer: a waiter arrived, or the intake stops.
    deadlines: Notify,
    /// A task finished (shutdown waits on it).
    changed: Notify,
    /// The intake stops (wakes the poller).
    stopping: Notify,
    config: IntakeConfig,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct State {
    queue: TaskQueue<Job>,
    accepting: bool,
}

/// A unit of work in the task queue.
enum Job {
    /// A request not yet journaled; its answer is owed.
    Fresh(Fresh),
    /// A message claimed from the journal (a retry, or recovered).
    Stored(StoredMessage),
}

struct Fresh {
    body: Bytes,
    key: Option<String>,
    reply: Responder,
}

/// Drains the queue's events and refreshes its gauges.
fn drain(st: &mut State) -> Vec<TaskEvent<Job>> {
    let mut events = Vec::new();
    while let Some(event) = st.queue.poll_event() {
        events.push(event);
    }
    let stats = st.queue.stats();
    metrics::gauge!("intake_tasks_running").set(stats.running as f64);
    metrics::gauge!("intake_tasks_waiting").set(stats.waiting as f64);
    let oldest = st
        .queue
        .oldest_waiting_since()
        .map_or(0.0, |since| since.elapsed().as_secs_f64());
    metrics::gauge!("intake_oldest_waiting_seconds").set(oldest);
    events
}

/// Milliseconds since the Unix epoch, the journal's clock.
pub fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ms)
}

/// How often the poller purges finished messages past retention.
const PURGE_EVERY: Duration = Duration::from_secs(60);
