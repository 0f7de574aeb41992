//! The intake journal against real databases: SQLite in a temporary file always, MariaDB /
//! MySQL and PostgreSQL when `GALE_TEST_MYSQL_URL` / `GALE_TEST_POSTGRES_URL` are set
//! (`.ci/services` starts both and prints the URLs). Time is passed in, never slept on.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gale_examples::intake::action::{Action, TableAction};
use gale_examples::intake::sql::{Dialect, SqlStore, SqlStoreConfig, SqliteSync, connect};
use gale_examples::intake::store::{
    Failure, Inserted, MessageState, NewMessage, RetryPolicy, Store, StoreError, StoredMessage,
};
use sqlx::{Executor, Row};

/// Where one run of a test keeps its journal.
#[derive(Clone)]
struct Ctx {
    url: String,
    table: String,
}

impl Ctx {
    async fn store(&self, lease_ms: u64, retry: RetryPolicy) -> SqlStore {
        let config = SqlStoreConfig {
            table: self.table.clone(),
            lease: Duration::from_millis(lease_ms),
            retry,
            // No fsync per commit: these tests are about the SQL, and a slow disk must not
            // turn SQLite's one-commit-per-fsync into busy_timeout errors (see the note on
            // `Backend::sqlite` in tests/intake.rs).
            sqlite_synchronous: SqliteSync::Normal,
            max_connections: Some(4),
        };
        SqlStore::open(&self.url, &config)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    async fn default_store(&self) -> SqlStore {
        self.store(LEASE_MS, RetryPolicy::default()).await
    }
}

/// Runs `test` on SQLite, then on each server database whose URL is set.
async fn each_backend<F, Fut>(name: &str, test: F)
where
    F: Fn(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    test(Ctx {
        url: format!("sqlite://{}/journal.db", dir.path().display()),
        table: "intake_messages".into(),
    })
    .await;
    for (var, backend) in [
        ("GALE_TEST_MYSQL_URL", "MariaDB/MySQL"),
        ("GALE_TEST_POSTGRES_URL", "PostgreSQL"),
    ] {
        let Ok(url) = std::env::var(var) else {
            eprintln!("note: {var} is not set: {name} did not run on {backend}");
            continue;
        };
        let table = format!("t_{name}_{}", std::process::id());
        let ctx = Ctx { url, table };
        drop_tables(&ctx).await;
        test(ctx.clone()).await;
        drop_tables(&ctx).await;
    }
}

async fn drop_tables(ctx: &Ctx) {
    let dialect = Dialect::of_url(&ctx.url).unwrap();
    let pool = connect(&ctx.url, dialect, SqliteSync::Full, Some(1))
        .await
        .unwrap();
    for table in [ctx.table.clone(), format!("{}_out", ctx.table)] {
        pool.execute(format!("DROP TABLE IF EXISTS {table}").as_str())
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn insert(
    store: &SqlStore,
    key: Option<&str>,
    body: &[u8],
    worker: &str,
    now: i64,
) -> Inserted {
    store
        .insert(NewMessage {
            idempotency_key: key,
            body,
            worker,
            now_ms: now,
        })
        .await
        .unwrap()
}

async fn insert_new(store: &SqlStore, body: &[u8], worker: &str, now: i64) -> StoredMessage {
    match insert(store, None, body, worker, now).await {
        Inserted::New(msg) => msg,
        other => panic!("expected a new message, got {other:?}"),
    }
}

async fn get(store: &SqlStore, id: i64) -> StoredMessage {
    store.get(id).await.unwrap().expect("the message exists")
}

#[tokio::test]
async fn insert_claims_for_the_first_attempt_and_done_is_final() {
    each_backend("done", |ctx| async move {
        let store = ctx.default_store().await;
        let msg = insert_new(&store, br#"{"msg":"a"}"#, "w1", T0).await;
        assert_eq!(msg.state, MessageState::Claimed);
        assert_eq!(msg.attempts, 1);
        assert_eq!(
            get(&store, msg.id).await,
            msg,
            "what insert returns is what is stored"
        );
        store.mark_done(&msg, T0 + 5).await.unwrap();
        let done = get(&store, msg.id).await;
        assert_eq!(done.state, MessageState::Done);
        assert_eq!(done.claimed_by, None);
        assert_eq!(done.updated_at, T0 + 5);
        assert!(store.claim("w2", 10, T0 + HOUR).await.unwrap().is_empty());
        assert!(matches!(
            store.mark_done(&msg, T0 + 6).await,
            Err(StoreError::LeaseLost { .. })
        ));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn failures_back_off_exponentially_then_fail_for_good() {
    each_backend("backoff", |ctx| async move {
        let retry = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(250),
            max_attempts: 4,
        };
        let store = ctx.store(LEASE_MS, retry).await;
        let mut msg = insert_new(&store, b"{}", "w", T0).await;
        let mut now = T0;
        for (attempt, wait) in [(1, 100), (2, 200), (3, 250)] {
            assert_eq!(msg.attempts, attempt);
            let failure = store
                .mark_failed(&msg, &format!("boom {attempt}"), now)
                .await
                .unwrap();
            assert_eq!(failure, Failure::Retry { at: now + wait });
            let pending = get(&store, msg.id).await;
            assert_eq!(pending.state, MessageState::Pending);
            assert_eq!(
                pending.last_error.as_deref(),
                Some(format!("boom {attempt}").as_str())
            );
            assert!(
                store
                    .claim("w", 10, now + wait - 1)
                    .await
                    .unwrap()
                    .is_empty(),
                "not due yet"
            );
            now += wait;
            let mut claimed = store.claim("w", 10, now).await.unwrap();
            assert_eq!(claimed.len(), 1);
            msg = claimed.remove(0);
        }
        assert_eq!(msg.attempts, 4);
        assert_eq!(
            store.mark_failed(&msg, "last", now).await.unwrap(),
            Failure::Terminal
        );
        let failed = get(&store, msg.id).await;
        assert_eq!(failed.state, MessageState::Failed);
        assert_eq!(failed.last_error.as_deref(), Some("last"));
        assert_eq!(failed.attempts, 4);
        assert!(store.claim("w", 10, now + HOUR).await.unwrap().is_empty());
        assert_eq!(store.stats().await.unwrap().failed, 1);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_fences_the_old_worker() {
    each_backend("lease", |ctx| async move {
        let store = ctx.store(1_000, RetryPolicy::default()).await;
        let first = insert_new(&store, b"{}", "crashed", T0).await;
        assert!(
            store.claim("w2", 10, T0 + 999).await.unwrap().is_empty(),
            "lease still held"
        );
        let mut taken = store.claim("w2", 10, T0 + 1_000).await.unwrap();
        assert_eq!(taken.len(), 1);
        let taken = taken.remove(0);
        assert_eq!(taken.id, first.id);
        assert_eq!(taken.attempts, 2);
        assert_eq!(taken.claimed_by.as_deref(), Some("w2"));
        assert_eq!(taken.claimed_until, Some(T0 + 2_000));
        // The first worker comes back from a pause: it may not report any more.
        assert!(matches!(
            store.mark_done(&first, T0 + 1_001).await,
            Err(StoreError::LeaseLost { .. })
        ));
        assert!(matches!(
            store.renew(&first, T0 + 1_001).await,
            Err(StoreError::LeaseLost { .. })
        ));
        assert!(matches!(
            store.mark_failed(&first, "late", T0 + 1_001).await,
            Err(StoreError::LeaseLost { .. })
        ));
        store.mark_done(&taken, T0 + 1_002).await.unwrap();
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn renewing_a_lease_keeps_others_away() {
    each_backend("renew", |ctx| async move {
        let store = ctx.store(1_000, RetryPolicy::default()).await;
        let msg = insert_new(&store, b"{}", "w1", T0).await;
        store.renew(&msg, T0 + 900).await.unwrap();
        assert!(store.claim("w2", 10, T0 + 1_500).await.unwrap().is_empty());
        assert_eq!(get(&store, msg.id).await.claimed_until, Some(T0 + 1_900));
        assert_eq!(store.claim("w2", 10, T0 + 1_900).await.unwrap().len(), 1);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_lease_expiring_on_the_last_attempt_fails_the_message() {
    each_backend("poison", |ctx| async move {
        let retry = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let store = ctx.store(1_000, retry).await;
        let msg = insert_new(&store, b"{}", "crashed", T0).await;
        assert!(store.claim("w2", 10, T0 + 1_000).await.unwrap().is_empty());
        let failed = get(&store, msg.id).await;
        assert_eq!(failed.state, MessageState::Failed);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("lease expired during the last attempt")
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_restarted_worker_recovers_its_claims_at_once() {
    each_backend("recover", |ctx| async move {
        let store = ctx.default_store().await;
        let a = insert_new(&store, b"{}", "host:8080", T0).await;
        let other = insert_new(&store, b"{}", "other:8080", T0).await;
        assert_eq!(store.recover("host:8080", T0 + 1).await.unwrap(), 1);
        let pending = get(&store, a.id).await;
        assert_eq!(pending.state, MessageState::Pending);
        assert_eq!(pending.attempts, 1, "the interrupted attempt counts");
        let claimed = store.claim("host:8080", 10, T0 + 1).await.unwrap();
        assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), [a.id]);
        assert_eq!(claimed[0].attempts, 2);
        assert_eq!(
            get(&store, other.id).await.state,
            MessageState::Claimed,
            "others' claims are untouched"
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn release_gives_a_claim_back_without_counting_it() {
    each_backend("release", |ctx| async move {
        let store = ctx.default_store().await;
        let msg = insert_new(&store, b"{}", "seed", T0).await;
        store.recover("seed", T0).await.unwrap();
        let claimed = store.claim("w", 1, T0 + 1).await.unwrap().remove(0);
        assert_eq!(claimed.attempts, 2);
        store.release(&claimed, T0 + 2).await.unwrap();
        let back = get(&store, msg.id).await;
        assert_eq!((back.state, back.attempts), (MessageState::Pending, 1));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_is_accepted_once() {
    each_backend("idem", |ctx| async move {
        let store = ctx.default_store().await;
        let Inserted::New(first) = insert(&store, Some("key-1"), b"body", "w", T0).await else {
            panic!("first use of the key");
        };
        assert_eq!(
            insert(&store, Some("key-1"), b"body", "w", T0 + 1).await,
            Inserted::Duplicate {
                id: first.id,
                same_body: true,
                state: MessageState::Claimed
            }
        );
        store.mark_done(&first, T0 + 2).await.unwrap();
        assert_eq!(
            insert(&store, Some("key-1"), b"other", "w", T0 + 3).await,
            Inserted::Duplicate {
                id: first.id,
                same_body: false,
                state: MessageState::Done
            }
        );
        assert!(
            matches!(
                insert(&store, Some("KEY-1"), b"body", "w", T0).await,
                Inserted::New(_)
            ),
            "keys are case-sensitive"
        );
        let a = insert_new(&store, b"body", "w", T0).await;
        let b = insert_new(&store, b"body", "w", T0).await;
        assert_ne!(a.id, b.id, "without a key every request is a new message");
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn stats_count_open_messages_and_purge_forgets_old_done_ones() {
    each_backend("stats", |ctx| async move {
        let store = ctx.default_store().await;
        let done = insert_new(&store, b"{}", "w", T0).await;
        store.mark_done(&done, T0 + 10).await.unwrap();
        let _claimed = insert_new(&store, b"{}", "w", T0 + 20).await;
        let pending = insert_new(&store, b"{}", "seed", T0 + 30).await;
        store.recover("seed", T0 + 31).await.unwrap();
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.pending, stats.claimed, stats.failed), (1, 1, 0));
        assert_eq!(stats.oldest_open_created_at, Some(T0 + 20));
        assert_eq!(
            store.purge(T0 + 10).await.unwrap(),
            0,
            "strictly older only"
        );
        assert_eq!(store.purge(T0 + 11).await.unwrap(), 1);
        assert!(store.get(done.id).await.unwrap().is_none());
        assert!(store.get(pending.id).await.unwrap().is_some());
        store.close().await;
    })
    .await;
}

/// Two "servers" (two pools on one database), each with several concurrent claimers, drain
/// a backlog: every message is claimed by exactly one of them and done once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_process_each_message_exactly_once() {
    each_backend("race", |ctx| async move {
        const N: usize = 300;
        let seed = ctx.default_store().await;
        let mut ids = HashSet::new();
        for i in 0..N {
            ids.insert(
                insert_new(&seed, format!("{{\"msg\":\"{i}\"}}").as_bytes(), "seed", T0)
                    .await
                    .id,
            );
        }
        seed.recover("seed", T0).await.unwrap();
        seed.close().await;

        let servers = [
            Arc::new(ctx.default_store().await),
            Arc::new(ctx.default_store().await),
        ];
        let mut claimers = Vec::new();
        for (s, store) in servers.iter().enumerate() {
            for c in 0..4 {
                let store = Arc::clone(store);
                let worker = format!("server{s}-claimer{c}");
                claimers.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim(&worker, 7, T0 + 1).await.expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        for msg in batch {
                            assert_eq!(msg.attempts, 2);
                            store
                                .mark_done(&msg, T0 + 2)
                                .await
                                .expect("the claimer holds the lease");
                            mine.push(msg.id);
                        }
                    }
                }));
            }
        }
        let mut seen = Vec::new();
        for claimer in claimers {
            seen.extend(claimer.await.unwrap());
        }
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(seen.len(), N, "no message was claimed twice");
        assert_eq!(unique, ids, "every message was claimed");
        let stats = servers[0].stats().await.unwrap();
        assert_eq!((stats.pending, stats.claimed), (0, 0));
        for store in servers {
            store.close().await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_table_action_stores_each_message_once() {
    each_backend("action", |ctx| async move {
        let store = ctx.default_store().await;
        let action = TableAction::with_pool(
            store.pool().clone(),
            store.dialect(),
            &format!("{}_out", ctx.table),
        )
        .await
        .unwrap();
        let msg = insert_new(&store, br#"{"msg":"hello"}"#, "w", T0).await;
        action.process(&msg).await.unwrap();
        action
            .process(&msg)
            .await
            .expect("a repeated attempt is not an error");
        let row = sqlx::query(&store.dialect().sql(&format!(
            "SELECT COUNT(*) AS n, MAX(message_id) AS id FROM {}_out",
            ctx.table
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>("n"), 1);
        assert_eq!(row.get::<i64, _>("id"), msg.id);
        let bad = insert_new(&store, b"not json", "w", T0).await;
        assert!(
            action
                .process(&bad)
                .await
                .unwrap_err()
                .starts_with("body is not a message")
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/j.db", dir.path().display());
    let config = SqlStoreConfig {
        table: "x; DROP TABLE y".into(),
        ..SqlStoreConfig::default()
    };
    assert!(matches!(
        SqlStore::open(&url, &config).await,
        Err(StoreError::Config(_))
    ));
    assert!(matches!(
        SqlStore::open("redis://localhost", &SqlStoreConfig::default()).await,
        Err(StoreError::Config(_))
    ));
}

/// A fixed origin for journal times; tests add milliseconds to it.
const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const LEASE_MS: u64 = 30_000;
