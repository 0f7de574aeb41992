//! [`ServerTimers`]: server-wide `run_after` / `run_every`. See the [module docs](super).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::queue::TimerQueue;

/// Server-wide timers: one-shot tasks ([`run_after`](Self::run_after)) and fixed-rate periodic
/// tasks ([`run_every`](Self::run_every)), gev's `RunAfter` / `RunEvery` as values.
///
/// `T` is whatever the driver knows how to run (a boxed closure, an enum of jobs, …); this type
/// only decides *when*. [`poll_expired`](Self::poll_expired) hands a due one-shot task over by
/// value and lends a due periodic task as `&mut T` (see [`Expired`]).
///
/// # Periodic timers
///
/// A timer created at `now` with period `p` is due at `now + p`, `now + 2p`, … (fixed rate:
/// each deadline is the previous *deadline* plus `p`, not the time it was polled plus `p`).
/// A driver that is late by several periods gets **one** expiry, and the next deadline is the
/// first tick of the original grid that is strictly after the poll time: missed ticks are
/// skipped, as with tokio's `MissedTickBehavior::Skip`. So a timer polled at times
/// `n1 < n2 < …` fires at `ni` exactly when `floor((ni - start) / p) > floor((n(i-1) - start) / p)`
/// (with `n0 = start`), and a periodic timer fires at most once per `now`, which keeps a
/// `while let Some(..) = poll_expired(now)` loop finite.
///
/// A period of zero is caller misuse and is refused with [`TimerError::ZeroPeriod`]. A
/// deadline too far in the future to be represented as an `Instant` means "never": the timer
/// stays registered (so [`cancel`](Self::cancel) returns its task) but never fires.
///
/// # Driver loop
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use gale_core::timer::{Expired, ServerTimers};
///
/// type Job = Box<dyn FnMut() + Send>;
///
/// fn setup(timers: &mut ServerTimers<Job>, now: Instant) {
///     timers.run_after(now, Duration::from_secs(5), Box::new(|| println!("once")));
///     timers
///         .run_every(now, Duration::from_secs(1), Box::new(|| println!("tick")))
///         .expect("non-zero period");
/// }
///
/// /// One wake-up of the loop; `now` comes from the driver's clock.
/// fn on_wake(timers: &mut ServerTimers<Job>, now: Instant) -> Option<Instant> {
///     while let Some(expired) = timers.poll_expired(now) {
///         match expired {
///             Expired::Once { task: mut job, .. } => job(),
///             Expired::Every { task: job, .. } => job(),
///         }
///     }
///     timers.poll_timeout() // sleep until then
/// }
/// ```
pub struct ServerTimers<T> {
    queue: TimerQueue<TimerId>,
    tasks: HashMap<TimerId, Task<T>>,
    next_id: u64,
}

/// Identifies a timer of one [`ServerTimers`]. Never reused within that `ServerTimers`, so a
/// stale id held after the timer fired or was cancelled can never cancel a newer timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// A due timer, from [`ServerTimers::poll_expired`].
#[derive(Debug)]
pub enum Expired<'a, T> {
    /// A [`run_after`](ServerTimers::run_after) timer. It is gone from the `ServerTimers`; the
    /// task is the driver's to run (or drop).
    Once {
        /// The id `run_after` returned.
        id: TimerId,
        /// The task, by value.
        task: T,
    },
    /// A [`run_every`](ServerTimers::run_every) timer. It is already re-armed for its next
    /// tick; the task is lent for this run. To stop it, call
    /// [`cancel`](ServerTimers::cancel) with `id` once the borrow ends.
    Every {
        /// The id `run_every` returned.
        id: TimerId,
        /// The task, borrowed: it stays in the `ServerTimers` for the next tick.
        task: &'a mut T,
    },
}

/// Caller misuse of [`ServerTimers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// [`ServerTimers::run_every`] was given `Duration::ZERO`: such a timer would be due
    /// forever.
    #[error("run_every needs a period greater than zero")]
    ZeroPeriod,
}

impl<T> ServerTimers<T> {
    /// No timers.
    #[must_use]
    pub fn new() -> Self {
        Self {
            queue: TimerQueue::new(),
            tasks: HashMap::new(),
            next_id: 0,
        }
    }

    /// Runs `task` once, at `now + delay` (at the first [`poll_expired`](Self::poll_expired)
    /// with a time at or after it). A zero `delay` makes it due at once.
    pub fn run_after(&mut self, now: Instant, delay: Duration, task: T) -> TimerId {
        self.insert(now.checked_add(delay), task, None)
    }

    /// Runs `task` every `period`, first at `now + period`; fixed rate, missed ticks skipped
    /// (see [Periodic timers](Self#periodic-timers)).
    ///
    /// # Errors
    ///
    /// [`TimerError::ZeroPeriod`] if `period` is zero.
    pub fn run_every(
        &mut self,
        now: Instant,
        period: Duration,
        task: T,
    ) -> Result<TimerId, TimerError> {
        if period.is_zero() {
            return Err(TimerError::ZeroPeriod);
        }
        Ok(self.insert(now.checked_add(period), task, Some(period)))
    }

    /// Stops a timer and returns its task, or `None` if `id` already fired (one-shot) or was
    /// cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let task = self.tasks.remove(&id)?;
        self.queue.cancel(id);
        Some(task.task)
    }

    /// When timer `id` is next due; `None` if it is gone or will never fire.
    #[must_use]
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.queue.deadline(id)
    }

    /// Whether timer `id` is still registered.
    #[must_use]
    pub fn contains(&self, id: TimerId) -> bool {
        self.tasks.contains_key(&id)
    }

    /// Number of registered timers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no timer is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The earliest deadline among all timers, or `None` if none will fire.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.queue.poll_timeout()
    }

    /// The next timer due at `now`, earliest deadline first, or `None` when none is due.
    ///
    /// A one-shot timer is removed and its task handed over by value; a periodic timer is
    /// re-armed for its next tick strictly after `now` and its task lent (see [`Expired`]).
    /// Drain it in a loop before reading [`poll_timeout`](Self::poll_timeout).
    #[must_use]
    pub fn poll_expired(&mut self, now: Instant) -> Option<Expired<'_, T>> {
        let (id, due) = self.queue.poll_expired_with_deadline(now)?;
        // invariant: every id in `queue` has an entry in `tasks`: both are inserted together,
        // and `cancel` and one-shot expiry remove from both.
        let period = self.tasks.get(&id).expect("queued timer has a task").period;
        match period {
            None => {
                // invariant: as above.
                let task = self.tasks.remove(&id).expect("queued timer has a task");
                Some(Expired::Once {
                    id,
                    task: task.task,
                })
            }
            Some(period) => {
                if let Some(next) = next_tick(due, now, period) {
                    self.queue.schedule(id, next);
                }
                // invariant: as above.
                let task = self.tasks.get_mut(&id).expect("queued timer has a task");
                Some(Expired::Every {
                    id,
                    task: &mut task.task,
                })
            }
        }
    }
}

impl<T> Expired<'_, T> {
    /// The id of the timer that fired.
    #[must_use]
    pub fn id(&self) -> TimerId {
        match self {
            Self::Once { id, .. } | Self::Every { id, .. } => *id,
        }
    }
}

impl<T> Default for ServerTimers<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for ServerTimers<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTimers")
            .field("len", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// A registered timer.
struct Task<T> {
    task: T,
    /// `Some` for `run_every`.
    period: Option<Duration>,
}

impl<T> ServerTimers<T> {
    /// Registers a timer due at `at` (`None`: never).
    fn insert(&mut self, at: Option<Instant>, task: T, period: Option<Duration>) -> TimerId {
        let id = TimerId(self.next_id);
        // Cannot overflow: 2^64 timers at one per nanosecond take 584 years.
        self.next_id += 1;
        self.tasks.insert(id, Task { task, period });
        if let Some(at) = at {
            self.queue.schedule(id, at);
        }
        id
    }
}

/// The first tick of the grid `due + k * period` (k >= 1) strictly after `now`, given
/// `due <= now`; `None` if it is not representable.
fn next_tick(due: Instant, now: Instant, period: Duration) -> Option<Instant> {
    let late = now.saturating_duration_since(due).as_nanos();
    let period_nanos = period.as_nanos();
    // `now - due = k * period + rem` with `0 <= rem < period`: the next tick is `now +
    // (period - rem)`, which is `due + (k + 1) * period`.
    let rem = late % period_nanos;
    let to_next = period_nanos - rem;
    let secs = u64::try_from(to_next / NANOS_PER_SEC).ok()?;
    // Cannot truncate: the remainder is below 10^9.
    let nanos = (to_next % NANOS_PER_SEC) as u32;
    now.checked_add(Duration::new(secs, nanos))
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::{Duration, Expired, ServerTimers, TimerError, TimerId};

    use crate::t0;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drains due timers, returning (id, was_periodic) and bumping periodic counters.
    fn drain(timers: &mut ServerTimers<u32>, now: std::time::Instant) -> Vec<(TimerId, bool)> {
        let mut out = Vec::new();
        while let Some(expired) = timers.poll_expired(now) {
            match expired {
                Expired::Once { id, .. } => out.push((id, false)),
                Expired::Every { id, task } => {
                    *task += 1;
                    out.push((id, true));
                }
            }
        }
        out
    }

    #[test]
    fn run_after_fires_once_by_value() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let id = timers.run_after(t0, ms(10), 42);
        assert_eq!(timers.deadline(id), Some(t0 + ms(10)));
        assert_eq!(timers.poll_timeout(), Some(t0 + ms(10)));
        assert!(timers.poll_expired(t0 + ms(9)).is_none());
        match timers.poll_expired(t0 + ms(10)) {
            Some(Expired::Once { id: got, task }) => {
                assert_eq!(got, id);
                assert_eq!(task, 42);
            }
            other => panic!("expected a one-shot expiry, got {other:?}"),
        }
        assert!(timers.poll_expired(t0 + ms(1_000)).is_none());
        assert!(timers.is_empty());
        assert_eq!(timers.cancel(id), None);
    }

    #[test]
    fn run_every_fires_at_fixed_rate_and_lends_the_task() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let id = timers.run_every(t0, ms(10), 0).unwrap();
        assert_eq!(timers.deadline(id), Some(t0 + ms(10)));
        assert_eq!(drain(&mut timers, t0 + ms(9)), vec![]);
        // Polled 3 ms late: the next deadline stays on the grid (20 ms), not 13 + 10.
        assert_eq!(drain(&mut timers, t0 + ms(13)), vec![(id, true)]);
        assert_eq!(timers.deadline(id), Some(t0 + ms(20)));
        assert_eq!(drain(&mut timers, t0 + ms(20)), vec![(id, true)]);
        assert_eq!(timers.deadline(id), Some(t0 + ms(30)));
        assert_eq!(timers.cancel(id), Some(2));
        assert_eq!(timers.poll_timeout(), None);
    }

    #[test]
    fn late_periodic_fires_once_and_skips_missed_ticks() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let id = timers.run_every(t0, ms(10), 0).unwrap();
        // 5.5 periods late: one expiry, next tick is 60 ms.
        assert_eq!(drain(&mut timers, t0 + ms(55)), vec![(id, true)]);
        assert_eq!(timers.deadline(id), Some(t0 + ms(60)));
        // Exactly on a tick: that tick is covered, next is one period on.
        assert_eq!(drain(&mut timers, t0 + ms(80)), vec![(id, true)]);
        assert_eq!(timers.deadline(id), Some(t0 + ms(90)));
    }

    #[test]
    fn tiny_period_fires_once_per_poll() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let id = timers.run_every(t0, Duration::from_nanos(1), 0).unwrap();
        assert_eq!(drain(&mut timers, t0 + ms(1_000)), vec![(id, true)]);
        assert_eq!(
            timers.deadline(id),
            Some(t0 + ms(1_000) + Duration::from_nanos(1))
        );
    }

    #[test]
    fn zero_period_is_refused() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        assert_eq!(
            timers.run_every(t0, Duration::ZERO, 1),
            Err(TimerError::ZeroPeriod)
        );
        assert!(timers.is_empty());
    }

    #[test]
    fn unrepresentable_deadline_never_fires_but_can_be_cancelled() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let once = timers.run_after(t0, Duration::MAX, 1);
        let every = timers.run_every(t0, Duration::MAX, 2).unwrap();
        assert!(timers.contains(once) && timers.contains(every));
        assert_eq!(timers.deadline(once), None);
        assert_eq!(timers.poll_timeout(), None);
        assert_eq!(timers.cancel(every), Some(2));
        assert_eq!(timers.cancel(once), Some(1));
    }

    #[test]
    fn periodic_whose_next_tick_overflows_is_parked() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        // On Linux, `Instant` holds `i64` seconds: one `huge` fits after `t0`, two do not.
        let huge = Duration::from_secs(i64::MAX.unsigned_abs() / 2 + 1);
        // First tick representable only if t0 + huge fits; skip the test where it does not.
        let Some(first) = t0.checked_add(huge) else {
            return;
        };
        if first.checked_add(huge).is_some() {
            return;
        }
        let id = timers.run_every(t0, huge, 7).unwrap();
        assert_eq!(drain(&mut timers, first), vec![(id, true)]);
        assert_eq!(timers.deadline(id), None);
        assert!(timers.contains(id));
        assert_eq!(timers.cancel(id), Some(8));
    }

    #[test]
    fn ids_are_never_reused_and_cancel_is_exact() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let a = timers.run_after(t0, ms(5), 1);
        assert_eq!(timers.cancel(a), Some(1));
        let b = timers.run_after(t0, ms(5), 2);
        assert_ne!(a, b);
        assert_eq!(timers.cancel(a), None);
        assert_eq!(timers.len(), 1);
        let expired: Vec<_> = drain(&mut timers, t0 + ms(5));
        assert_eq!(expired, vec![(b, false)]);
    }

    #[test]
    fn mixed_timers_fire_in_deadline_order() {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let every = timers.run_every(t0, ms(10), 0).unwrap();
        let once = timers.run_after(t0, ms(15), 0);
        assert_eq!(
            drain(&mut timers, t0 + ms(25)),
            vec![(every, true), (once, false)]
        );
        assert_eq!(timers.poll_timeout(), Some(t0 + ms(30)));
        let debug = format!("{timers:?}");
        assert!(debug.contains("len: 1"), "{debug}");
    }
}
