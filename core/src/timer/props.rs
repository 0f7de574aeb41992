//! quickcheck properties of the timer module against naive models on a virtual clock.

use std::time::Duration;

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::queue::{COMPACT_SLACK, SHRINK_SLACK};
use super::{Expired, ServerTimers, TimerId, TimerQueue};

use crate::t0;

fn at(t0: std::time::Instant, ms: u64) -> std::time::Instant {
    t0 + Duration::from_millis(ms)
}

/// Keys are drawn from a small set so that moves, cancels and re-schedules collide often.
const KEYS: u8 = 8;

#[derive(Clone, Debug)]
enum QueueOp {
    /// Set a key's deadline to `now - 100 ms + offset`: slightly past, present or future.
    Schedule(u8, u16),
    Cancel(u8),
    /// Advance the clock, then drain every expired key.
    Advance(u16),
    /// Compare `poll_timeout` with the model.
    Timeout,
}

impl Arbitrary for QueueOp {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = u8::arbitrary(g) % KEYS;
        match u8::arbitrary(g) % 10 {
            0..=4 => Self::Schedule(key, u16::arbitrary(g) % 2_000),
            5 => Self::Cancel(key),
            6..=8 => Self::Advance(u16::arbitrary(g) % 100),
            _ => Self::Timeout,
        }
    }
}

/// Runs `ops` against a `TimerQueue` and a `Vec<(key, deadline, seq)>` model, asserting
/// agreement after every step. Returns true (failures panic with a message).
fn queue_matches_model(ops: Vec<QueueOp>) -> bool {
    let t0 = t0();
    let mut queue = TimerQueue::new();
    let mut model: Vec<(u8, u64, u64)> = Vec::new();
    let mut now = 0u64;
    let mut seq = 0u64;
    for op in ops {
        match op {
            QueueOp::Schedule(key, offset) => {
                let deadline = now.saturating_sub(100) + u64::from(offset);
                queue.schedule(key, at(t0, deadline));
                model.retain(|&(k, ..)| k != key);
                model.push((key, deadline, seq));
                seq += 1;
            }
            QueueOp::Cancel(key) => {
                let had = model.iter().any(|&(k, ..)| k == key);
                model.retain(|&(k, ..)| k != key);
                assert_eq!(queue.cancel(key), had, "cancel({key}) presence");
            }
            QueueOp::Advance(ms) => {
                now += u64::from(ms);
                while let Some((key, deadline)) = queue.poll_expired_with_deadline(at(t0, now)) {
                    // It must be the model's earliest (deadline, seq): right key, right
                    // deadline, in order, and that deadline has passed.
                    let first = model
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, d, s))| (*d, *s))
                        .map(|(i, &e)| (i, e));
                    let Some((index, (want_key, want_at, _))) = first else {
                        panic!("key {key} fired but nothing is scheduled");
                    };
                    assert_eq!(
                        (key, deadline),
                        (want_key, at(t0, want_at)),
                        "fired out of order"
                    );
                    assert!(want_at <= now, "key {key} fired before its deadline");
                    model.swap_remove(index);
                }
                assert!(
                    model.iter().all(|&(_, d, _)| d > now),
                    "a due key did not fire: {model:?} at {now}"
                );
            }
            QueueOp::Timeout => {
                let want = model.iter().map(|&(_, d, _)| d).min();
                assert_eq!(queue.poll_timeout(), want.map(|d| at(t0, d)));
            }
        }
        assert_eq!(queue.len(), model.len());
        for key in 0..KEYS {
            let want = model.iter().find(|&&(k, ..)| k == key).map(|&(_, d, _)| d);
            assert_eq!(
                queue.deadline(key),
                want.map(|d| at(t0, d)),
                "deadline({key})"
            );
        }
        let live = model.len();
        assert!(
            queue.heap_len() <= 2 * live + COMPACT_SLACK,
            "heap {} for {live} live keys",
            queue.heap_len()
        );
        let (heap_cap, map_cap) = queue.capacities();
        assert!(heap_cap.max(map_cap) <= 4 * live + SHRINK_SLACK);
    }
    true
}

#[test]
fn prop_queue_matches_model() {
    QuickCheck::new()
        .tests(300)
        .quickcheck(queue_matches_model as fn(Vec<QueueOp>) -> bool);
}

#[test]
fn prop_queue_matches_model_long_runs() {
    // Long sequences so that stale entries pile up past the compaction threshold.
    QuickCheck::new()
        .tests(50)
        .rng(Gen::new(3_000))
        .quickcheck(queue_matches_model as fn(Vec<QueueOp>) -> bool);
}

/// A key moved around (often earlier, often cancelled) among many live keys keeps the heap
/// bounded and still fires exactly once.
#[test]
fn prop_churn_keeps_storage_bounded() {
    fn churn(moves: Vec<(u8, u16)>) -> bool {
        let t0 = t0();
        let mut queue = TimerQueue::new();
        for key in 0..100u32 {
            queue.schedule(key, at(t0, 10_000 + u64::from(key)));
        }
        for (i, (kind, ms)) in moves.iter().enumerate() {
            let key = 100 + (i % 3) as u32;
            match kind % 3 {
                0 => queue.schedule(key, at(t0, 5_000 - u64::from(ms % 4_000) - i as u64 % 500)),
                1 => {
                    queue.cancel(key);
                }
                _ => queue.schedule(key, at(t0, 5_000 + u64::from(*ms))),
            }
            assert!(queue.heap_len() <= 2 * queue.len() + COMPACT_SLACK);
        }
        let live = queue.len();
        let fired = std::iter::from_fn(|| queue.poll_expired(at(t0, 1_000_000))).count();
        assert_eq!(fired, live);
        true
    }
    QuickCheck::new()
        .rng(Gen::new(2_000))
        .quickcheck(churn as fn(Vec<(u8, u16)>) -> bool);
}

/// A periodic timer polled at arbitrary increasing times fires at poll `i` exactly when
/// `floor((n_i - start) / p) > floor((n_(i-1) - start) / p)`: fixed rate, missed ticks skipped.
#[test]
fn prop_periodic_fire_count_is_floor_arithmetic() {
    fn periodic(period: u8, start: u16, steps: Vec<u16>) -> bool {
        let t0 = t0();
        let p = u64::from(period % 50) + 1;
        let start = u64::from(start % 1_000);
        let mut timers = ServerTimers::new();
        let id = timers
            .run_every(at(t0, start), Duration::from_millis(p), 0u32)
            .unwrap();
        let (mut now, mut fired, mut want) = (start, 0u32, 0u64);
        for step in steps {
            let before = (now - start) / p;
            now += u64::from(step % 200);
            let mut this_poll = 0;
            while let Some(expired) = timers.poll_expired(at(t0, now)) {
                let Expired::Every { id: got, task } = expired else {
                    panic!("a periodic timer expired as one-shot");
                };
                assert_eq!(got, id);
                *task += 1;
                this_poll += 1;
            }
            let due = (now - start) / p > before;
            assert_eq!(this_poll, u32::from(due), "poll at {now}, period {p}");
            want += u64::from(due);
            fired += this_poll;
            // The next deadline is the first grid tick strictly after now.
            let next = start + ((now - start) / p + 1) * p;
            assert_eq!(timers.deadline(id), Some(at(t0, next)));
        }
        assert_eq!(u64::from(fired), want);
        assert_eq!(timers.cancel(id), Some(fired));
        true
    }
    QuickCheck::new().quickcheck(periodic as fn(u8, u16, Vec<u16>) -> bool);
}

#[derive(Clone, Debug)]
enum ServerOp {
    After(u16),
    Every(u8),
    /// Cancel the n-th timer created so far (modulo their count).
    Cancel(u8),
    Advance(u16),
}

impl Arbitrary for ServerOp {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 6 {
            0 | 1 => Self::After(u16::arbitrary(g) % 300),
            2 => Self::Every(u8::arbitrary(g) % 40 + 1),
            3 => Self::Cancel(u8::arbitrary(g)),
            _ => Self::Advance(u16::arbitrary(g) % 60),
        }
    }
}

/// Model of one `ServerTimers` entry (times in ms after t0).
#[derive(Debug)]
struct ModelTimer {
    id: TimerId,
    alive: bool,
    /// One-shot: `None`. Periodic: `(start, period)`.
    every: Option<(u64, u64)>,
    deadline: u64,
}

/// One-shot and periodic timers, with cancels, fire exactly when the model says, each
/// one-shot once, in deadline order; cancel returns the task exactly while it is alive.
#[test]
fn prop_server_timers_match_model() {
    fn server(ops: Vec<ServerOp>) -> bool {
        let t0 = t0();
        let mut timers = ServerTimers::new();
        let mut model: Vec<ModelTimer> = Vec::new();
        let mut now = 0u64;
        for op in ops {
            match op {
                ServerOp::After(delay) => {
                    let id = timers.run_after(
                        at(t0, now),
                        Duration::from_millis(delay.into()),
                        model.len(),
                    );
                    let deadline = now + u64::from(delay);
                    model.push(ModelTimer {
                        id,
                        alive: true,
                        every: None,
                        deadline,
                    });
                }
                ServerOp::Every(period) => {
                    let p = u64::from(period);
                    let id = timers
                        .run_every(at(t0, now), Duration::from_millis(p), model.len())
                        .unwrap();
                    let every = Some((now, p));
                    model.push(ModelTimer {
                        id,
                        alive: true,
                        every,
                        deadline: now + p,
                    });
                }
                ServerOp::Cancel(n) => {
                    if !model.is_empty() {
                        let index = usize::from(n) % model.len();
                        let entry = &mut model[index];
                        let want = entry.alive.then_some(index);
                        assert_eq!(timers.cancel(entry.id), want);
                        entry.alive = false;
                    }
                }
                ServerOp::Advance(ms) => {
                    now += u64::from(ms);
                    let mut fired = Vec::new();
                    while let Some(expired) = timers.poll_expired(at(t0, now)) {
                        let (index, periodic) = match expired {
                            Expired::Once { task, .. } => (task, false),
                            Expired::Every { task, .. } => (*task, true),
                        };
                        let entry = &mut model[index];
                        assert!(entry.alive, "timer {index} fired after cancel or expiry");
                        assert_eq!(entry.every.is_some(), periodic);
                        assert!(entry.deadline <= now, "timer {index} fired early");
                        fired.push(entry.deadline);
                        match &mut entry.every {
                            None => entry.alive = false,
                            // Next: the first tick of the start + k * p grid after now.
                            Some((start, p)) => {
                                entry.deadline = *start + ((now - *start) / *p + 1) * *p;
                            }
                        }
                    }
                    assert!(fired.is_sorted(), "fired out of deadline order: {fired:?}");
                    for entry in model.iter().filter(|e| e.alive) {
                        assert!(entry.deadline > now, "due timer did not fire: {entry:?}");
                    }
                }
            }
            let alive = model.iter().filter(|e| e.alive).count();
            assert_eq!(timers.len(), alive);
            for entry in &model {
                let want = entry.alive.then(|| at(t0, entry.deadline));
                assert_eq!(timers.deadline(entry.id), want);
            }
        }
        true
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(server as fn(Vec<ServerOp>) -> bool);
}
