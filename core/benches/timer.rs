//! `TimerQueue` with 100k armed keys: pushing deadlines later (an idle timer re-armed on every
//! read), `poll_timeout`, and expiring everything. Each case also runs on `EagerHeap`, the
//! textbook alternative (push on every reschedule, lazy deletion, compaction), to justify the
//! lazy design.
//!
//! Run: `cargo bench -p gale-core --bench timer`. Quick check: `cargo test --benches`.

use std::collections::{BinaryHeap, HashMap};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gale_core::timer::TimerQueue;

const KEYS: usize = 100_000;

#[allow(clippy::disallowed_methods)] // the origin of the virtual clock; everything else adds Durations
fn t0() -> std::time::Instant {
    std::time::Instant::now()
}

/// The operations every case needs, so each case runs on both implementations.
trait Queue: Clone {
    fn name() -> &'static str;
    fn with_capacity(n: usize) -> Self;
    fn schedule(&mut self, key: usize, at: std::time::Instant);
    fn poll_timeout(&mut self) -> Option<std::time::Instant>;
    fn poll_expired(&mut self, now: std::time::Instant) -> Option<usize>;
}

impl Queue for TimerQueue<usize> {
    fn name() -> &'static str {
        "lazy"
    }
    fn with_capacity(n: usize) -> Self {
        Self::with_capacity(n)
    }
    fn schedule(&mut self, key: usize, at: std::time::Instant) {
        self.schedule(key, at);
    }
    fn poll_timeout(&mut self) -> Option<std::time::Instant> {
        self.poll_timeout()
    }
    fn poll_expired(&mut self, now: std::time::Instant) -> Option<usize> {
        self.poll_expired(now)
    }
}

/// 100k keys due 1 s after `base`, 10 µs apart, queue settled.
fn armed<Q: Queue>(base: std::time::Instant) -> Q {
    let mut queue = Q::with_capacity(KEYS);
    for key in 0..KEYS {
        queue.schedule(key, deadline(base, 1_000_000 + key as u64 * 10));
    }
    let _ = queue.poll_timeout();
    queue
}

fn deadline(base: std::time::Instant, micros: u64) -> std::time::Instant {
    base + Duration::from_micros(micros)
}

/// Every key in turn is pushed to a later deadline, as an idle timer re-armed on each read.
fn reschedule_later<Q: Queue>(group: &mut Group<'_>, base: std::time::Instant) {
    group.bench_function(Q::name(), |b| {
        let mut queue = armed::<Q>(base);
        let (mut key, mut later) = (0, 2_000_000u64);
        b.iter(|| {
            later += 1;
            queue.schedule(key, deadline(base, later));
            key = (key + 1) % KEYS;
        });
    });
}

/// `poll_timeout` with nothing changed since the last call.
fn poll_timeout_steady<Q: Queue>(group: &mut Group<'_>, base: std::time::Instant) {
    group.bench_function(Q::name(), |b| {
        let mut queue = armed::<Q>(base);
        b.iter(|| black_box(queue.poll_timeout()));
    });
}

/// The common driver step: a read on some connection (pseudo-random) pushes its idle deadline
/// later, then the driver asks for the next deadline.
fn read_then_poll_timeout<Q: Queue>(group: &mut Group<'_>, base: std::time::Instant) {
    group.bench_function(Q::name(), |b| {
        let mut queue = armed::<Q>(base);
        let (mut state, mut later) = (1u64, 2_000_000u64);
        b.iter(|| {
            // xorshift: a key order the heap cannot anticipate.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            later += 1;
            queue.schedule(state as usize % KEYS, deadline(base, later));
            black_box(queue.poll_timeout())
        });
    });
}

/// The lazy queue's worst driver step: the connection whose deadline is next is pushed later,
/// so `poll_timeout` must move its tracker down the heap every time.
fn push_earliest_then_poll_timeout<Q: Queue>(group: &mut Group<'_>, base: std::time::Instant) {
    group.bench_function(Q::name(), |b| {
        let mut queue = armed::<Q>(base);
        let (mut key, mut later) = (0, 2_000_000u64);
        b.iter(|| {
            later += 10;
            queue.schedule(key, deadline(base, later));
            key = (key + 1) % KEYS;
            black_box(queue.poll_timeout())
        });
    });
}

/// Expire all 100k keys (reported per key), fresh or after every key was pushed later once
/// (lagging trackers in the lazy queue).
fn expire_all<Q: Queue>(group: &mut Group<'_>, base: std::time::Instant) {
    let fresh = armed::<Q>(base);
    let mut pushed = fresh.clone();
    for key in 0..KEYS {
        pushed.schedule(key, deadline(base, 2_000_000 + key as u64 * 10));
    }
    let end = deadline(base, 10_000_000);
    for (case, queue) in [("fresh", &fresh), ("pushed_later", &pushed)] {
        group.bench_function(format!("{}/{case}", Q::name()), |b| {
            // `_ref`: the clone is dropped outside the measurement.
            b.iter_batched_ref(
                || queue.clone(),
                |q| {
                    let mut n = 0;
                    while let Some(key) = q.poll_expired(end) {
                        n += black_box(key) & 1;
                    }
                    n
                },
                BatchSize::LargeInput,
            );
        });
    }
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;
type Case = fn(&mut Group<'_>, std::time::Instant);

/// Runs one case on both queues back to back in one group, so both see the same machine load.
fn compare(c: &mut Criterion, name: &str, per_key: bool, cases: [Case; 2]) {
    let base = t0();
    let mut group = c.benchmark_group(format!("timer/{name}"));
    if per_key {
        group.throughput(Throughput::Elements(KEYS as u64));
        group.sample_size(10);
    } else {
        group.throughput(Throughput::Elements(1));
    }
    for case in cases {
        case(&mut group, base);
    }
    group.finish();
}

/// The worst single call: the `cancel` that triggers a compaction of 200k heap entries (100k
/// live keys, 100k stale ones left by cancels), a stall a reactor thread sees once per ~100k
/// cancels or earlier-moves.
fn bench_compaction(c: &mut Criterion) {
    let base = t0();
    let mut queue = TimerQueue::with_capacity(2 * KEYS);
    for key in 0..2 * KEYS {
        queue.schedule(key, deadline(base, 1_000_000 + key as u64));
    }
    // Cancel until one more cancel makes the heap exceed `2 * live + 64`.
    let mut next = 0;
    while 2 * KEYS <= 2 * (queue.len() - 1) + 64 {
        queue.cancel(next);
        next += 1;
    }
    let mut group = c.benchmark_group("timer/compaction_stall");
    group.sample_size(10);
    group.bench_function("lazy/200k_entries", |b| {
        // `_ref`: the clone is dropped outside the measurement.
        b.iter_batched_ref(
            || queue.clone(),
            |q| black_box(q.cancel(next)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    macro_rules! both {
        ($case:ident) => {
            [$case::<TimerQueue<usize>> as Case, $case::<EagerHeap>]
        };
    }
    compare(c, "reschedule_later_100k", false, both!(reschedule_later));
    compare(
        c,
        "poll_timeout_steady_100k",
        false,
        both!(poll_timeout_steady),
    );
    compare(
        c,
        "read_then_poll_timeout_100k",
        false,
        both!(read_then_poll_timeout),
    );
    compare(
        c,
        "push_earliest_then_poll_timeout_100k",
        false,
        both!(push_earliest_then_poll_timeout),
    );
    compare(c, "expire_all_100k", true, both!(expire_all));
    bench_compaction(c);
}

criterion_group! {
    name = timer;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(timer);

/// Baseline: push a heap entry on every `schedule`, skip entries whose `seq` is not the key's
/// current one, rebuild the heap when stale entries outnumber live ones.
#[derive(Clone)]
struct EagerHeap {
    heap: BinaryHeap<std::cmp::Reverse<(std::time::Instant, u64, usize)>>,
    live: HashMap<usize, (std::time::Instant, u64)>,
    seq: u64,
}

impl Queue for EagerHeap {
    fn name() -> &'static str {
        "eager"
    }
    fn with_capacity(n: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(n),
            live: HashMap::with_capacity(n),
            seq: 0,
        }
    }
    fn schedule(&mut self, key: usize, at: std::time::Instant) {
        self.seq += 1;
        self.live.insert(key, (at, self.seq));
        self.heap.push(std::cmp::Reverse((at, self.seq, key)));
        if self.heap.len() > 2 * self.live.len() + 64 {
            let live = &self.live;
            self.heap
                .retain(|std::cmp::Reverse((_, s, k))| live.get(k).is_some_and(|e| e.1 == *s));
        }
    }
    fn poll_timeout(&mut self) -> Option<std::time::Instant> {
        while let Some(std::cmp::Reverse((at, s, k))) = self.heap.peek() {
            if self.live.get(k).is_some_and(|e| e.1 == *s) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }
    fn poll_expired(&mut self, now: std::time::Instant) -> Option<usize> {
        if self.poll_timeout()? > now {
            return None;
        }
        let std::cmp::Reverse((_, _, key)) = self.heap.pop()?;
        self.live.remove(&key);
        Some(key)
    }
}
