//! The task queue state machine.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use super::waitline::WaitLine;
use super::{Outcome, Submitted, TaskConfig, TaskError, TaskEvent, TaskId, TaskState, TaskStats};

/// A bounded pool of task slots with a FIFO waiting line and wait deadlines, as plain values.
///
/// `T` is whatever the application calls a task (a message, a request, a closure); the queue
/// only moves it around. At most `max_running` tasks hold a slot, at most `max_waiting` wait for
/// one, and a waiter gives up at its deadline (see [`TaskConfig`]). The queue reads no clock,
/// spawns nothing and never blocks: the driver feeds it inputs with the current time and acts on
/// what it hands out.
///
/// # Inputs and outputs
///
/// | inputs (take `now`)                    | outputs                           |
/// |----------------------------------------|-----------------------------------|
/// | [`submit`](Self::submit), [`submit_with_deadline`](Self::submit_with_deadline) | [`poll_event`](Self::poll_event): [`TaskEvent::Run`], [`TaskEvent::Expired`] |
/// | [`handle_task_done`](Self::handle_task_done) | [`poll_timeout`](Self::poll_timeout): the next wait deadline |
/// | [`handle_timeout`](Self::handle_timeout) |                                   |
/// | [`cancel`](Self::cancel) (no time needed) |                                  |
///
/// Every input that takes `now` first expires the waiters whose deadline is at or before `now`,
/// then starts waiters in FIFO order while slots are free. So a waiter never starts after its
/// deadline even when the driver is late with `handle_timeout`, and a slot is never idle while a
/// task waits.
///
/// # The drain rule
///
/// After every input, the driver drains [`poll_event`](Self::poll_event) until it returns
/// `None`, then reads [`poll_timeout`](Self::poll_timeout) and sleeps no later than that instant
/// before calling [`handle_timeout`](Self::handle_timeout). Extra or early `handle_timeout`
/// calls are harmless no-ops. A task's [`TaskEvent::Run`] must be polled before its
/// `handle_task_done` is accepted. The queue holds at most `max_running + max_waiting` tasks of
/// its own; undrained [`TaskEvent::Expired`] events are the only thing that can pile up beyond
/// that, so a driver that skips draining is the one way to grow it.
///
/// ```no_run
/// use std::sync::mpsc;
/// use std::time::Instant;
/// use gale_core::task::{Outcome, Submitted, TaskConfig, TaskEvent, TaskId, TaskQueue};
///
/// enum Input {
///     Message(String),
///     Finished(TaskId, Outcome),
/// }
///
/// fn handle(message: &str) -> Result<(), ()> {
///     println!("handling {message}");
///     Ok(())
/// }
///
/// let (tx, rx) = mpsc::channel::<Input>();
/// let mut queue = TaskQueue::new(TaskConfig::default());
/// loop {
///     // Wait for the next input, but no later than the next deadline.
///     let input = match queue.poll_timeout() {
///         Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
///         None => rx.recv().ok(),
///     };
///     let now = Instant::now();
///     match input {
///         Some(Input::Message(message)) => {
///             if let Submitted::Refused(message) = queue.submit(message, now) {
///                 eprintln!("busy, refused: {message}");
///             }
///         }
///         Some(Input::Finished(id, outcome)) => queue
///             .handle_task_done(id, outcome, now)
///             .expect("only ids handed out by Run are reported"),
///         None => queue.handle_timeout(now),
///     }
///     // Drain: run what may start, answer what expired.
///     while let Some(event) = queue.poll_event() {
///         match event {
///             TaskEvent::Run { id, task } => {
///                 let tx = tx.clone();
///                 std::thread::spawn(move || {
///                     let outcome = match handle(&task) {
///                         Ok(()) => Outcome::Done,
///                         Err(()) => Outcome::Failed,
///                     };
///                     let _ = tx.send(Input::Finished(id, outcome));
///                 });
///             }
///             TaskEvent::Expired { id, task } => eprintln!("{id} timed out: {task}"),
///             _ => {}
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct TaskQueue<T> {
    config: TaskConfig,
    /// The id the next accepted task gets.
    next_id: u64,
    /// Tasks holding a slot: `Starting` until their `Run` is polled, then `Running`.
    slots: HashMap<TaskId, TaskState, BuildHasherDefault<IdHasher>>,
    waiting: WaitLine<T>,
    events: VecDeque<TaskEvent<T>>,
    stats: TaskStats,
}

impl<T> TaskQueue<T> {
    /// An empty queue with these limits.
    #[must_use]
    pub fn new(config: TaskConfig) -> Self {
        Self {
            config,
            next_id: 0,
            slots: HashMap::default(),
            waiting: WaitLine::new(),
            events: VecDeque::new(),
            stats: TaskStats::default(),
        }
    }

    /// The limits this queue was built with.
    #[must_use]
    pub const fn config(&self) -> &TaskConfig {
        &self.config
    }

    /// Offers a task that may wait up to the configured
    /// [`wait_timeout`](TaskConfig::wait_timeout) for a slot.
    ///
    /// It starts at once if a slot is free (its [`TaskEvent::Run`] is then ready to poll),
    /// waits at the back of the line if the line has room, and is handed back otherwise. Waiters
    /// whose deadline has passed at `now` are expired first, so they make room.
    pub fn submit(&mut self, task: T, now: Instant) -> Submitted<T> {
        let deadline = now.checked_add(self.config.wait_timeout);
        self.admit(task, deadline, now)
    }

    /// Like [`submit`](Self::submit), but the task waits no later than `deadline` instead of the
    /// configured timeout. Deadlines need not grow with submission order: a later task may give
    /// up first. A deadline at or before `now` still lets the task start if a slot is free;
    /// if it would have to wait, it expires in this very call (a [`TaskEvent::Expired`] follows
    /// the returned [`Submitted::Waiting`]).
    pub fn submit_with_deadline(
        &mut self,
        task: T,
        deadline: Instant,
        now: Instant,
    ) -> Submitted<T> {
        self.admit(task, Some(deadline), now)
    }

    /// Reports that a task handed out by [`TaskEvent::Run`] has ended, which frees its slot for
    /// the next waiter (after expiring those whose deadline has passed at `now`).
    ///
    /// # Errors
    ///
    /// [`TaskError::Unknown`] if this queue never issued `id` or its task has already ended;
    /// [`TaskError::NotRunning`] if the task is waiting or its `Run` event has not been polled.
    /// On error nothing changes.
    pub fn handle_task_done(
        &mut self,
        id: TaskId,
        outcome: Outcome,
        now: Instant,
    ) -> Result<(), TaskError> {
        match self.state(id) {
            Some(TaskState::Running) => {}
            Some(state) => return Err(TaskError::NotRunning { id, state }),
            None => return Err(TaskError::Unknown(id)),
        }
        self.slots.remove(&id);
        match outcome {
            Outcome::Done => self.stats.done += 1,
            Outcome::Failed => self.stats.failed += 1,
        }
        self.expire(now);
        self.fill_slots();
        Ok(())
    }

    /// Expires every waiter whose deadline is at or before `now`, in deadline order, each as a
    /// [`TaskEvent::Expired`]. Calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// Takes a waiting task out of the line and hands it back; it will neither run nor expire.
    ///
    /// # Errors
    ///
    /// [`TaskError::NotWaiting`] if the task already holds a slot; [`TaskError::Unknown`] if
    /// this queue never issued `id` or its task has already ended. On error nothing changes.
    pub fn cancel(&mut self, id: TaskId) -> Result<T, TaskError> {
        if let Some(task) = self.waiting.remove(id) {
            self.stats.cancelled += 1;
            return Ok(task);
        }
        match self.slots.get(&id) {
            Some(&state) => Err(TaskError::NotWaiting { id, state }),
            None => Err(TaskError::Unknown(id)),
        }
    }

    /// Takes every waiting task out of the line, oldest first, and hands them back; they
    /// will neither run nor expire. Tasks holding a slot are untouched. For a stop that
    /// must answer everyone still waiting (503, say) once its grace period is over.
    pub fn cancel_waiting(&mut self) -> Vec<(TaskId, T)> {
        let cancelled: Vec<_> = std::iter::from_fn(|| self.waiting.pop_front()).collect();
        self.stats.cancelled += cancelled.len() as u64;
        cancelled
    }

    /// The next thing the driver must do: run a task or answer an expired one. Events come out
    /// in the order they happened; tasks start in FIFO order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TaskEvent<T>> {
        let event = self.events.pop_front()?;
        if let TaskEvent::Run { id, .. } = &event
            && let Some(state) = self.slots.get_mut(id)
        {
            *state = TaskState::Running;
        }
        Some(event)
    }

    /// The earliest wait deadline, when [`handle_timeout`](Self::handle_timeout) is due; `None`
    /// if no waiter has one. It may already be in the past: then call it at once.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.waiting.earliest_deadline()
    }

    /// Where a live task is, or `None` if this queue never issued `id` or the task has ended.
    #[must_use]
    pub fn state(&self, id: TaskId) -> Option<TaskState> {
        if let Some(&state) = self.slots.get(&id) {
            Some(state)
        } else if self.waiting.contains(id) {
            Some(TaskState::Waiting)
        } else {
            None
        }
    }

    /// Current gauges and counters since the queue was built.
    #[must_use]
    pub fn stats(&self) -> TaskStats {
        TaskStats {
            running: self.slots.len(),
            waiting: self.waiting.len(),
            ..self.stats
        }
    }

    /// When the task at the front of the waiting line (the one waiting longest) was submitted;
    /// `None` if nobody waits. `now - oldest_waiting_since` is the queueing delay to report.
    #[must_use]
    pub fn oldest_waiting_since(&self) -> Option<Instant> {
        self.waiting.front_since()
    }

    /// Whether nothing runs, waits, or waits to be polled: a graceful stop may finish now.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.slots.is_empty() && self.waiting.is_empty() && self.events.is_empty()
    }

    /// Shared tail of both submit flavours.
    fn admit(&mut self, task: T, deadline: Option<Instant>, now: Instant) -> Submitted<T> {
        self.stats.submitted += 1;
        self.expire(now);
        let has_slot = self.slots.len() < self.config.max_running.get();
        let line_has_room = self.waiting.len() < self.config.max_waiting;
        if !(has_slot || line_has_room) || self.next_id == ID_EXHAUSTED {
            self.stats.refused += 1;
            return Submitted::Refused(task);
        }
        let id = TaskId(self.next_id);
        self.next_id += 1;
        if has_slot {
            // Slots are refilled after every change, so a free slot means nobody waits.
            debug_assert!(self.waiting.is_empty());
            self.start(id, task);
            Submitted::Started(id)
        } else {
            self.waiting.push(id, task, now, deadline);
            // Only the new waiter can be overdue: everyone else was expired above.
            self.expire(now);
            Submitted::Waiting { id, deadline }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((id, task)) = self.waiting.pop_expired(now) {
            self.stats.expired += 1;
            self.events.push_back(TaskEvent::Expired { id, task });
        }
    }

    fn fill_slots(&mut self) {
        while self.slots.len() < self.config.max_running.get() {
            let Some((id, task)) = self.waiting.pop_front() else {
                break;
            };
            self.start(id, task);
        }
    }

    fn start(&mut self, id: TaskId, task: T) {
        self.slots.insert(id, TaskState::Starting);
        self.events.push_back(TaskEvent::Run { id, task });
    }
}

/// Hashes task ids for the slot map. The queue picks the ids (distinct, sequential), so one
/// multiplication by an odd constant spreads them well; SipHash's flooding resistance would buy
/// nothing, as a caller can only look ids up, never insert its own.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(ID_HASH_FACTOR);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(ID_HASH_FACTOR);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// 2^64 divided by the golden ratio, rounded to odd (Fibonacci hashing).
const ID_HASH_FACTOR: u64 = 0x9E37_79B9_7F4A_7C15;

/// `next_id` at which the queue stops accepting tasks rather than reuse an id (after 2^64 - 1
/// submissions, which no real server reaches).
const ID_EXHAUSTED: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::{
        ID_EXHAUSTED, Outcome, Submitted, TaskConfig, TaskError, TaskEvent, TaskId, TaskQueue,
        TaskState,
    };
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use crate::t0;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn queue(max_running: usize, max_waiting: usize, wait_timeout: Duration) -> TaskQueue<u32> {
        let mut config = TaskConfig::default();
        config
            .max_running(NonZeroUsize::new(max_running).expect("invariant: tests pass nonzero"))
            .max_waiting(max_waiting)
            .wait_timeout(wait_timeout);
        TaskQueue::new(config)
    }

    fn drain(q: &mut TaskQueue<u32>) -> Vec<TaskEvent<u32>> {
        std::iter::from_fn(|| q.poll_event()).collect()
    }

    fn run(id: TaskId, task: u32) -> TaskEvent<u32> {
        TaskEvent::Run { id, task }
    }

    fn expired(id: TaskId, task: u32) -> TaskEvent<u32> {
        TaskEvent::Expired { id, task }
    }

    #[test]
    fn starts_up_to_max_running_then_waits_then_refuses() {
        let t0 = t0();
        let mut q = queue(2, 1, secs(30));
        assert_eq!(q.submit(1, t0), Submitted::Started(TaskId(0)));
        assert_eq!(q.submit(2, t0), Submitted::Started(TaskId(1)));
        assert_eq!(
            q.submit(3, t0),
            Submitted::Waiting {
                id: TaskId(2),
                deadline: Some(t0 + secs(30))
            }
        );
        assert_eq!(q.submit(4, t0), Submitted::Refused(4));
        assert_eq!(drain(&mut q), [run(TaskId(0), 1), run(TaskId(1), 2)]);
        let stats = q.stats();
        assert_eq!((stats.running, stats.waiting), (2, 1));
        assert_eq!((stats.submitted, stats.refused), (4, 1));
        assert_eq!(q.poll_timeout(), Some(t0 + secs(30)));
    }

    #[test]
    fn cancel_waiting_hands_back_the_line_in_order_and_leaves_running_tasks() {
        let t0 = t0();
        let mut q = queue(1, 10, secs(30));
        let running = q.submit(1, t0).id().expect("started");
        let waiting: Vec<TaskId> = (2..=4)
            .map(|task| q.submit(task, t0).id().expect("waiting"))
            .collect();
        assert_eq!(drain(&mut q), [run(running, 1)]);
        let cancelled = q.cancel_waiting();
        assert_eq!(
            cancelled,
            [(waiting[0], 2), (waiting[1], 3), (waiting[2], 4)]
        );
        assert_eq!(q.state(waiting[0]), None);
        assert_eq!(q.poll_timeout(), None, "nothing left to expire");
        q.handle_timeout(t0 + secs(60));
        assert!(drain(&mut q).is_empty(), "cancelled tasks never expire");
        let stats = q.stats();
        assert_eq!((stats.running, stats.waiting, stats.cancelled), (1, 0, 3));
        assert!(!q.is_idle(), "the running task still holds its slot");
        q.handle_task_done(running, Outcome::Done, t0 + secs(61))
            .expect("running");
        assert!(drain(&mut q).is_empty(), "no cancelled task starts");
        assert!(q.is_idle());
        assert!(q.cancel_waiting().is_empty());
    }

    #[test]
    fn a_freed_slot_goes_to_the_oldest_waiter() {
        let t0 = t0();
        let mut q = queue(1, 10, secs(30));
        let first = q.submit(1, t0).id().expect("started");
        for task in 2..=4 {
            assert!(matches!(
                q.submit(task, t0 + secs(1)),
                Submitted::Waiting { .. }
            ));
        }
        assert_eq!(q.oldest_waiting_since(), Some(t0 + secs(1)));
        assert_eq!(drain(&mut q), [run(first, 1)]);
        q.handle_task_done(first, Outcome::Failed, t0 + secs(2))
            .expect("running");
        assert_eq!(drain(&mut q), [run(TaskId(1), 2)]);
        q.handle_task_done(TaskId(1), Outcome::Done, t0 + secs(3))
            .expect("running");
        assert_eq!(drain(&mut q), [run(TaskId(2), 3)]);
        let stats = q.stats();
        assert_eq!(
            (stats.done, stats.failed, stats.running, stats.waiting),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn the_eleventh_message_times_out_after_thirty_seconds_by_default() {
        // GSEAsyncServer with its defaults: ten workers busy for a minute, the next message
        // gives up after --process-max-timeout.
        let t0 = t0();
        let mut q = TaskQueue::new(TaskConfig::default());
        for task in 1..=10 {
            assert!(matches!(q.submit(task, t0), Submitted::Started(_)));
        }
        assert_eq!(drain(&mut q).len(), 10);
        let eleventh = q.submit(11, t0).id().expect("waits");
        assert_eq!(q.poll_timeout(), Some(t0 + secs(30)));
        q.handle_timeout(t0 + secs(30) - Duration::from_nanos(1));
        assert_eq!(
            drain(&mut q),
            [],
            "a waiter never expires before its deadline"
        );
        q.handle_timeout(t0 + secs(30));
        assert_eq!(drain(&mut q), [expired(eleventh, 11)]);
        assert_eq!(q.poll_timeout(), None);
        q.handle_timeout(t0 + secs(31));
        assert_eq!(drain(&mut q), [], "extra handle_timeout calls are no-ops");
        assert_eq!(q.stats().expired, 1);
    }

    #[test]
    fn a_late_report_expires_overdue_waiters_before_starting_the_next() {
        let t0 = t0();
        let mut q = queue(1, 10, secs(10));
        let first = q.submit(1, t0).id().expect("started");
        let late = q.submit(2, t0).id().expect("waits");
        let fresh = q.submit(3, t0 + secs(5)).id().expect("waits");
        let _ = drain(&mut q);
        // The driver missed the deadline of task 2 at t0+10 s.
        q.handle_task_done(first, Outcome::Done, t0 + secs(12))
            .expect("running");
        assert_eq!(drain(&mut q), [expired(late, 2), run(fresh, 3)]);
    }

    #[test]
    fn explicit_deadlines_expire_out_of_line_order() {
        let t0 = t0();
        let mut q = queue(1, 10, secs(30));
        let _ = q.submit(0, t0);
        let a = q.submit(1, t0).id().expect("waits");
        let b = q
            .submit_with_deadline(2, t0 + secs(5), t0)
            .id()
            .expect("waits");
        let c = q
            .submit_with_deadline(3, t0 + secs(3), t0)
            .id()
            .expect("waits");
        let _ = drain(&mut q);
        assert_eq!(q.poll_timeout(), Some(t0 + secs(3)));
        q.handle_timeout(t0 + secs(3));
        assert_eq!(drain(&mut q), [expired(c, 3)]);
        assert_eq!(q.poll_timeout(), Some(t0 + secs(5)));
        q.handle_timeout(t0 + secs(6));
        assert_eq!(drain(&mut q), [expired(b, 2)]);
        assert_eq!(q.poll_timeout(), Some(t0 + secs(30)));
        assert_eq!(q.state(a), Some(TaskState::Waiting));
    }

    #[test]
    fn several_expire_in_deadline_order() {
        let t0 = t0();
        let mut q = queue(1, 10, secs(30));
        let _ = q.submit(0, t0);
        let a = q
            .submit_with_deadline(1, t0 + secs(9), t0)
            .id()
            .expect("waits");
        let b = q
            .submit_with_deadline(2, t0 + secs(7), t0)
            .id()
            .expect("waits");
        let c = q
            .submit_with_deadline(3, t0 + secs(8), t0)
            .id()
            .expect("waits");
        let _ = drain(&mut q);
        q.handle_timeout(t0 + secs(100));
        assert_eq!(drain(&mut q), [expired(b, 2), expired(c, 3), expired(a, 1)]);
    }

    #[test]
    fn a_past_deadline_starts_if_a_slot_is_free_and_expires_at_once_otherwise() {
        let t0 = t0() + secs(10);
        let mut q = queue(1, 10, secs(30));
        let first = q.submit_with_deadline(1, t0 - secs(1), t0);
        assert_eq!(first, Submitted::Started(TaskId(0)));
        let second = q.submit_with_deadline(2, t0, t0);
        assert_eq!(
            second,
            Submitted::Waiting {
                id: TaskId(1),
                deadline: Some(t0)
            }
        );
        assert_eq!(drain(&mut q), [run(TaskId(0), 1), expired(TaskId(1), 2)]);
        assert_eq!(q.stats().waiting, 0);
    }

    #[test]
    fn expired_waiters_make_room_for_a_new_submission() {
        let t0 = t0();
        let mut q = queue(1, 1, secs(10));
        let _ = q.submit(1, t0);
        let waiter = q.submit(2, t0).id().expect("waits");
        assert_eq!(q.submit(3, t0 + secs(9)), Submitted::Refused(3));
        let third = q
            .submit(4, t0 + secs(10))
            .id()
            .expect("task 2 expired first");
        let events = drain(&mut q);
        assert_eq!(events[1..], [expired(waiter, 2)]);
        assert_eq!(q.state(third), Some(TaskState::Waiting));
    }

    #[test]
    fn zero_waiting_line_refuses_when_all_slots_are_busy() {
        let t0 = t0();
        let mut q = queue(1, 0, secs(30));
        assert!(matches!(q.submit(1, t0), Submitted::Started(_)));
        assert_eq!(q.submit(2, t0), Submitted::Refused(2));
    }

    #[test]
    fn zero_wait_timeout_expires_whoever_has_to_wait() {
        let t0 = t0();
        let mut q = queue(1, 5, Duration::ZERO);
        let _ = q.submit(1, t0);
        let id = q.submit(2, t0).id().expect("waits, briefly");
        assert_eq!(drain(&mut q)[1..], [expired(id, 2)]);
    }

    #[test]
    fn an_overflowing_timeout_means_no_deadline() {
        let t0 = t0();
        let mut q = queue(1, 5, Duration::MAX);
        let _ = q.submit(1, t0);
        assert_eq!(
            q.submit(2, t0),
            Submitted::Waiting {
                id: TaskId(1),
                deadline: None
            }
        );
        assert_eq!(q.poll_timeout(), None);
        assert_eq!(q.oldest_waiting_since(), Some(t0));
    }

    #[test]
    fn cancel_hands_back_a_waiter_only() {
        let t0 = t0();
        let mut q = queue(1, 5, secs(30));
        let running = q.submit(1, t0).id().expect("started");
        let waiting = q.submit(2, t0).id().expect("waits");
        assert_eq!(
            q.cancel(running),
            Err(TaskError::NotWaiting {
                id: running,
                state: TaskState::Starting
            })
        );
        assert_eq!(q.cancel(waiting), Ok(2));
        assert_eq!(q.cancel(waiting), Err(TaskError::Unknown(waiting)));
        assert_eq!(q.poll_timeout(), None);
        assert_eq!(q.stats().cancelled, 1);
        assert_eq!(drain(&mut q), [run(running, 1)]);
    }

    #[test]
    fn misreported_ids_are_typed_errors_and_change_nothing() {
        let t0 = t0();
        let mut q = queue(1, 5, secs(30));
        let first = q.submit(1, t0).id().expect("started");
        let second = q.submit(2, t0).id().expect("waits");
        let before = q.stats();
        assert_eq!(
            q.handle_task_done(first, Outcome::Done, t0),
            Err(TaskError::NotRunning {
                id: first,
                state: TaskState::Starting
            }),
            "its Run event has not been polled"
        );
        assert_eq!(
            q.handle_task_done(second, Outcome::Done, t0 + secs(60)),
            Err(TaskError::NotRunning {
                id: second,
                state: TaskState::Waiting
            })
        );
        assert_eq!(
            q.handle_task_done(TaskId(99), Outcome::Done, t0),
            Err(TaskError::Unknown(TaskId(99)))
        );
        assert_eq!(q.stats(), before, "not even the overdue waiter expired");
        assert_eq!(drain(&mut q), [run(first, 1)]);
        assert_eq!(q.state(first), Some(TaskState::Running));
        q.handle_task_done(first, Outcome::Done, t0)
            .expect("running");
        assert_eq!(
            q.handle_task_done(first, Outcome::Done, t0),
            Err(TaskError::Unknown(first)),
            "a task ends once"
        );
    }

    #[test]
    fn is_idle_once_everything_ended_and_was_polled() {
        let t0 = t0();
        let mut q = queue(1, 5, secs(1));
        assert!(q.is_idle());
        let first = q.submit(1, t0).id().expect("started");
        let _ = q.submit(2, t0);
        assert!(!q.is_idle());
        q.handle_timeout(t0 + secs(1));
        let _ = drain(&mut q);
        assert!(!q.is_idle(), "task 1 still runs");
        q.handle_task_done(first, Outcome::Done, t0 + secs(2))
            .expect("running");
        assert!(q.is_idle());
        assert_eq!(q.config().max_running.get(), 1);
    }

    #[test]
    fn refuses_rather_than_reuse_an_id() {
        let t0 = t0();
        let mut q = queue(2, 5, secs(1));
        q.next_id = ID_EXHAUSTED - 1;
        assert_eq!(q.submit(1, t0), Submitted::Started(TaskId(u64::MAX - 1)));
        assert_eq!(q.submit(2, t0), Submitted::Refused(2));
        assert_eq!(q.stats().refused, 1);
    }
}
