//! [`TimerQueue`]: one deadline per key, lazy binary heap. See the [module docs](super).

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

/// A set of keys, each with at most one deadline; tells a driver the earliest deadline and
/// which keys' deadlines have passed.
///
/// Keys are whatever the driver uses to find a connection again (`usize` slab keys for the mio
/// driver). Scheduling a key that already has a deadline moves it, earlier or later: the key then
/// fires once, at the new deadline, never at the old one.
///
/// # Polling order
///
/// After handling its inputs, a driver drains [`poll_expired`](Self::poll_expired) for the
/// current time, acts on each key it gets, then sleeps until
/// [`poll_timeout`](Self::poll_timeout). Keys are handed out in deadline order; keys with equal
/// deadlines in the order of their last [`schedule`](Self::schedule) call.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use gale_core::timer::TimerQueue;
///
/// /// One wake-up of a reactor thread; `now` comes from the driver's clock.
/// fn on_wake(timers: &mut TimerQueue<usize>, now: Instant) -> Option<Instant> {
///     // ... reads happened: push the idle deadline of connection 7 later (O(1)).
///     timers.schedule(7, now + Duration::from_secs(30));
///     // Expire what is due, in deadline order.
///     while let Some(conn) = timers.poll_expired(now) {
///         // call the connection's handle_timeout(now), then re-arm with its next deadline
///         let _ = conn;
///     }
///     // Sleep until the earliest remaining deadline (None: sleep until I/O).
///     timers.poll_timeout()
/// }
/// ```
///
/// # Complexity
///
/// With `n` live keys: [`schedule`](Self::schedule) to a later deadline is O(1) (one hash
/// lookup; the heap is repaired lazily); to an earlier deadline or for a new key, O(log n).
/// [`cancel`](Self::cancel) is O(1) amortized. [`poll_timeout`](Self::poll_timeout) and
/// [`poll_expired`](Self::poll_expired) are O(log n) amortized. Storage is O(n): the heap holds
/// at most `2 n + 64` entries, and both allocations are shrunk once they exceed `4 n + 1024`
/// entries (or what [`with_capacity`](TimerQueue::with_capacity) reserved, if more).
#[derive(Debug, Clone)]
pub struct TimerQueue<K, S = RandomState> {
    /// Min-heap on `(at, seq)`. Holds exactly one *tracker* per live key plus stale entries.
    heap: BinaryHeap<Node<K>>,
    /// The true deadline of every live key, and which heap entry tracks it.
    slots: HashMap<K, Slot, S>,
    /// Source of `seq`: unique per `schedule` call, orders equal deadlines.
    next_seq: u64,
    /// Capacity asked for in `with_capacity*`; `tidy` never shrinks below it.
    reserved: usize,
}

impl<K: Copy + Eq + Hash> TimerQueue<K> {
    /// An empty queue. Allocates nothing until the first [`schedule`](Self::schedule).
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity_and_hasher(0, RandomState::new())
    }

    /// An empty queue with room for `n` keys before reallocating.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self::with_capacity_and_hasher(n, RandomState::new())
    }
}

impl<K: Copy + Eq + Hash, S: BuildHasher> TimerQueue<K, S> {
    /// An empty queue using `hasher` for its key index (for example a faster, non-DoS-resistant
    /// hasher when keys are slab indices that no peer chooses).
    #[must_use]
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty queue with room for `n` keys, using `hasher` for its key index.
    #[must_use]
    pub fn with_capacity_and_hasher(n: usize, hasher: S) -> Self {
        let slots = HashMap::with_capacity_and_hasher(n, hasher);
        Self {
            heap: BinaryHeap::with_capacity(n),
            reserved: slots.capacity().max(n),
            slots,
            next_seq: 0,
        }
    }

    /// Sets `key`'s deadline to `at`, replacing any previous deadline, earlier or later.
    ///
    /// Afterwards `key` fires exactly once, from the first [`poll_expired`](Self::poll_expired)
    /// with `now >= at`, and never before `at`. An `at` already in the past fires at the next
    /// poll. Moving a deadline later costs one hash lookup and allocates nothing, so re-arming
    /// an idle timer on every read is cheap.
    pub fn schedule(&mut self, key: K, at: Instant) {
        let seq = self.next_seq;
        // Cannot overflow: 2^64 calls at one per nanosecond take 584 years.
        self.next_seq += 1;
        match self.slots.entry(key) {
            Entry::Occupied(mut occupied) => {
                let slot = occupied.get_mut();
                // The tracker is at or before the old deadline, so it still bounds a deadline
                // at or after the old one from below: leave it; it is moved when it reaches
                // the top of the heap. An earlier deadline gets a new tracker, which turns
                // the old one stale. (Comparing with the old deadline rather than the
                // tracker's may push when not strictly needed, if the tracker lags; that
                // costs a stale entry, and keeps `Slot`, hence the hash table, small.)
                let earlier = at < slot.at;
                slot.at = at;
                slot.seq = seq;
                if earlier {
                    slot.tracker_seq = seq;
                    self.heap.push(Node { at, seq, key });
                }
            }
            Entry::Vacant(vacant) => {
                vacant.insert(Slot {
                    at,
                    seq,
                    tracker_seq: seq,
                });
                self.heap.push(Node { at, seq, key });
            }
        }
        self.tidy();
    }

    /// Removes `key`'s deadline. Returns whether it had one.
    pub fn cancel(&mut self, key: K) -> bool {
        let had = self.slots.remove(&key).is_some();
        if had {
            self.tidy();
        }
        had
    }

    /// `key`'s current deadline, if it is scheduled.
    #[must_use]
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.slots.get(&key).map(|slot| slot.at)
    }

    /// Whether `key` has a deadline.
    #[must_use]
    pub fn contains(&self, key: K) -> bool {
        self.slots.contains_key(&key)
    }

    /// Number of scheduled keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is scheduled.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.slots.clear();
    }

    /// The earliest deadline among scheduled keys (exact), or `None` if none is scheduled.
    ///
    /// Takes `&mut self` because it finishes the lazy work of earlier calls: stale heap entries
    /// on top are dropped and trackers that lag behind a moved deadline are re-inserted. Calling
    /// it again without changes in between is O(1).
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.settle()
    }

    /// The next key whose deadline is `<= now`, earliest deadline first; the key is then
    /// unscheduled. `None` when no deadline has passed.
    ///
    /// Each [`schedule`](Self::schedule) produces at most one expiry.
    #[must_use]
    pub fn poll_expired(&mut self, now: Instant) -> Option<K> {
        self.poll_expired_with_deadline(now).map(|(key, _)| key)
    }

    /// Like [`poll_expired`](Self::poll_expired), also returning the deadline the key had
    /// (useful to measure lateness or to compute a fixed-rate next deadline).
    #[must_use]
    pub fn poll_expired_with_deadline(&mut self, now: Instant) -> Option<(K, Instant)> {
        if self.settle()? > now {
            return None;
        }
        // invariant: settle() just returned Some, so the heap is not empty.
        let node = self.heap.pop().expect("settled heap has a top");
        self.slots.remove(&node.key);
        self.tidy();
        Some((node.key, node.at))
    }

    /// Drops stale entries and gives back all unused capacity, including what
    /// [`with_capacity`](TimerQueue::with_capacity) reserved. Rarely needed: the queue already
    /// keeps its capacity within four times what the live keys need (or the reservation).
    pub fn shrink_to_fit(&mut self) {
        self.compact();
        self.reserved = 0;
        self.heap.shrink_to_fit();
        self.slots.shrink_to_fit();
    }
}

impl<K: Copy + Eq + Hash> Default for TimerQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// A heap entry. The tracker of a live key has `seq == slot.tracker_seq`; any other entry is
/// stale and dropped when it surfaces.
#[derive(Debug, Clone)]
struct Node<K> {
    at: Instant,
    seq: u64,
    key: K,
}

/// What the queue knows about a live key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The true deadline.
    at: Instant,
    /// `seq` of the `schedule` call that set `at`.
    seq: u64,
    /// Identifies the key's tracker in the heap. Invariant: the tracker's `(at, seq)` is at
    /// or before `(at, seq)` here, so the tracker never surfaces after the key is due.
    tracker_seq: u64,
}

impl<K> Ord for Node<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and we want the earliest `(at, seq)` on top.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<K> PartialOrd for Node<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> PartialEq for Node<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Node<K> {}

impl<K: Copy + Eq + Hash, S: BuildHasher> TimerQueue<K, S> {
    /// Makes the heap's top an exact, live entry and returns its deadline.
    ///
    /// Every tracker bounds its key's `(at, seq)` from below, so once the top is a tracker whose
    /// `seq` equals its key's, nothing in the heap is due earlier. Each lagging tracker is
    /// moved at most once per `schedule` call that moved its key later, and each stale entry
    /// is popped once: O(log n) amortized.
    fn settle(&mut self) -> Option<Instant> {
        loop {
            let top = self.heap.peek_mut()?;
            match self.slots.get_mut(&top.key) {
                Some(slot) if slot.tracker_seq == top.seq => {
                    if slot.seq == top.seq {
                        return Some(top.at);
                    }
                    // The key was moved later: move its tracker to the true deadline. Pop and
                    // push rather than sift down in place: `pop` moves the last leaf down with
                    // one comparison per level, and a deadline pushed later usually belongs
                    // near the bottom, where `push` leaves it after a comparison or two.
                    slot.tracker_seq = slot.seq;
                    let (at, seq) = (slot.at, slot.seq);
                    let mut node = PeekMut::pop(top);
                    node.at = at;
                    node.seq = seq;
                    self.heap.push(node);
                }
                _ => {
                    PeekMut::pop(top);
                }
            }
        }
    }

    /// Restores the storage bounds after an operation: at most `2 * live + COMPACT_SLACK` heap
    /// entries, and capacities at most `max(4 * live + SHRINK_SLACK, reserved)`. Amortized
    /// O(1): a compaction costs O(heap) and happens only after `live + COMPACT_SLACK` entries
    /// went stale; a shrink at least halves a capacity that three quarters emptied since.
    fn tidy(&mut self) {
        let live = self.slots.len();
        if self.heap.len() > 2 * live + COMPACT_SLACK {
            self.compact();
        }
        let allowed = (4 * live + SHRINK_SLACK).max(self.reserved);
        if self.heap.capacity() > allowed {
            self.heap
                .shrink_to((2 * live + COMPACT_SLACK).max(self.reserved));
        }
        if self.slots.capacity() > allowed {
            self.slots.shrink_to((2 * live).max(self.reserved));
        }
    }

    /// Drops every stale heap entry and re-heapifies, O(heap).
    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap.retain(|node| {
            slots
                .get(&node.key)
                .is_some_and(|s| s.tracker_seq == node.seq)
        });
    }

    #[cfg(test)]
    pub(super) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub(super) fn capacities(&self) -> (usize, usize) {
        (self.heap.capacity(), self.slots.capacity())
    }
}

/// Stale heap entries tolerated beyond one per live key before compacting.
pub(super) const COMPACT_SLACK: usize = 64;
/// Spare capacity tolerated beyond four times the live keys before shrinking. At least
/// `2 * COMPACT_SLACK`, so that a heap that just doubled is never shrunk right away.
pub(super) const SHRINK_SLACK: usize = 1024;

#[cfg(test)]
mod tests {
    use super::{COMPACT_SLACK, SHRINK_SLACK, TimerQueue};
    use std::time::Duration;

    use crate::t0;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(q: &mut TimerQueue<u32>, now: std::time::Instant) -> Vec<u32> {
        std::iter::from_fn(|| q.poll_expired(now)).collect()
    }

    #[test]
    fn empty_queue_has_no_timeout_and_nothing_expires() {
        let t0 = t0();
        let mut q = TimerQueue::<u32>::new();
        assert_eq!(q.poll_timeout(), None);
        assert_eq!(q.poll_expired(t0 + ms(1_000)), None);
        assert!(q.is_empty());
    }

    #[test]
    fn fires_in_deadline_order_not_before() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(3, t0 + ms(30));
        q.schedule(1, t0 + ms(10));
        q.schedule(2, t0 + ms(20));
        assert_eq!(q.len(), 3);
        assert_eq!(q.poll_timeout(), Some(t0 + ms(10)));
        assert_eq!(drain(&mut q, t0 + ms(9)), Vec::<u32>::new());
        assert_eq!(drain(&mut q, t0 + ms(20)), vec![1, 2]);
        assert_eq!(q.poll_timeout(), Some(t0 + ms(30)));
        assert_eq!(drain(&mut q, t0 + ms(100)), vec![3]);
        assert!(q.is_empty());
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn equal_deadlines_fire_in_last_schedule_order() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0 + ms(5));
        q.schedule(2, t0 + ms(10));
        q.schedule(1, t0 + ms(10)); // moved later: now scheduled after 2
        q.schedule(3, t0 + ms(10));
        assert_eq!(drain(&mut q, t0 + ms(10)), vec![2, 1, 3]);
    }

    #[test]
    fn moving_later_does_not_fire_at_old_deadline() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0 + ms(10));
        q.schedule(1, t0 + ms(50));
        assert_eq!(q.deadline(1), Some(t0 + ms(50)));
        assert_eq!(q.poll_timeout(), Some(t0 + ms(50)));
        assert_eq!(drain(&mut q, t0 + ms(49)), Vec::<u32>::new());
        assert_eq!(drain(&mut q, t0 + ms(50)), vec![1]);
        assert_eq!(drain(&mut q, t0 + ms(500)), Vec::<u32>::new());
    }

    #[test]
    fn moving_earlier_fires_once_at_new_deadline() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0 + ms(50));
        q.schedule(1, t0 + ms(10));
        assert_eq!(q.poll_timeout(), Some(t0 + ms(10)));
        assert_eq!(drain(&mut q, t0 + ms(10)), vec![1]);
        // The stale entry at 50 ms must not fire.
        assert_eq!(drain(&mut q, t0 + ms(100)), Vec::<u32>::new());
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn cancel_prevents_firing_and_reports_presence() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0 + ms(10));
        q.schedule(2, t0 + ms(20));
        assert!(q.cancel(1));
        assert!(!q.cancel(1));
        assert!(!q.contains(1));
        assert_eq!(q.deadline(1), None);
        assert_eq!(q.poll_timeout(), Some(t0 + ms(20)));
        assert_eq!(drain(&mut q, t0 + ms(100)), vec![2]);
    }

    #[test]
    fn rescheduling_after_cancel_or_fire_works() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0 + ms(10));
        assert!(q.cancel(1));
        q.schedule(1, t0 + ms(30));
        assert_eq!(drain(&mut q, t0 + ms(10)), Vec::<u32>::new());
        assert_eq!(drain(&mut q, t0 + ms(30)), vec![1]);
        q.schedule(1, t0 + ms(40));
        assert_eq!(drain(&mut q, t0 + ms(40)), vec![1]);
    }

    #[test]
    fn past_deadline_fires_at_next_poll() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(1, t0);
        assert_eq!(q.poll_expired_with_deadline(t0 + ms(5)), Some((1, t0)));
    }

    #[test]
    fn pushing_one_key_later_a_million_times_keeps_one_entry() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        q.schedule(0, t0 + ms(1));
        for i in 0..1_000_000u64 {
            q.schedule(7, t0 + Duration::from_micros(i));
        }
        assert_eq!(q.heap_len(), 2);
        assert_eq!(q.poll_timeout(), Some(t0 + ms(1)));
        assert_eq!(drain(&mut q, t0 + ms(1)), vec![0]);
        assert_eq!(q.poll_timeout(), Some(t0 + Duration::from_micros(999_999)));
    }

    #[test]
    fn pulling_one_key_earlier_a_million_times_stays_bounded() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        for i in (0..1_000_000u64).rev() {
            q.schedule(7, t0 + Duration::from_micros(i));
            assert!(q.heap_len() <= 2 + COMPACT_SLACK);
        }
        assert_eq!(q.poll_timeout(), Some(t0));
        assert_eq!(drain(&mut q, t0 + ms(10_000)), vec![7]);
    }

    #[test]
    fn capacity_is_given_back_after_mass_expiry() {
        let t0 = t0();
        let mut q = TimerQueue::new();
        for k in 0..100_000u32 {
            q.schedule(k, t0 + Duration::from_micros(u64::from(k)));
        }
        assert_eq!(drain(&mut q, t0 + ms(1_000)).len(), 100_000);
        let (heap_cap, map_cap) = q.capacities();
        assert!(heap_cap <= SHRINK_SLACK, "heap capacity {heap_cap}");
        assert!(map_cap <= SHRINK_SLACK, "map capacity {map_cap}");
    }

    #[test]
    fn clear_and_shrink_to_fit() {
        let t0 = t0();
        let mut q = TimerQueue::with_capacity(16);
        for k in 0..10u32 {
            q.schedule(k, t0 + ms(100));
            q.schedule(k, t0 + ms(u64::from(k)));
        }
        q.shrink_to_fit();
        assert_eq!(q.heap_len(), 10);
        assert_eq!(q.poll_timeout(), Some(t0));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.poll_timeout(), None);
    }
}
