//! Timers for drivers that own many connections, and server-wide `run_after` / `run_every`.
//!
//! - [`TimerQueue<K>`]: one deadline per key (a connection's slab key). Tells a reactor thread
//!   the earliest deadline across all its connections and which keys are due, without per-tick
//!   work proportional to the number of armed timers.
//! - [`ServerTimers<T>`]: one-shot and fixed-rate periodic tasks (gev's `RunAfter` /
//!   `RunEvery`) as plain values; the driver runs what [`ServerTimers::poll_expired`] hands it.
//!
//! Both follow the sans-IO contract: time comes in as `now: Instant`, nothing here reads the
//! clock. After its inputs, a driver drains `poll_expired(now)`, then sleeps until
//! `poll_timeout()`.
//!
//! # Data structure
//!
//! [`TimerQueue`] is a binary min-heap of `(deadline, seq, key)` entries plus a hash map from
//! each live key to its true deadline. The dominant operation for a server is pushing an idle
//! deadline later on every read, so that operation does not touch the heap:
//!
//! ```text
//!   slots: HashMap<K, Slot>                  heap: BinaryHeap, min on (at, seq)
//!   ┌─────┬───────────┬─────┬─────────┐      ┌──────────────────────────────┐
//!   │ key │ at (true) │ seq │ tracker │      │ (t+10s, #41, 7)  ← tracker 7 │
//!   ├─────┼───────────┼─────┼─────────┤      │ (t+12s, #44, 3)  ← stale     │
//!   │  7  │  t+30s    │ #90 │   #41   │─────►│ ...                          │
//!   └─────┴───────────┴─────┴─────────┘      └──────────────────────────────┘
//! ```
//!
//! `seq` numbers every `schedule` call. Each live key owns exactly one heap entry, its
//! *tracker* (the entry whose `seq` the slot names), and the tracker's `(at, seq)` is never
//! later than the key's true `(at, seq)`. Other entries are *stale* (their key was cancelled,
//! fired, or moved earlier) and are dropped when they reach the top.
//!
//! - `schedule` to the same or a later deadline: update the slot only; the tracker still
//!   bounds the key from below (key 7 above: tracker at 10 s, true deadline 30 s).
//! - `schedule` earlier, or a new key: push a new tracker; the old one turns stale.
//! - `cancel`: remove the slot; the tracker turns stale.
//! - `poll_timeout` / `poll_expired` first *settle* the top: pop stale entries, and re-insert
//!   a lagging tracker at its key's true deadline, until the top is an exact tracker. Since
//!   every tracker bounds its key from below, that top is the earliest deadline.
//!
//! Stale entries are bounded: when the heap exceeds `2 × live + 64` entries it is rebuilt
//! without them in O(n), which amortizes to O(1) per operation that made an entry stale.
//! Capacities are shrunk when they exceed `4 × live + 1024`, so memory is O(live keys) even
//! after a spike, or after one key was rescheduled millions of times.
//!
//! | operation | cost (n live keys) |
//! |---|---|
//! | `schedule` to a later deadline | O(1): one hash lookup |
//! | `schedule` earlier / new key | O(log n) |
//! | `cancel`, `deadline`, `len` | O(1) |
//! | `poll_timeout`, `poll_expired` | O(log n) amortized; repeated `poll_timeout` O(1) |
//!
//! Ties (equal deadlines) fire in the order of the keys' last `schedule` calls.
//!
//! # Why this structure
//!
//! The alternatives considered: an *eager* heap that pushes on every reschedule (lazy
//! deletion plus compaction) pays O(log n) and grows the heap on every read of every
//! connection; an *indexed* heap (positions kept in a map) keeps exactly n entries but every
//! reschedule sifts and rewrites positions, O(log n) hash updates; a hierarchical timing wheel
//! (tokio) gives O(1) but rounds deadlines to its tick, while [`TimerQueue::poll_timeout`] must
//! be exact. `benches/timer.rs` measures this queue against the eager heap on 100k armed keys.
//!
//! ```
//! # fn demo(now: std::time::Instant) {
//! use std::time::Duration;
//! use gale_core::timer::TimerQueue;
//!
//! let mut timers = TimerQueue::new();
//! timers.schedule(1usize, now + Duration::from_secs(10));
//! timers.schedule(2, now + Duration::from_secs(5));
//! timers.schedule(2, now + Duration::from_secs(60)); // pushed later: no heap work
//! assert_eq!(timers.poll_timeout(), Some(now + Duration::from_secs(10)));
//! assert_eq!(timers.poll_expired(now + Duration::from_secs(10)), Some(1));
//! assert_eq!(timers.poll_expired(now + Duration::from_secs(10)), None);
//! # }
//! ```

mod queue;
mod server;

#[cfg(test)]
mod props;

pub use queue::TimerQueue;
pub use server::{Expired, ServerTimers, TimerError, TimerId};
