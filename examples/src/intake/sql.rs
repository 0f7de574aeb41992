//! [`SqlStore`]: the journal on SQLite (a local file), MySQL/MariaDB or PostgreSQL, through
//! sqlx's `Any` driver with per-dialect SQL.
//!
//! How each backend hands a due message to exactly one claimer:
//!
//! | backend | claim |
//! |---|---|
//! | SQLite | one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`: an UPDATE takes the database's write lock when it starts, so claims are serialized (other writers wait in `busy_timeout`) |
//! | PostgreSQL | the same statement with `FOR UPDATE SKIP LOCKED` in the subquery: concurrent claimers skip each other's rows instead of waiting |
//! | MySQL 8 / MariaDB 10.6+ | a transaction: `SELECT id … FOR UPDATE SKIP LOCKED`, `UPDATE … WHERE id IN (…)`, `SELECT` the rows |
//!
//! SQLite runs in WAL mode with `synchronous = FULL` by default: a commit returns only after
//! the WAL is fsynced, so an acknowledged message survives a power cut, not only a process
//! crash. `NORMAL` ([`SqlStoreConfig::sqlite_synchronous`]) skips that fsync and keeps
//! process-crash durability (the WAL is in the OS page cache) at several times the insert
//! rate; it can lose the last commits on a power cut or kernel crash.

use std::future::Future;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::store::{
    BoxFuture, Failure, Inserted, MessageState, NewMessage, RetryPolicy, Store, StoreError,
    StoreStats, StoredMessage,
};

/// Which SQL dialect a URL speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite:` URLs.
    Sqlite,
    /// `mysql:` and `mariadb:` URLs.
    MySql,
    /// `postgres:` and `postgresql:` URLs.
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "mysql" | "mariadb" => Ok(Self::MySql),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::Config(format!(
                "unsupported database URL scheme {scheme:?} (sqlite, mysql, mariadb, postgres)"
            ))),
        }
    }

    /// Rewrites `?` placeholders for this dialect (`$1`, `$2`, … for PostgreSQL).
    pub fn sql(self, sql: &str) -> String {
        if self != Self::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// `synchronous` setting for SQLite journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// fsync the WAL on every commit: survives power loss. The default.
    #[default]
    Full,
    /// fsync only at checkpoints: survives a process crash, may lose the last commits on
    /// power loss.
    Normal,
}

/// How to open a [`SqlStore`].
#[derive(Debug, Clone)]
pub struct SqlStoreConfig {
    /// The journal table. Letters, digits and `_`, at most 64. Default `intake_messages`.
    pub table: String,
    /// How long a claim lasts before another worker may take the message over. A worker
    /// renews it while processing. Default 30 s.
    pub lease: Duration,
    /// Retries of failed attempts.
    pub retry: RetryPolicy,
    /// Durability of SQLite commits.
    pub sqlite_synchronous: SqliteSync,
    /// Pool size. Default 8 (4 for SQLite, whose writers take turns anyway).
    pub max_connections: Option<u32>,
}

impl Default for SqlStoreConfig {
    fn default() -> Self {
        Self {
            table: "intake_messages".to_owned(),
            lease: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            sqlite_synchronous: SqliteSync::Full,
            max_connections: None,
        }
    }
}

/// The journal in a SQL database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    table: String,
    lease_ms: i64,
    retry: RetryPolicy,
}

impl SqlStore {
    /// Connects, and creates the table and its indexes if they do not exist.
    ///
    /// For SQLite, a URL without `mode=` gets `mode=rwc` (create the file if missing).
    pub async fn open(url: &str, config: &SqlStoreConfig) -> Result<Self, StoreError> {
        let dialect = Dialect::of_url(url)?;
        check_identifier(&config.table)?;
        let pool = connect(
            url,
            dialect,
            config.sqlite_synchronous,
            config.max_connections,
        )
        .await?;
        let store = Self {
            pool,
            dialect,
            table: config.table.clone(),
            lease_ms: duration_ms(config.lease),
            retry: config.retry,
        };
        for ddl in schema(dialect, &store.table) {
            store.pool.execute(ddl.as_str()).await?;
        }
        Ok(store)
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for applications sharing the database (tests read rows here).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The journal table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn q(&self, sql: &str) -> String {
        self.dialect.sql(&sql.replace("{t}", &self.table))
    }

    async fn insert_impl(&self, msg: NewMessage<'_>) -> Result<Inserted, StoreError> {
        let until = msg.now_ms + self.lease_ms;
        let returning = if self.dialect == Dialect::MySql {
            ""
        } else {
            " RETURNING id"
        };
        let sql = self.q(&format!(
            "INSERT INTO {{t}} (idempotency_key, body, state, attempts, next_attempt_at, \
             claimed_by, claimed_until, created_at, updated_at) \
             VALUES (?, ?, 'claimed', 1, ?, ?, ?, ?, ?){returning}"
        ));
        let query = sqlx::query(&sql)
            .bind(msg.idempotency_key.map(str::to_owned))
            .bind(msg.body.to_vec())
            .bind(msg.now_ms)
            .bind(msg.worker.to_owned())
            .bind(until)
            .bind(msg.now_ms)
            .bind(msg.now_ms);
        let id = if self.dialect == Dialect::MySql {
            match query.execute(&self.pool).await {
                Ok(done) => done
                    .last_insert_id()
                    .ok_or_else(|| StoreError::Corrupt("no insert id".into()))?,
                Err(e) => return self.duplicate_or(e, msg).await,
            }
        } else {
            match query.fetch_one(&self.pool).await {
                Ok(row) => row.try_get::<i64, _>("id")?,
                Err(e) => return self.duplicate_or(e, msg).await,
            }
        };
        Ok(Inserted::New(StoredMessage {
            id,
            idempotency_key: msg.idempotency_key.map(str::to_owned),
            body: msg.body.to_vec(),
            state: MessageState::Claimed,
            attempts: 1,
            last_error: None,
            next_attempt_at: msg.now_ms,
            claimed_by: Some(msg.worker.to_owned()),
            claimed_until: Some(until),
            created_at: msg.now_ms,
            updated_at: msg.now_ms,
        }))
    }

    /// After a failed insert: the first message under the same key, or the error.
    async fn duplicate_or(
        &self,
        err: sqlx::Error,
        msg: NewMessage<'_>,
    ) -> Result<Inserted, StoreError> {
        let unique = matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation());
        let Some(key) = msg.idempotency_key.filter(|_| unique) else {
            return Err(err.into());
        };
        let sql = self.q("SELECT id, body, state FROM {t} WHERE idempotency_key = ?");
        let row = sqlx::query(&sql)
            .bind(key.to_owned())
            .fetch_one(&self.pool)
            .await?;
        let body: Vec<u8> = row.try_get("body")?;
        let state: String = row.try_get("state")?;
        Ok(Inserted::Duplicate {
            id: row.try_get("id")?,
            same_body: body == msg.body,
            state: MessageState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("state {state:?}")))?,
        })
    }

    async fn claim_impl(
        &self,
        worker: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        // Expired claims on their last attempt: the process died while processing them.
        let sql = self.q(
            "UPDATE {t} SET state = 'failed', last_error = ?, claimed_by = NULL, \
             claimed_until = NULL, updated_at = ? \
             WHERE state = 'claimed' AND claimed_until <= ? AND attempts >= ?",
        );
        sqlx::query(&sql)
            .bind("lease expired during the last attempt".to_owned())
            .bind(now_ms)
            .bind(now_ms)
            .bind(i64::from(self.retry.max_attempts.max(1)))
            .execute(&self.pool)
            .await?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let until = now_ms + self.lease_ms;
        let due = "(state = 'pending' AND next_attempt_at <= ?) \
                   OR (state = 'claimed' AND claimed_until <= ?)";
        let set = "state = 'claimed', claimed_by = ?, claimed_until = ?, \
                   attempts = attempts + 1, updated_at = ?";
        let rows = match self.dialect {
            Dialect::Sqlite | Dialect::Postgres => {
                let lock = if self.dialect == Dialect::Postgres {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    ""
                };
                let sql = self.q(&format!(
                    "UPDATE {{t}} SET {set} WHERE id IN \
                     (SELECT id FROM {{t}} WHERE {due} ORDER BY id LIMIT ?{lock}) \
                     RETURNING {COLUMNS}"
                ));
                sqlx::query(&sql)
                    .bind(worker.to_owned())
                    .bind(until)
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            Dialect::MySql => {
                let mut tx = self.pool.begin().await?;
                let sql = self.q(&format!(
                    "SELECT id FROM {{t}} WHERE {due} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
                ));
                let ids: Vec<i64> = sqlx::query(&sql)
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("id"))
                    .collect::<Result<_, _>>()?;
                if ids.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let sql = self.q(&format!("UPDATE {{t}} SET {set} WHERE id IN ({list})"));
                sqlx::query(&sql)
                    .bind(worker.to_owned())
                    .bind(until)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                let sql = self.q(&format!("SELECT {COLUMNS} FROM {{t}} WHERE id IN ({list})"));
                let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        let mut claimed = rows
            .iter()
            .map(row_to_message)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    /// Runs a fenced update of a claimed message: `set` takes the first binds, then
    /// `(id, claimed_by, attempts)`.
    async fn fenced(
        &self,
        set: &str,
        binds: Vec<Bind>,
        msg: &StoredMessage,
    ) -> Result<(), StoreError> {
        let sql = self.q(&format!(
            "UPDATE {{t}} SET {set} WHERE id = ? AND state = 'claimed' \
             AND claimed_by = ? AND attempts = ?"
        ));
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let done = query
            .bind(msg.id)
            .bind(msg.claimed_by.clone().unwrap_or_default())
            .bind(i64::from(msg.attempts))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::LeaseLost { id: msg.id })
        }
    }

    async fn mark_failed_impl(
        &self,
        msg: &StoredMessage,
        error: &str,
        now_ms: i64,
    ) -> Result<Failure, StoreError> {
        let (state, failure) = if self.retry.has_attempts_left(msg.attempts) {
            let at = now_ms + duration_ms(self.retry.backoff(msg.attempts));
            (MessageState::Pending, Failure::Retry { at })
        } else {
            (MessageState::Failed, Failure::Terminal)
        };
        let next = match failure {
            Failure::Retry { at } => at,
            Failure::Terminal => now_ms,
        };
        self.fenced(
            "state = ?, last_error = ?, next_attempt_at = ?, claimed_by = NULL, \
             claimed_until = NULL, updated_at = ?",
            vec![
                Bind::Text(state.as_str().to_owned()),
                Bind::Text(truncate(error, MAX_ERROR_LEN)),
                Bind::Int(next),
                Bind::Int(now_ms),
            ],
            msg,
        )
        .await?;
        Ok(failure)
    }

    async fn recover_impl(&self, worker: &str, now_ms: i64) -> Result<u64, StoreError> {
        let sql = self.q(
            "UPDATE {t} SET state = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END, \
             last_error = ?, next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL, \
             updated_at = ? WHERE state = 'claimed' AND claimed_by = ?",
        );
        let done = sqlx::query(&sql)
            .bind(i64::from(self.retry.max_attempts.max(1)))
            .bind(format!("worker {worker} stopped during the attempt"))
            .bind(now_ms)
            .bind(now_ms)
            .bind(worker.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn get_impl(&self, id: i64) -> Result<Option<StoredMessage>, StoreError> {
        let sql = self.q(&format!("SELECT {COLUMNS} FROM {{t}} WHERE id = ?"));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_message).transpose()
    }

    async fn stats_impl(&self) -> Result<StoreStats, StoreError> {
        let sql = self.q(
            "SELECT state, COUNT(*) AS n, MIN(created_at) AS oldest FROM {t} \
             WHERE state IN ('pending', 'claimed', 'failed') GROUP BY state",
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut stats = StoreStats::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            let oldest: Option<i64> = row.try_get("oldest")?;
            match MessageState::parse(&state) {
                Some(MessageState::Pending) => stats.pending = n,
                Some(MessageState::Claimed) => stats.claimed = n,
                Some(MessageState::Failed) => stats.failed = n,
                Some(MessageState::Done) => {}
                None => return Err(StoreError::Corrupt(format!("state {state:?}"))),
            }
            if matches!(state.as_str(), "pending" | "claimed") {
                stats.oldest_open_created_at = match (stats.oldest_open_created_at, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(stats)
    }
}

impl Store for SqlStore {
    fn insert<'a>(&'a self, msg: NewMessage<'a>) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(retrying(move || self.insert_impl(msg)))
    }

    fn claim<'a>(
        &'a self,
        worker: &'a str,
        limit: usize,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<StoredMessage>, StoreError>> {
        Box::pin(retrying(move || self.claim_impl(worker, limit, now_ms)))
    }

    fn renew<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let binds = vec![Bind::Int(now_ms + self.lease_ms), Bind::Int(now_ms)];
        Box::pin(retrying(move || {
            self.fenced("claimed_until = ?, updated_at = ?", binds.clone(), msg)
        }))
    }

    fn mark_done<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(retrying(move || {
            self.fenced(
                "state = 'done', claimed_by = NULL, claimed_until = NULL, updated_at = ?",
                vec![Bind::Int(now_ms)],
                msg,
            )
        }))
    }

    fn mark_failed<'a>(
        &'a self,
        msg: &'a StoredMessage,
        error: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Failure, StoreError>> {
        Box::pin(retrying(move || self.mark_failed_impl(msg, error, now_ms)))
    }

    fn release<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(retrying(move || {
            self.fenced(
                "state = 'pending', attempts = attempts - 1, next_attempt_at = ?, \
                 claimed_by = NULL, claimed_until = NULL, updated_at = ?",
                vec![Bind::Int(now_ms), Bind::Int(now_ms)],
                msg,
            )
        }))
    }

    fn recover<'a>(
        &'a self,
        worker: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(retrying(move || self.recover_impl(worker, now_ms)))
    }

    fn get(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredMessage>, StoreError>> {
        Box::pin(self.get_impl(id))
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        Box::pin(self.stats_impl())
    }

    fn purge(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let sql = self.q("DELETE FROM {t} WHERE state = 'done' AND updated_at < ?");
            let done = sqlx::query(&sql)
                .bind(before_ms)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}

/// Opens a pool for `url`, installing sqlx's drivers on first use.
///
/// For SQLite, switches the file to WAL (persistent, once) and sets `synchronous` and a
/// 5 s `busy_timeout` on every connection.
pub async fn connect(
    url: &str,
    dialect: Dialect,
    sync: SqliteSync,
    max_connections: Option<u32>,
) -> Result<AnyPool, StoreError> {
    sqlx::any::install_default_drivers();
    let mut url = url.to_owned();
    let mut options = AnyPoolOptions::new();
    if dialect == Dialect::Sqlite {
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        // journal_mode takes an exclusive lock that busy_timeout does not wait for: set it
        // once, alone, before the pool opens more connections.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await?;
        pool.execute("PRAGMA journal_mode = WAL").await?;
        pool.close().await;
        let pragmas = match sync {
            SqliteSync::Full => "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000",
            SqliteSync::Normal => "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000",
        };
        options = options
            .max_connections(max_connections.unwrap_or(4))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            });
    } else if dialect == Dialect::MySql {
        // READ COMMITTED: no gap locks, so claimers skipping each other's rows and workers
        // finishing theirs deadlock far less than under REPEATABLE READ.
        options = options
            .max_connections(max_connections.unwrap_or(8))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    Ok(())
                })
            });
    } else {
        options = options.max_connections(max_connections.unwrap_or(8));
    }
    Ok(options.connect(&url).await?)
}

/// Runs `op` again, after a short randomized pause, when the database reports a transient
/// conflict: a deadlock or serialization failure (SQLSTATE 40001, 40P01), a MySQL lock wait
/// timeout, or a busy SQLite file. Each store operation is one statement or one
/// transaction, rolled back on such errors, so running it again is safe.
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut retries = 0;
    loop {
        match op().await {
            Err(StoreError::Database(e)) if retries < MAX_RETRIES && is_transient(&e) => {
                retries += 1;
                tracing::debug!(retries, error = %e, "transient database conflict, retrying");
                tokio::time::sleep(pause(retries)).await;
            }
            other => return other,
        }
    }
}

/// Whether `e` is a conflict that running the same statement again can resolve.
pub fn is_transient(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        // SQL standard serialization failure (MySQL deadlocks report it too), PostgreSQL
        // deadlock, SQLite BUSY / BUSY_RECOVERY / BUSY_SNAPSHOT / LOCKED.
        Some("40001" | "40P01" | "5" | "261" | "517" | "6")
    ) || db.message().contains("Lock wait timeout exceeded")
}

/// Up to `2^retries` ms, at most 100 ms, chosen at random so that colliding claimers do not
/// collide again.
fn pause(retries: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = (1u64 << retries.min(7)).min(100);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(retries);
    Duration::from_millis(1 + hasher.finish() % ceiling)
}

/// Refuses table names that are not plain identifiers (they are spliced into SQL).
pub fn check_identifier(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "table name {name:?}: use letters, digits and '_' (at most 64, not starting with a digit)"
        )))
    }
}

/// A value for [`SqlStore::fenced`].
#[derive(Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

fn schema(dialect: Dialect, t: &str) -> Vec<String> {
    match dialect {
        Dialect::Sqlite => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    idempotency_key TEXT UNIQUE,
                    body BLOB NOT NULL,
                    state TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    last_error TEXT,
                    next_attempt_at BIGINT NOT NULL,
                    claimed_by TEXT,
                    claimed_until BIGINT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_due ON {t} (state, next_attempt_at)"),
            format!("CREATE INDEX IF NOT EXISTS {t}_lease ON {t} (state, claimed_until)"),
        ],
        Dialect::Postgres => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id BIGSERIAL PRIMARY KEY,
                    idempotency_key VARCHAR(255) UNIQUE,
                    body BYTEA NOT NULL,
                    state VARCHAR(16) NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    last_error TEXT,
                    next_attempt_at BIGINT NOT NULL,
                    claimed_by VARCHAR(255),
                    claimed_until BIGINT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_due ON {t} (state, next_attempt_at)"),
            format!("CREATE INDEX IF NOT EXISTS {t}_lease ON {t} (state, claimed_until)"),
        ],
        // VARCHAR rather than TEXT: sqlx's Any driver reads MySQL TEXT as a blob. The key is
        // ASCII with a binary collation, so keys differing in case are different keys.
        Dialect::MySql => vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
                body LONGBLOB NOT NULL,
                state VARCHAR(16) NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                last_error VARCHAR(2000) NULL,
                next_attempt_at BIGINT NOT NULL,
                claimed_by VARCHAR(255) NULL,
                claimed_until BIGINT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE KEY {t}_key (idempotency_key),
                KEY {t}_due (state, next_attempt_at),
                KEY {t}_lease (state, claimed_until)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4"
        )],
    }
}

fn row_to_message(row: &AnyRow) -> Result<StoredMessage, StoreError> {
    let state: String = row.try_get("state")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(StoredMessage {
        id: row.try_get("id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        body: row.try_get("body")?,
        state: MessageState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("state {state:?}")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_until: row.try_get("claimed_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

const COLUMNS: &str = "id, idempotency_key, body, state, attempts, last_error, next_attempt_at, \
                       claimed_by, claimed_until, created_at, updated_at";

/// How many times [`retrying`] runs an operation again.
const MAX_RETRIES: u32 = 10;

/// Longest `last_error` kept (the MySQL column is `VARCHAR(2000)`).
const MAX_ERROR_LEN: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_per_dialect() {
        let sql = "UPDATE t SET a = ? WHERE b = ? AND c = ?";
        assert_eq!(Dialect::Sqlite.sql(sql), sql);
        assert_eq!(Dialect::MySql.sql(sql), sql);
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
    }

    #[test]
    fn url_schemes() {
        assert_eq!(Dialect::of_url("sqlite://x.db").unwrap(), Dialect::Sqlite);
        assert_eq!(Dialect::of_url("mariadb://u@h/d").unwrap(), Dialect::MySql);
        assert_eq!(
            Dialect::of_url("postgresql://h/d").unwrap(),
            Dialect::Postgres
        );
        assert!(Dialect::of_url("redis://h").is_err());
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("intake_messages").is_ok());
        for bad in ["", "1x", "a;drop table b", "a b", &"x".repeat(65)] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
