//! The intake engine on a SQLite journal: admission through the task queue, the answer after
//! the journal write, retries, recovery of a crashed run, idempotency, shutdown; and the HTTP
//! answers through gale-core's virtual-clock harness.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gale_core::ConnConfig;
use gale_core::testing::Harness;
use gale_examples::intake::store::{
    BoxFuture, Inserted, MessageState, NewMessage, Store, StoreError, StoreStats, StoredMessage,
};
use gale_examples::intake::{
    Action, Answer, Intake, IntakeApi, IntakeConfig, RetryPolicy, SqlStore, SqlStoreConfig,
    SqliteSync,
};
use tokio::sync::{Semaphore, mpsc};

/// Reports every processed message id; waits for a permit first when gated.
struct Probe {
    done: mpsc::UnboundedSender<i64>,
    gate: Option<Arc<Semaphore>>,
    /// Attempts that fail before one succeeds.
    fail_first: u32,
    calls: AtomicU32,
}

impl Action for Probe {
    fn process<'a>(&'a self, msg: &'a StoredMessage) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
                return Err(format!("planned failure of attempt {}", msg.attempts));
            }
            let _ = self.done.send(msg.id);
            Ok(())
        })
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<SqlStore>,
    intake: Intake,
    done: mpsc::UnboundedReceiver<i64>,
    gate: Arc<Semaphore>,
}

async fn setup(config: IntakeConfig, gated: bool, fail_first: u32, retry: RetryPolicy) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, retry, config.lease).await);
    setup_with(dir, store, config, gated, fail_first).await
}

async fn open(dir: &tempfile::TempDir, retry: RetryPolicy, lease: Duration) -> SqlStore {
    let url = format!("sqlite://{}/journal.db", dir.path().display());
    let config = SqlStoreConfig {
        lease,
        retry,
        // No fsync per commit, so a slow disk does not decide the tests (see the note on
        // `Backend::sqlite` in tests/intake.rs).
        sqlite_synchronous: SqliteSync::Normal,
        ..SqlStoreConfig::default()
    };
    SqlStore::open(&url, &config).await.unwrap()
}

async fn setup_with(
    dir: tempfile::TempDir,
    store: Arc<SqlStore>,
    config: IntakeConfig,
    gated: bool,
    fail_first: u32,
) -> Setup {
    let (tx, done) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let action = Arc::new(Probe {
        done: tx,
        gate: gated.then(|| Arc::clone(&gate)),
        fail_first,
        calls: AtomicU32::new(0),
    });
    let intake = Intake::start(
        tokio::runtime::Handle::current(),
        Arc::clone(&store) as Arc<dyn Store>,
        action,
        config,
    )
    .await
    .unwrap();
    Setup {
        _dir: dir,
        store,
        intake,
        done,
        gate,
    }
}

fn config(max_running: usize, max_waiting: usize, wait: Duration) -> IntakeConfig {
    IntakeConfig {
        max_running: NonZeroUsize::new(max_running).unwrap(),
        max_waiting,
        wait_timeout: wait,
        worker_id: "test-worker".into(),
        poll_interval: Duration::from_millis(20),
        ..IntakeConfig::default()
    }
}

/// Submits a message; the answer arrives on the returned channel.
fn submit(intake: &Intake, text: &str, key: Option<&str>) -> mpsc::UnboundedReceiver<Answer> {
    let (tx, rx) = mpsc::unbounded_channel();
    intake.submit(
        Bytes::from(format!("{{\"msg\":\"{text}\"}}")),
        key.map(str::to_owned),
        Box::new(move |answer| {
            let _ = tx.send(answer);
        }),
    );
    rx
}

async fn answer(rx: &mut mpsc::UnboundedReceiver<Answer>) -> Answer {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an answer in time")
        .expect("exactly one answer")
}

fn accepted_id(answer: &Answer) -> i64 {
    match answer {
        Answer::Accepted { id } => *id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_is_journaled_before_the_answer_and_processed_once() {
    let mut s = setup(config(4, 1024, WAIT), false, 0, RetryPolicy::default()).await;
    let mut pending: Vec<_> = (0..60)
        .map(|i| submit(&s.intake, &format!("m{i}"), None))
        .collect();
    let mut ids = Vec::new();
    for rx in &mut pending {
        let id = accepted_id(&answer(rx).await);
        let stored = s
            .store
            .get(id)
            .await
            .unwrap()
            .expect("journaled before the answer");
        assert_ne!(stored.state, MessageState::Pending);
        ids.push(id);
    }
    assert!(s.intake.shutdown(WAIT).await, "everything finished");
    let mut processed = Vec::new();
    while let Ok(id) = s.done.try_recv() {
        processed.push(id);
    }
    processed.sort_unstable();
    ids.sort_unstable();
    assert_eq!(processed, ids, "each message processed exactly once");
    for id in ids {
        assert_eq!(
            s.store.get(id).await.unwrap().unwrap().state,
            MessageState::Done
        );
    }
    assert_eq!(s.intake.load(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_slots_make_requests_wait_then_time_out_and_a_full_line_refuses() {
    let wait = Duration::from_millis(300);
    let mut s = setup(config(2, 2, wait), true, 0, RetryPolicy::default()).await;
    let mut running: Vec<_> = (0..2)
        .map(|i| submit(&s.intake, &format!("run{i}"), None))
        .collect();
    for rx in &mut running {
        accepted_id(&answer(rx).await);
    }
    let mut waiting: Vec<_> = (0..2)
        .map(|i| submit(&s.intake, &format!("wait{i}"), None))
        .collect();
    assert_eq!(s.intake.load(), (2, 2));
    let mut refused = submit(&s.intake, "refused", None);
    assert_eq!(
        refused.try_recv().ok(),
        Some(Answer::Busy),
        "answered at once"
    );
    for rx in &mut waiting {
        assert_eq!(answer(rx).await, Answer::TimedOut);
    }
    assert_eq!(s.intake.load(), (2, 0));
    s.gate.add_permits(2);
    for _ in 0..2 {
        tokio::time::timeout(WAIT, s.done.recv())
            .await
            .unwrap()
            .unwrap();
    }
    assert!(s.intake.shutdown(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_starts_when_a_slot_frees() {
    let mut s = setup(config(1, 4, WAIT), true, 0, RetryPolicy::default()).await;
    let mut first = submit(&s.intake, "first", None);
    accepted_id(&answer(&mut first).await);
    let mut second = submit(&s.intake, "second", None);
    assert!(second.try_recv().is_err(), "waits for the slot");
    s.gate.add_permits(1);
    let id = accepted_id(&answer(&mut second).await);
    s.gate.add_permits(1);
    let mut done = [s.done.recv().await.unwrap(), s.done.recv().await.unwrap()];
    done.sort_unstable();
    assert_eq!(done[1], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_after_its_backoff() {
    let retry = RetryPolicy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(50),
        max_attempts: 3,
    };
    let mut s = setup(config(2, 8, WAIT), false, 2, retry).await;
    let id = accepted_id(&answer(&mut submit(&s.intake, "flaky", None)).await);
    let processed = tokio::time::timeout(WAIT, s.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(processed, id);
    assert!(s.intake.shutdown(WAIT).await);
    let msg = s.store.get(id).await.unwrap().unwrap();
    assert_eq!((msg.state, msg.attempts), (MessageState::Done, 3));
    assert_eq!(
        msg.last_error.as_deref(),
        Some("planned failure of attempt 2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_a_crashed_run_are_processed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, RetryPolicy::default(), Duration::from_secs(30)).await);
    // The previous run journaled and answered two messages, then was killed.
    let mut ids = Vec::new();
    for body in [&b"{\"msg\":\"a\"}"[..], b"{\"msg\":\"b\"}"] {
        let new = NewMessage {
            idempotency_key: None,
            body,
            worker: "test-worker",
            now_ms: gale_examples::intake::worker::epoch_ms(),
        };
        let Inserted::New(msg) = store.insert(new).await.unwrap() else {
            panic!("new message")
        };
        ids.push(msg.id);
    }
    let mut s = setup_with(dir, store, config(2, 8, WAIT), false, 0).await;
    let mut processed = vec![
        tokio::time::timeout(WAIT, s.done.recv())
            .await
            .unwrap()
            .unwrap(),
        tokio::time::timeout(WAIT, s.done.recv())
            .await
            .unwrap()
            .unwrap(),
    ];
    processed.sort_unstable();
    assert_eq!(processed, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_answers_like_the_first_time() {
    let s = setup(config(2, 8, WAIT), false, 0, RetryPolicy::default()).await;
    let id = accepted_id(&answer(&mut submit(&s.intake, "once", Some("k1"))).await);
    assert_eq!(
        answer(&mut submit(&s.intake, "once", Some("k1"))).await,
        Answer::Duplicate { id }
    );
    assert_eq!(
        answer(&mut submit(&s.intake, "twice", Some("k1"))).await,
        Answer::KeyReused { id }
    );
    assert!(s.intake.shutdown(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_intake_refuses_and_finishes_what_it_accepted() {
    let mut s = setup(config(1, 8, WAIT), true, 0, RetryPolicy::default()).await;
    accepted_id(&answer(&mut submit(&s.intake, "in flight", None)).await);
    let stopping = tokio::spawn(s.intake.shutdown(WAIT));
    let mut late = submit(&s.intake, "late", None);
    assert_eq!(
        late.try_recv().ok(),
        Some(Answer::Stopping),
        "answered at once"
    );
    s.gate.add_permits(1);
    assert!(stopping.await.unwrap(), "the accepted message finished");
    assert!(s.done.try_recv().is_ok());
}

/// A journal that is down.
struct Down;

impl Store for Down {
    fn insert<'a>(&'a self, _msg: NewMessage<'a>) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async { Err(StoreError::Config("journal down".into())) })
    }
    fn claim<'a>(
        &'a self,
        _: &'a str,
        _: usize,
        _: i64,
    ) -> BoxFuture<'a, Result<Vec<StoredMessage>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn renew<'a>(&'a self, _: &'a StoredMessage, _: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn mark_done<'a>(
        &'a self,
        _: &'a StoredMessage,
        _: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn mark_failed<'a>(
        &'a self,
        _: &'a StoredMessage,
        _: &'a str,
        _: i64,
    ) -> BoxFuture<'a, Result<gale_examples::intake::store::Failure, StoreError>> {
        Box::pin(async { Ok(gale_examples::intake::store::Failure::Terminal) })
    }
    fn release<'a>(
        &'a self,
        _: &'a StoredMessage,
        _: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn recover<'a>(&'a self, _: &'a str, _: i64) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }
    fn get(&self, _: i64) -> BoxFuture<'_, Result<Option<StoredMessage>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        Box::pin(async { Ok(StoreStats::default()) })
    }
    fn purge(&self, _: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_is_down_means_no_200() {
    let (tx, _done) = mpsc::unbounded_channel();
    let action = Arc::new(Probe {
        done: tx,
        gate: None,
        fail_first: 0,
        calls: AtomicU32::new(0),
    });
    let intake = Intake::start(
        tokio::runtime::Handle::current(),
        Arc::new(Down),
        action,
        config(2, 8, WAIT),
    )
    .await
    .unwrap();
    let got = answer(&mut submit(&intake, "x", None)).await;
    assert!(
        matches!(got, Answer::Unavailable(ref e) if e.contains("journal down")),
        "{got:?}"
    );
    assert!(intake.shutdown(WAIT).await);
}

// ---- HTTP answers through the harness --------------------------------------------------

type Fixture = (
    tokio::runtime::Runtime,
    tempfile::TempDir,
    Arc<SqlStore>,
    Harness<IntakeApi>,
);

fn harness() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(open(&dir, RetryPolicy::default(), Duration::from_secs(30)));
    let store = Arc::new(store);
    let intake = rt.block_on(async {
        let store = Arc::clone(&store) as Arc<dyn Store>;
        let (tx, _done) = mpsc::unbounded_channel();
        let action = Arc::new(Probe {
            done: tx,
            gate: None,
            fail_first: 0,
            calls: AtomicU32::new(0),
        });
        Intake::start(rt.handle().clone(), store, action, config(4, 16, WAIT))
            .await
            .unwrap()
    });
    let mut api = IntakeApi::new(intake);
    api.limits_mut().max_body(1024);
    let h = Harness::new(Arc::new(api), ConnConfig::default(), t0());
    (rt, dir, store, h)
}

#[allow(clippy::disallowed_methods)] // the origin of the virtual clock; everything else adds Durations
fn t0() -> Instant {
    Instant::now()
}

fn post(path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Steps the harness until the connection wrote something (answers from the intake arrive
/// on its runtime's threads).
fn written(h: &mut Harness<IntakeApi>) -> String {
    let deadline = Instant::now() + WAIT;
    while h.written().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        h.step();
    }
    String::from_utf8_lossy(&h.take_written()).into_owned()
}

#[test]
fn http_answers_follow_gse() {
    let (_rt, _dir, _store, mut h) = harness();

    h.peer_send(&post("/task/v1/message", r#"{"msg":"test message 1"}"#, ""));
    let ok = written(&mut h);
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.ends_with("\r\n\r\nMessage successfully received!\n"),
        "{ok}"
    );
    assert!(ok.contains("Content-Type: text/plain; charset=utf-8\r\n"));

    h.peer_send(&post("/task/v1/message", "{bad json", ""));
    let bad = written(&mut h);
    assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
    assert!(
        bad.contains(
            "\r\n\r\nFailed to decode request body: key must be a string at line 1 column 2.\n"
        ),
        "{bad}"
    );

    h.peer_send(&post("/task/v1/message", "", ""));
    assert!(written(&mut h).ends_with("Failed to decode request body: EOF.\n"));

    h.peer_send(&post("/task/v2/nope?x=1", "{}", ""));
    let uri = written(&mut h);
    assert!(uri.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{uri}");
    assert!(
        uri.ends_with("bad request.Got invalid uri: \"/task/v2/nope?x=1\".\n"),
        "{uri}"
    );

    h.peer_send(b"GET /task/v1/message HTTP/1.1\r\nHost: t\r\n\r\n");
    let method = written(&mut h);
    assert!(
        method.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{method}"
    );
    assert!(method.contains("Allow: POST\r\n"));

    h.peer_send(&post("/task/v1/message", "{}", "Idempotency-Key: a b\r\n"));
    assert!(written(&mut h).starts_with("HTTP/1.1 400 Bad Request\r\n"));

    h.peer_send(&post("/task/v1/message", "{}", "Idempotency-Key: k-7\r\n"));
    let first = written(&mut h);
    h.peer_send(&post("/task/v1/message", "{}", "Idempotency-Key: k-7\r\n"));
    let again = written(&mut h);
    assert!(again.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(again.contains("Idempotent-Replayed: true\r\n"));
    let id = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("X-Message-Id"))
            .map(str::to_owned)
    };
    assert_eq!(id(&first), id(&again), "answers as the first time");
    assert!(h.closed().is_none(), "all of these keep the connection");

    let big = "x".repeat(2000);
    h.peer_send(&post("/task/v1/message", &big, ""));
    let too_big = written(&mut h);
    assert!(
        too_big.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{too_big}"
    );
    assert!(
        h.closed().is_some(),
        "an oversize body closes the connection"
    );
}

#[test]
fn pipelined_posts_are_answered_in_order() {
    let (rt, _dir, store, mut h) = harness();
    let burst: Vec<u8> = (0..10)
        .flat_map(|i| post("/task/v1/message", &format!("{{\"msg\":\"p{i}\"}}"), ""))
        .collect();
    h.peer_send(&burst);
    let mut out = String::new();
    let deadline = Instant::now() + WAIT;
    while out.matches("HTTP/1.1 200 OK").count() < 10 && Instant::now() < deadline {
        out.push_str(&written(&mut h));
    }
    let ids: Vec<i64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("X-Message-Id: "))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 10, "{out}");
    for (i, id) in ids.into_iter().enumerate() {
        let msg = rt.block_on(store.get(id)).unwrap().unwrap();
        let body = String::from_utf8(msg.body).unwrap();
        assert_eq!(
            body,
            format!("{{\"msg\":\"p{i}\"}}"),
            "response {i} answers request {i}"
        );
    }
}

const WAIT: Duration = Duration::from_secs(10);
