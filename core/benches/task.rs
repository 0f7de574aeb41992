//! Task queue throughput: submit, run and report, with and without a waiting line.
//!
//! Run with `cargo bench -p gale-core --bench task`; `cargo test --benches` runs each once.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gale_core::task::{Outcome, Submitted, TaskConfig, TaskEvent, TaskId, TaskQueue};

#[allow(clippy::disallowed_methods)] // the origin of the virtual clock; everything else adds Durations
fn t0() -> Instant {
    Instant::now()
}

fn queue(max_running: usize, max_waiting: usize) -> TaskQueue<u64> {
    let mut config = TaskConfig::default();
    config
        .max_running(NonZeroUsize::new(max_running).expect("invariant: nonzero"))
        .max_waiting(max_waiting);
    TaskQueue::new(config)
}

/// Polls every event, returning the ids that must run.
fn drain(q: &mut TaskQueue<u64>, running: &mut Vec<TaskId>) {
    while let Some(event) = q.poll_event() {
        if let TaskEvent::Run { id, task } = event {
            black_box(task);
            running.push(id);
        }
    }
}

/// One cycle with a free slot: submit, poll Run, report done.
fn no_waiters(c: &mut Criterion) {
    let mut group = c.benchmark_group("task_queue");
    group.throughput(Throughput::Elements(1));
    group.bench_function("submit_run_done/no_waiters", |b| {
        let now = t0();
        let mut q = queue(10, 1024);
        let mut running = Vec::with_capacity(16);
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let submitted = q.submit(n, now);
            debug_assert!(matches!(submitted, Submitted::Started(_)));
            drain(&mut q, &mut running);
            let id = running.pop().expect("invariant: the task started");
            q.handle_task_done(id, Outcome::Done, now)
                .expect("invariant: it runs");
        });
    });
    group.finish();
}

/// Steady state with every slot busy and a long line: each cycle submits a waiter, reports the
/// oldest running task and starts the front waiter. Deadlines grow with submission order (the
/// configured timeout) or are scattered (explicit deadlines) to exercise the deadline index.
fn with_waiters(c: &mut Criterion) {
    let mut group = c.benchmark_group("task_queue");
    group.throughput(Throughput::Elements(1));
    for (name, scattered) in [("fifo_deadlines", false), ("scattered_deadlines", true)] {
        for waiting in [100usize, 1000] {
            let label = format!("submit_run_done/{waiting}_waiters/{name}");
            group.bench_function(label, |b| {
                let t0 = t0();
                let mut now = t0;
                let mut q = queue(10, waiting + 1);
                let mut running = std::collections::VecDeque::new();
                let submit = |q: &mut TaskQueue<u64>, n: u64, now: Instant| {
                    if scattered {
                        let deadline = now + Duration::from_secs(30 + (n * 7919) % 600);
                        q.submit_with_deadline(n, deadline, now)
                    } else {
                        q.submit(n, now)
                    }
                };
                let mut n = 0u64;
                while q.stats().waiting < waiting {
                    n += 1;
                    let _ = submit(&mut q, n, now);
                }
                let mut started = Vec::new();
                drain(&mut q, &mut started);
                running.extend(started.drain(..));
                b.iter(|| {
                    n += 1;
                    now += Duration::from_micros(1);
                    let submitted = submit(&mut q, n, now);
                    debug_assert!(matches!(submitted, Submitted::Waiting { .. }));
                    let id = running.pop_front().expect("invariant: slots are full");
                    q.handle_task_done(id, Outcome::Done, now)
                        .expect("invariant: it runs");
                    drain(&mut q, &mut started);
                    running.extend(started.drain(..));
                    black_box(q.poll_timeout());
                });
            });
        }
    }
    group.finish();
}

/// Fill the line, then expire it all at once.
fn expire(c: &mut Criterion) {
    let mut group = c.benchmark_group("task_queue");
    let waiting = 1000u64;
    group.throughput(Throughput::Elements(waiting));
    group.bench_function("submit_expire/1000_waiters", |b| {
        let t0 = t0();
        b.iter(|| {
            let mut q = queue(1, 1000);
            for n in 0..=waiting {
                let _ = q.submit(n, t0);
            }
            q.handle_timeout(t0 + TaskConfig::DEFAULT_WAIT_TIMEOUT);
            let mut expired = 0;
            while let Some(event) = q.poll_event() {
                expired += u64::from(matches!(event, TaskEvent::Expired { .. }));
            }
            debug_assert_eq!(expired, waiting);
            black_box(expired)
        });
    });
    group.finish();
}

criterion_group!(benches, no_waiters, with_waiters, expire);
criterion_main!(benches);
