//! The task pools of every driver, through [`gale_examples::task_pool`]: admission limits,
//! FIFO starts, refusals, expiry, every task ending exactly once, and replies reaching the
//! client through a `ConnHandle`. Work that must stay running waits on a [`Gate`] the test
//! opens; every wait polls with a deadline.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use gale_core::task::{Submitted, TaskConfig};
use gale_examples::handlers::TaskLines;
use gale_examples::{Driver, TaskPool, start, task_pool};

#[test]
fn never_more_than_max_running_run_at_once() {
    for &driver in Driver::ALL {
        let pool = pool(driver, 3, 100, Duration::from_secs(60));
        let gate = Gate::new();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for _ in 0..24 {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            let submitted = pool.submit(
                Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    gate.wait();
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }),
                Box::new(|| panic!("nothing expires")),
            );
            assert!(!submitted.is_refused(), "{driver:?}");
        }
        wait_until("three tasks run", || running.load(Ordering::SeqCst) == 3);
        let stats = pool.stats();
        assert_eq!((stats.running, stats.waiting), (3, 21), "{driver:?}");
        gate.open();
        wait_until("every task is done", || pool.stats().done == 24);
        assert_eq!(peak.load(Ordering::SeqCst), 3, "{driver:?}");
        assert_eq!(running.load(Ordering::SeqCst), 0, "{driver:?}");
    }
}

#[test]
fn waiters_start_in_fifo_order() {
    for &driver in Driver::ALL {
        let pool = pool(driver, 1, 16, Duration::from_secs(60));
        let gate = Gate::new();
        let started = Arc::new(AtomicUsize::new(0));
        let blocker = {
            let (gate, started) = (gate.clone(), started.clone());
            pool.submit(
                Box::new(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.wait();
                    Ok(())
                }),
                Box::new(|| {}),
            )
        };
        assert!(matches!(blocker, Submitted::Started(_)), "{driver:?}");
        wait_until("the blocker runs", || started.load(Ordering::SeqCst) == 1);
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..10 {
            let order = order.clone();
            let submitted = pool.submit(
                Box::new(move || {
                    order.lock().unwrap().push(i);
                    Ok(())
                }),
                Box::new(|| panic!("nothing expires")),
            );
            assert!(matches!(submitted, Submitted::Waiting { .. }), "{driver:?}");
        }
        gate.open();
        wait_until("every task is done", || pool.stats().done == 11);
        assert_eq!(
            *order.lock().unwrap(),
            (0..10).collect::<Vec<_>>(),
            "{driver:?}"
        );
    }
}

#[test]
fn a_full_pool_refuses_at_once_and_runs_neither_closure() {
    for &driver in Driver::ALL {
        let pool = pool(driver, 1, 1, Duration::from_secs(60));
        let gate = Gate::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let gated = {
            let gate = gate.clone();
            move || {
                gate.wait();
                Ok(())
            }
        };
        assert!(matches!(
            pool.submit(Box::new(gated.clone()), Box::new(|| {})),
            Submitted::Started(_)
        ));
        assert!(matches!(
            pool.submit(Box::new(gated), Box::new(|| {})),
            Submitted::Waiting { .. }
        ));
        let (work, expired) = (calls.clone(), calls.clone());
        let refused = pool.submit(
            Box::new(move || {
                work.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
            Box::new(move || {
                expired.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert_eq!(refused, Submitted::Refused(()), "{driver:?}");
        assert_eq!(pool.stats().refused, 1, "{driver:?}");
        gate.open();
        wait_until("both admitted tasks are done", || pool.stats().done == 2);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{driver:?}");
    }
}

#[test]
fn a_waiter_expires_after_its_deadline_and_on_expired_runs_once() {
    for &driver in Driver::ALL {
        let wait = Duration::from_millis(50);
        let pool = pool(driver, 1, 4, wait);
        let gate = Gate::new();
        let blocker = gate.clone();
        let _ = pool.submit(
            Box::new(move || {
                blocker.wait();
                Ok(())
            }),
            Box::new(|| {}),
        );
        let ran = Arc::new(AtomicUsize::new(0));
        let expired: Vec<Arc<Mutex<Vec<Instant>>>> =
            (0..2).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        let submitted_at = Instant::now();
        for times in &expired {
            let (ran, times) = (ran.clone(), times.clone());
            let submitted = pool.submit(
                Box::new(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }),
                Box::new(move || times.lock().unwrap().push(Instant::now())),
            );
            assert!(matches!(submitted, Submitted::Waiting { .. }), "{driver:?}");
        }
        wait_until("both waiters expire", || {
            expired.iter().all(|t| !t.lock().unwrap().is_empty())
        });
        for times in &expired {
            let times = times.lock().unwrap();
            assert!(times[0] >= submitted_at + wait, "{driver:?}: expired early");
        }
        gate.open();
        wait_until("the blocker is done", || pool.stats().done == 1);
        // The slot is free again: a new task starts at once.
        let after = ran.clone();
        let submitted = pool.submit(
            Box::new(move || {
                after.fetch_add(100, Ordering::SeqCst);
                Ok(())
            }),
            Box::new(|| {}),
        );
        assert!(matches!(submitted, Submitted::Started(_)), "{driver:?}");
        wait_until("the new task is done", || pool.stats().done == 2);
        assert_eq!(ran.load(Ordering::SeqCst), 100, "{driver:?}: a waiter ran");
        for times in &expired {
            assert_eq!(times.lock().unwrap().len(), 1, "{driver:?}");
        }
        assert_eq!(pool.stats().expired, 2, "{driver:?}");
    }
}

#[test]
fn every_task_ends_exactly_once_under_load() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 40;
    for &driver in Driver::ALL {
        let pool = pool(driver, 2, 3, Duration::from_millis(3));
        let ends: Arc<Vec<AtomicUsize>> = Arc::new(
            (0..THREADS * PER_THREAD)
                .map(|_| AtomicUsize::new(0))
                .collect(),
        );
        let (ran, expired, refused, failed) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let submitters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, ends) = (pool.clone(), ends.clone());
                let (ran, expired, refused, failed) = (
                    ran.clone(),
                    expired.clone(),
                    refused.clone(),
                    failed.clone(),
                );
                thread::spawn(move || {
                    for i in t * PER_THREAD..(t + 1) * PER_THREAD {
                        let (work_ends, work_ran, work_failed) =
                            (ends.clone(), ran.clone(), failed.clone());
                        let (expired_ends, on_expired) = (ends.clone(), expired.clone());
                        let submitted = pool.submit(
                            Box::new(move || {
                                work_ends[i].fetch_add(1, Ordering::SeqCst);
                                work_ran.fetch_add(1, Ordering::SeqCst);
                                thread::sleep(Duration::from_millis((i % 3) as u64));
                                if i % 11 == 0 {
                                    work_failed.fetch_add(1, Ordering::SeqCst);
                                    panic!("task {i} panics on purpose");
                                }
                                if i % 5 == 0 {
                                    work_failed.fetch_add(1, Ordering::SeqCst);
                                    return Err(format!("task {i} fails on purpose"));
                                }
                                Ok(())
                            }),
                            Box::new(move || {
                                expired_ends[i].fetch_add(1, Ordering::SeqCst);
                                on_expired.fetch_add(1, Ordering::SeqCst);
                            }),
                        );
                        if submitted.is_refused() {
                            ends[i].fetch_add(1, Ordering::SeqCst);
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().expect("submitter thread");
        }
        let total = (THREADS * PER_THREAD) as u64;
        wait_until("every task ended", || {
            let s = pool.stats();
            s.done + s.failed + s.expired + s.refused == total && s.running + s.waiting == 0
        });
        for (i, end) in ends.iter().enumerate() {
            assert_eq!(end.load(Ordering::SeqCst), 1, "{driver:?}: task {i}");
        }
        let s = pool.stats();
        assert_eq!(s.submitted, total, "{driver:?}");
        assert_eq!(s.done + s.failed, ran.load(Ordering::SeqCst) as u64);
        assert_eq!(s.failed, failed.load(Ordering::SeqCst) as u64, "{driver:?}");
        assert_eq!(
            s.expired,
            expired.load(Ordering::SeqCst) as u64,
            "{driver:?}"
        );
        assert_eq!(
            s.refused,
            refused.load(Ordering::SeqCst) as u64,
            "{driver:?}"
        );
        assert!(s.done > 0, "{driver:?}: {s:?}");
    }
}

#[test]
fn replies_reach_the_client_through_the_connection_handle() {
    for &driver in Driver::ALL {
        // One slot, one place in line, 50 ms of patience; each line works for 300 ms.
        let pool = pool(driver, 1, 1, Duration::from_millis(50));
        let handler = TaskLines {
            pool: pool.clone(),
            work: Duration::from_millis(300),
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = start(driver, handler, Default::default(), addr).expect("server starts");
        let mut client = TcpStream::connect(server.local_addr().unwrap()).expect("connect");
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        // a runs, b waits (and times out before a is done), c finds the line full.
        client.write_all(b"a\nb\nc\n").unwrap();
        let mut replies: Vec<String> = (0..3).map(|_| read_line(&mut reader)).collect();
        replies.sort();
        assert_eq!(replies, ["busy c", "done a", "timeout b"], "{driver:?}");
        client.write_all(b"d\n").unwrap();
        assert_eq!(read_line(&mut reader), "done d", "{driver:?}");
        // The reply leaves from inside the work, before the pool records it as done.
        wait_until("the pool records d as done", || pool.stats().done == 2);
        let stats = pool.stats();
        assert_eq!(
            (stats.done, stats.expired, stats.refused),
            (2, 1, 1),
            "{driver:?}"
        );
        server.stop();
    }
}

#[test]
fn async_work_on_tokio_and_smol_counts_panics_as_failures() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut config = TaskConfig::default();
    config.max_running(NonZeroUsize::MIN);
    let tokio_pool = gale_tokio::TaskPool::with_runtime(config.clone(), runtime.handle().clone());
    let executor = Arc::new(smol::Executor::new());
    let smol_pool = gale_smol::TaskPool::with_executor(config.clone(), executor.clone());
    let order = Arc::new(Mutex::new(Vec::new()));
    let submit_both = |i: usize| {
        let (a, b) = (order.clone(), order.clone());
        let t = tokio_pool.submit_async(
            async move {
                tokio::task::yield_now().await;
                a.lock().unwrap().push(("tokio", i));
                if i == 1 {
                    panic!("async task {i} panics on purpose");
                }
                Ok(())
            },
            || {},
        );
        let s = smol_pool.submit_async(
            async move {
                smol::future::yield_now().await;
                b.lock().unwrap().push(("smol", i));
                if i == 1 {
                    panic!("async task {i} panics on purpose");
                }
                Ok(())
            },
            || {},
        );
        assert!(!t.is_refused() && !s.is_refused());
    };
    (0..4).for_each(submit_both);
    let smol_thread = {
        let executor = executor.clone();
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let t = thread::spawn(move || smol::block_on(executor.run(stop_rx.recv())));
        (t, stop_tx)
    };
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while tokio_pool.stats().done + tokio_pool.stats().failed < 4 {
            assert!(tokio::time::Instant::now() < deadline, "tokio pool stuck");
            tokio::time::sleep(POLL).await;
        }
    });
    wait_until("the smol pool is done", || {
        smol_pool.stats().done + smol_pool.stats().failed == 4
    });
    drop(smol_thread.1);
    smol_thread.0.join().unwrap().ok();
    for (name, stats) in [("tokio", tokio_pool.stats()), ("smol", smol_pool.stats())] {
        assert_eq!((stats.done, stats.failed), (3, 1), "{name}");
        let ran: Vec<usize> = order
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|&(_, i)| i)
            .collect();
        assert_eq!(ran, [0, 1, 2, 3], "{name}: FIFO with one slot");
    }
}

/// A pool on `driver` with these limits.
fn pool(
    driver: Driver,
    max_running: usize,
    max_waiting: usize,
    wait: Duration,
) -> Arc<dyn TaskPool> {
    let mut config = TaskConfig::default();
    config
        .max_running(NonZeroUsize::new(max_running).unwrap())
        .max_waiting(max_waiting)
        .wait_timeout(wait);
    task_pool(driver, config).expect("the pool starts")
}

/// Holds work until the test opens it (or `TIMEOUT` passes, so that a broken pool fails the
/// test instead of hanging it).
#[derive(Clone)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn new() -> Self {
        Self(Arc::new((Mutex::new(false), Condvar::new())))
    }

    fn open(&self) {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.1.notify_all();
    }

    fn wait(&self) {
        let open = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .0
            .1
            .wait_timeout_while(open, TIMEOUT, |open| !*open)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply");
    line.trim_end().to_owned()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(POLL);
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(2);
