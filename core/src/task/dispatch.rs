//! [`Dispatcher`]: a [`TaskQueue`] of work items shared between threads, the part of every
//! driver's task pool that does no I/O.

use std::any::Any;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use super::{Outcome, Submitted, TaskConfig, TaskError, TaskEvent, TaskId, TaskQueue, TaskStats};

/// Blocking work for a task pool: it does its job and replies itself (typically through a
/// [`ConnHandle`](crate::ConnHandle)); `Err` counts as [`Outcome::Failed`].
pub type Work = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Asynchronous work for a task pool, the `async` counterpart of [`Work`].
pub type AsyncWork = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Called instead of the work when a task waited past its deadline: answer "timeout" here.
pub type OnExpired = Box<dyn FnOnce() + Send>;

/// A [`TaskQueue`] behind a lock, holding work of type `W` (such as [`Work`]) together with
/// what to call if it expires: the shared half of a driver's task pool. The driver supplies
/// the clock, the timer and the executor; the dispatcher does the bookkeeping.
///
/// Every input takes `now` and a `start` callback, which gets each task that may run now, in
/// FIFO order. `start` is called **with the lock held**, so it only hands the work over (push
/// it to a worker, spawn it) and must not call back into the dispatcher. `on_expired`
/// callbacks of waiters that expired run after the lock is released, on the caller's thread;
/// a panic in one is caught (the panic hook has reported it) so that a timer thread survives.
///
/// The driver's part of the contract:
///
/// - run what `start` hands over, then report it with [`handle_task_done`](Self::handle_task_done)
///   (a panic is a failure: [`catch_panic`], [`CatchPanic`]);
/// - sleep until [`poll_timeout`](Self::poll_timeout), then call
///   [`handle_timeout`](Self::handle_timeout); wake up early when [`submit`](Self::submit)
///   returns [`Submitted::Waiting`], as the deadline may be new.
///
/// ```
/// use std::time::Instant;
/// use gale_core::task::{Dispatcher, Submitted, TaskConfig, Work, catch_panic};
///
/// let pool: Dispatcher<Work> = Dispatcher::new(TaskConfig::default());
/// let mut ready = Vec::new();
/// let submitted = pool.submit(
///     Box::new(|| Ok(())),
///     Box::new(|| println!("timeout")),
///     Instant::now(),
///     |id, work| ready.push((id, work)),
/// );
/// assert!(matches!(submitted, Submitted::Started(_)));
/// // A worker thread would do this:
/// while let Some((id, work)) = ready.pop() {
///     let outcome = catch_panic(work).into();
///     pool.handle_task_done(id, outcome, Instant::now(), |id, work| ready.push((id, work)))
///         .expect("the id came from start");
/// }
/// assert_eq!(pool.stats().done, 1);
/// ```
pub struct Dispatcher<W> {
    config: TaskConfig,
    queue: Mutex<TaskQueue<Entry<W>>>,
}

impl<W> Dispatcher<W> {
    /// An empty dispatcher with these limits.
    #[must_use]
    pub fn new(config: TaskConfig) -> Self {
        Self {
            queue: Mutex::new(TaskQueue::new(config.clone())),
            config,
        }
    }

    /// The limits it was built with.
    #[must_use]
    pub const fn config(&self) -> &TaskConfig {
        &self.config
    }

    /// How many tasks may run at once: the number of workers a thread pool needs.
    #[must_use]
    pub const fn max_running(&self) -> NonZeroUsize {
        self.config.max_running
    }

    /// Offers `work`; see [`TaskQueue::submit`]. If it may start now, `start` gets it before
    /// this returns. A refused task is dropped: neither `work` nor `on_expired` runs, and the
    /// caller answers "busy" itself.
    pub fn submit(
        &self,
        work: W,
        on_expired: OnExpired,
        now: Instant,
        start: impl FnMut(TaskId, W),
    ) -> Submitted<()> {
        let entry = Entry { work, on_expired };
        let mut queue = self.lock();
        let submitted = queue.submit(entry, now);
        let expired = drain(&mut queue, start);
        drop(queue);
        call_expired(expired);
        match submitted {
            Submitted::Started(id) => Submitted::Started(id),
            Submitted::Waiting { id, deadline } => Submitted::Waiting { id, deadline },
            Submitted::Refused(_) => Submitted::Refused(()),
        }
    }

    /// Reports the end of a task `start` handed over; the freed slot goes to the next waiter,
    /// which `start` gets. See [`TaskQueue::handle_task_done`].
    ///
    /// # Errors
    ///
    /// As [`TaskQueue::handle_task_done`]: an id not handed over by `start`, or reported twice.
    pub fn handle_task_done(
        &self,
        id: TaskId,
        outcome: Outcome,
        now: Instant,
        start: impl FnMut(TaskId, W),
    ) -> Result<(), TaskError> {
        let mut queue = self.lock();
        queue.handle_task_done(id, outcome, now)?;
        let expired = drain(&mut queue, start);
        drop(queue);
        call_expired(expired);
        Ok(())
    }

    /// Expires the waiters whose deadline is at or before `now` and calls their
    /// `on_expired`. Early or extra calls do nothing.
    pub fn handle_timeout(&self, now: Instant) {
        let mut queue = self.lock();
        queue.handle_timeout(now);
        // Expiring never frees a slot, so nothing starts here.
        let expired = drain(&mut queue, |_, _| {});
        drop(queue);
        call_expired(expired);
    }

    /// The next wait deadline: sleep until then, then call
    /// [`handle_timeout`](Self::handle_timeout).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().poll_timeout()
    }

    /// The queue's gauges and counters ([`TaskQueue::stats`]).
    #[must_use]
    pub fn stats(&self) -> TaskStats {
        self.lock().stats()
    }

    /// Whether nothing runs or waits.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.lock().is_idle()
    }

    fn lock(&self) -> MutexGuard<'_, TaskQueue<Entry<W>>> {
        // A panic inside the lock can only come from a driver's `start`; the queue itself is
        // consistent between calls.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W> std::fmt::Debug for Dispatcher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Dispatcher");
        d.field("config", &self.config);
        // `try_lock`: formatting from inside a `start` callback must not deadlock.
        match self.queue.try_lock() {
            Ok(queue) => d.field("stats", &queue.stats()).finish(),
            Err(_) => d.finish_non_exhaustive(),
        }
    }
}

impl From<Result<(), String>> for Outcome {
    /// `Ok` is [`Outcome::Done`], `Err` is [`Outcome::Failed`].
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Self::Done,
            Err(_) => Self::Failed,
        }
    }
}

/// Runs blocking work, turning a panic into `Err("panicked: <message>")`.
pub fn catch_panic(work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| Err(panic_message(&*payload)))
}

/// Awaits [`AsyncWork`], turning a panic while it is polled into `Err("panicked: <message>")`:
/// the `async` counterpart of [`catch_panic`].
#[must_use = "futures do nothing unless awaited"]
pub struct CatchPanic(Option<AsyncWork>);

impl CatchPanic {
    /// Wraps `work`.
    pub fn new(work: AsyncWork) -> Self {
        Self(Some(work))
    }
}

impl Future for CatchPanic {
    type Output = Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(work) = self.0.as_mut() else {
            return Poll::Ready(Err("polled after it panicked".to_owned()));
        };
        match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // The future is in an unknown state: never poll it again.
                self.0 = None;
                Poll::Ready(Err(panic_message(&*payload)))
            }
        }
    }
}

impl std::fmt::Debug for CatchPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchPanic").finish_non_exhaustive()
    }
}

/// A task in the queue: its work and what to call if it expires.
struct Entry<W> {
    work: W,
    on_expired: OnExpired,
}

/// Drains the queue's events: runs go to `start` (under the lock), expired tasks' callbacks
/// are returned, to be called once the lock is released.
fn drain<W>(queue: &mut TaskQueue<Entry<W>>, mut start: impl FnMut(TaskId, W)) -> Vec<OnExpired> {
    let mut expired = Vec::new();
    while let Some(event) = queue.poll_event() {
        match event {
            TaskEvent::Run { id, task } => start(id, task.work),
            TaskEvent::Expired { task, .. } => expired.push(task.on_expired),
        }
    }
    expired
}

fn call_expired(expired: Vec<OnExpired>) {
    for on_expired in expired {
        // The panic hook has reported it; the other callbacks still run.
        let _ = catch_unwind(AssertUnwindSafe(on_expired));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload");
    format!("panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};
    use std::time::Duration;

    use crate::t0;

    fn dispatcher(max_running: usize, max_waiting: usize, wait: Duration) -> Dispatcher<Work> {
        let mut config = TaskConfig::default();
        config
            .max_running(NonZeroUsize::new(max_running).expect("invariant: tests pass nonzero"))
            .max_waiting(max_waiting)
            .wait_timeout(wait);
        Dispatcher::new(config)
    }

    fn counting(counter: &Arc<AtomicUsize>) -> OnExpired {
        let counter = Arc::clone(counter);
        Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn starts_waits_refuses_and_hands_the_freed_slot_to_the_oldest_waiter() {
        let t0 = t0();
        let d = dispatcher(1, 2, Duration::from_secs(10));
        let mut ready = Vec::new();
        let expired = Arc::new(AtomicUsize::new(0));
        let mut results = Vec::new();
        for i in 0..4 {
            let work: Work = Box::new(move || if i == 0 { Ok(()) } else { Err(format!("{i}")) });
            results.push(d.submit(work, counting(&expired), t0, |id, w| ready.push((id, w))));
        }
        assert!(matches!(results[0], Submitted::Started(_)));
        assert!(matches!(results[1], Submitted::Waiting { .. }));
        assert!(matches!(results[2], Submitted::Waiting { .. }));
        assert_eq!(results[3], Submitted::Refused(()));
        assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(ready.len(), 1);

        let (id, work) = ready.pop().expect("one started");
        d.handle_task_done(id, catch_panic(work).into(), t0, |id, w| {
            ready.push((id, w));
        })
        .expect("running");
        let (next, work) = ready.pop().expect("the first waiter starts");
        assert_eq!(Some(next), results[1].id());
        assert_eq!(catch_panic(work), Err("1".to_owned()));
        d.handle_task_done(next, Outcome::Failed, t0, |_, _| {})
            .expect("running");
        assert_eq!(
            d.handle_task_done(next, Outcome::Failed, t0, |_, _| {}),
            Err(TaskError::Unknown(next)),
            "a task ends once"
        );
        let stats = d.stats();
        assert_eq!(
            (stats.done, stats.failed, stats.refused, stats.running),
            (1, 1, 1, 1)
        );
        assert_eq!(expired.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn expired_waiters_get_on_expired_once_and_never_start() {
        let t0 = t0();
        let d = dispatcher(1, 5, Duration::from_secs(1));
        let expired = Arc::new(AtomicUsize::new(0));
        let mut ready = Vec::new();
        for _ in 0..3 {
            let _ = d.submit(Box::new(|| Ok(())), counting(&expired), t0, |id, w| {
                ready.push((id, w));
            });
        }
        d.handle_timeout(t0 + Duration::from_millis(999));
        assert_eq!(expired.load(Ordering::SeqCst), 0, "never early");
        d.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(expired.load(Ordering::SeqCst), 2);
        d.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(expired.load(Ordering::SeqCst), 2, "once each");
        assert_eq!(d.poll_timeout(), None);
        let (id, _) = ready.pop().expect("the first runs");
        d.handle_task_done(id, Outcome::Done, t0 + Duration::from_secs(3), |_, _| {
            panic!("nobody is left to start")
        })
        .expect("running");
        assert!(d.is_idle());
        assert!(ready.is_empty());
    }

    #[test]
    fn on_expired_may_submit_again_and_a_panicking_one_does_not_stop_the_rest() {
        let t0 = t0();
        let d = Arc::new(dispatcher(1, 5, Duration::ZERO));
        let expired = Arc::new(AtomicUsize::new(0));
        let _ = d.submit(Box::new(|| Ok(())), counting(&expired), t0, |_, _| {});
        let _ = d.submit(
            Box::new(|| Ok(())),
            Box::new(|| panic!("a buggy callback")),
            t0,
            |_, _| {},
        );
        let again = Arc::clone(&d);
        let counter = counting(&expired);
        // The lock is released before on_expired runs, so it can submit.
        let _ = d.submit(
            Box::new(|| Ok(())),
            Box::new(move || {
                let _ = again.submit(Box::new(|| Ok(())), counter, t0, |_, _| {});
            }),
            t0,
            |_, _| {},
        );
        assert_eq!(expired.load(Ordering::SeqCst), 1);
        assert_eq!(d.stats().expired, 3);
    }

    #[test]
    fn catch_panic_reports_panics_as_errors() {
        assert_eq!(catch_panic(|| Ok(())), Ok(()));
        assert_eq!(
            catch_panic(|| panic!("boom")),
            Err("panicked: boom".to_owned())
        );
        let n = 7;
        assert_eq!(
            catch_panic(|| panic!("boom {n}")),
            Err("panicked: boom 7".to_owned())
        );
        assert_eq!(
            catch_panic(|| std::panic::panic_any(3_u8)),
            Err("panicked: a non-string payload".to_owned())
        );
        assert_eq!(Outcome::from(Err("x".to_owned())), Outcome::Failed);
        assert_eq!(Outcome::from(Ok(())), Outcome::Done);
    }

    #[test]
    fn catch_panic_future_reports_a_panic_and_is_not_polled_again() {
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut ok = CatchPanic::new(Box::pin(async { Ok(()) }));
        assert_eq!(Pin::new(&mut ok).poll(&mut cx), Poll::Ready(Ok(())));
        let mut bad = CatchPanic::new(Box::pin(async { panic!("async boom") }));
        assert_eq!(
            Pin::new(&mut bad).poll(&mut cx),
            Poll::Ready(Err("panicked: async boom".to_owned()))
        );
        assert!(matches!(
            Pin::new(&mut bad).poll(&mut cx),
            Poll::Ready(Err(_))
        ));
    }
}
