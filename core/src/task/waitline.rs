//! The waiting line: first in, first out, with per-task deadlines that need not follow the
//! line's order.
//!
//! Ids grow with submission order, so ordering waiters by id *is* the FIFO order. A second index
//! orders the waiters that have a deadline by `(deadline, id)`, so the earliest deadline is
//! found, and removed, in `O(log n)` even when explicit deadlines put it in the middle of the
//! line. Both indexes always hold exactly the same waiters: nothing is removed lazily, so memory
//! is bounded by the line's length.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::TaskId;

/// FIFO of waiting tasks plus an index of their deadlines.
#[derive(Debug)]
pub(super) struct WaitLine<T> {
    by_id: BTreeMap<TaskId, Waiter<T>>,
    by_deadline: BTreeSet<(Instant, TaskId)>,
}

#[derive(Debug)]
struct Waiter<T> {
    task: T,
    since: Instant,
    deadline: Option<Instant>,
}

impl<T> WaitLine<T> {
    pub(super) const fn new() -> Self {
        Self {
            by_id: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub(super) fn contains(&self, id: TaskId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Appends a waiter. `id` must be larger than every id already in the line.
    pub(super) fn push(&mut self, id: TaskId, task: T, since: Instant, deadline: Option<Instant>) {
        debug_assert!(
            self.by_id
                .last_key_value()
                .is_none_or(|(last, _)| *last < id)
        );
        if let Some(deadline) = deadline {
            self.by_deadline.insert((deadline, id));
        }
        self.by_id.insert(
            id,
            Waiter {
                task,
                since,
                deadline,
            },
        );
    }

    /// Takes the waiter at the front of the line.
    pub(super) fn pop_front(&mut self) -> Option<(TaskId, T)> {
        let (id, waiter) = self.by_id.pop_first()?;
        self.forget_deadline(id, waiter.deadline);
        Some((id, waiter.task))
    }

    /// Takes the waiter `id` out of the line, wherever it is.
    pub(super) fn remove(&mut self, id: TaskId) -> Option<T> {
        let waiter = self.by_id.remove(&id)?;
        self.forget_deadline(id, waiter.deadline);
        Some(waiter.task)
    }

    /// Takes the waiter with the earliest deadline if that deadline is at or before `now`. Ties
    /// go to the older waiter.
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<(TaskId, T)> {
        let &(deadline, id) = self.by_deadline.first()?;
        if deadline > now {
            return None;
        }
        self.by_deadline.pop_first();
        let waiter = self.by_id.remove(&id);
        debug_assert!(waiter.is_some(), "both indexes hold the same waiters");
        waiter.map(|waiter| (id, waiter.task))
    }

    /// The earliest deadline of any waiter.
    pub(super) fn earliest_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(deadline, _)| deadline)
    }

    /// When the waiter at the front of the line was submitted.
    pub(super) fn front_since(&self) -> Option<Instant> {
        self.by_id.first_key_value().map(|(_, waiter)| waiter.since)
    }

    fn forget_deadline(&mut self, id: TaskId, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            let was_there = self.by_deadline.remove(&(deadline, id));
            debug_assert!(was_there, "both indexes hold the same waiters");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TaskId, WaitLine};
    use std::time::Duration;

    use crate::t0;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fifo_order_is_id_order_and_deadlines_are_independent() {
        let t0 = t0();
        let mut line = WaitLine::new();
        line.push(TaskId(1), "a", t0, Some(t0 + ms(30)));
        line.push(TaskId(2), "b", t0 + ms(1), Some(t0 + ms(10)));
        line.push(TaskId(3), "c", t0 + ms(2), None);
        assert_eq!(line.len(), 3);
        assert_eq!(line.earliest_deadline(), Some(t0 + ms(10)));
        assert_eq!(line.front_since(), Some(t0));

        assert_eq!(line.pop_expired(t0 + ms(9)), None);
        assert_eq!(line.pop_expired(t0 + ms(10)), Some((TaskId(2), "b")));
        assert_eq!(line.earliest_deadline(), Some(t0 + ms(30)));

        assert_eq!(line.pop_front(), Some((TaskId(1), "a")));
        assert_eq!(line.earliest_deadline(), None, "task 3 has no deadline");
        assert_eq!(line.pop_expired(t0 + ms(1_000_000)), None);
        assert_eq!(line.front_since(), Some(t0 + ms(2)));
        assert!(line.contains(TaskId(3)));
        assert_eq!(line.remove(TaskId(3)), Some("c"));
        assert!(line.is_empty());
        assert_eq!(line.pop_front(), None);
    }

    #[test]
    fn equal_deadlines_expire_oldest_first_and_remove_cleans_both_indexes() {
        let t0 = t0();
        let mut line = WaitLine::new();
        for id in 1..=3 {
            line.push(TaskId(id), id, t0, Some(t0 + ms(5)));
        }
        assert_eq!(line.remove(TaskId(2)), Some(2));
        assert_eq!(line.remove(TaskId(2)), None);
        assert_eq!(line.pop_expired(t0 + ms(5)), Some((TaskId(1), 1)));
        assert_eq!(line.pop_expired(t0 + ms(5)), Some((TaskId(3), 3)));
        assert_eq!(line.pop_expired(t0 + ms(5)), None);
        assert!(line.by_deadline.is_empty());
    }
}
