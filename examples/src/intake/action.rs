//! What a worker does with an accepted message: the [`Action`] trait, the default
//! [`TableAction`] (store the message in the configured table, as GSEAsyncServer's YAML
//! config describes) and [`DemoAction`] (simulated work, as GSEAsyncServer's one-minute
//! sleep).

use std::time::Duration;

use serde::Deserialize;
use sqlx::{AnyPool, Executor};

use super::sql::{Dialect, SqliteSync, check_identifier, connect};
use super::store::{BoxFuture, StoreError, StoredMessage};

/// Processes one message. Runs at least once per accepted message, more than once only
/// after a crash or a lost lease, so it should be idempotent (key effects on
/// [`StoredMessage::id`]).
pub trait Action: Send + Sync + 'static {
    /// Does the work; an `Err` is recorded as the attempt's `last_error` and retried with
    /// backoff.
    fn process<'a>(&'a self, msg: &'a StoredMessage) -> BoxFuture<'a, Result<(), String>>;
}

/// The JSON body GSEAsyncServer accepts: `{"msg": "..."}` (`Msg` too, and unknown fields
/// are ignored, as Go's `encoding/json` does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageBody {
    /// The message text; empty when absent.
    #[serde(default, alias = "Msg", alias = "MSG")]
    pub msg: String,
}

impl MessageBody {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// Simulated work: waits `work`, then succeeds, unless the message text contains
/// `fail_marker`, which makes every attempt fail (to watch retries and backoff).
#[derive(Debug, Clone, Default)]
pub struct DemoAction {
    /// How long each message takes.
    pub work: Duration,
    /// Text that makes processing fail.
    pub fail_marker: Option<String>,
}

impl Action for DemoAction {
    fn process<'a>(&'a self, msg: &'a StoredMessage) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.work.is_zero() {
                tokio::time::sleep(self.work).await;
            }
            let text = MessageBody::parse(&msg.body)
                .map(|b| b.msg)
                .unwrap_or_default();
            match &self.fail_marker {
                Some(marker) if text.contains(marker.as_str()) => {
                    Err(format!("message {} contains {marker:?}", msg.id))
                }
                _ => Ok(()),
            }
        })
    }
}

/// Simulated work before another action: waits `work`, then runs `inner` (GSEAsyncServer's
/// worker slept a minute; `--demo-work-ms` with the table action).
#[derive(Debug, Clone)]
pub struct Delayed<A> {
    /// How long each message takes before `inner` runs.
    pub work: Duration,
    /// The action that does the real work.
    pub inner: A,
}

impl<A: Action> Action for Delayed<A> {
    fn process<'a>(&'a self, msg: &'a StoredMessage) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.work.is_zero() {
                tokio::time::sleep(self.work).await;
            }
            self.inner.process(msg).await
        })
    }
}

/// Stores each message's text in a table `(message_id, msg, processed_at)`, keyed on the
/// journal id, so a repeated attempt does not store it twice.
#[derive(Debug, Clone)]
pub struct TableAction {
    pool: AnyPool,
    dialect: Dialect,
    table: String,
    insert: String,
}

impl TableAction {
    /// Connects to `url` and creates `table` if it does not exist.
    pub async fn open(
        url: &str,
        table: &str,
        max_connections: Option<u32>,
    ) -> Result<Self, StoreError> {
        let dialect = Dialect::of_url(url)?;
        let pool = connect(url, dialect, SqliteSync::Full, max_connections).await?;
        Self::with_pool(pool, dialect, table).await
    }

    /// Uses an existing pool (the journal's, for example) and creates `table` if needed.
    pub async fn with_pool(
        pool: AnyPool,
        dialect: Dialect,
        table: &str,
    ) -> Result<Self, StoreError> {
        check_identifier(table)?;
        let ddl = match dialect {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {table} (message_id INTEGER PRIMARY KEY, \
                 msg TEXT NOT NULL, processed_at BIGINT NOT NULL)"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {table} (message_id BIGINT PRIMARY KEY, \
                 msg TEXT NOT NULL, processed_at BIGINT NOT NULL)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {table} (message_id BIGINT NOT NULL PRIMARY KEY, \
                 msg MEDIUMTEXT NOT NULL, processed_at BIGINT NOT NULL) \
                 ENGINE = InnoDB DEFAULT CHARSET = utf8mb4"
            ),
        };
        pool.execute(ddl.as_str()).await?;
        let insert = dialect.sql(&format!(
            "INSERT INTO {table} (message_id, msg, processed_at) VALUES (?, ?, ?)"
        ));
        Ok(Self {
            pool,
            dialect,
            table: table.to_owned(),
            insert,
        })
    }

    /// The table messages go to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The dialect of the target database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The target pool (tests count rows here).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

impl Action for TableAction {
    fn process<'a>(&'a self, msg: &'a StoredMessage) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let text = MessageBody::parse(&msg.body)
                .map(|b| b.msg)
                .map_err(|e| format!("body is not a message: {e}"))?;
            let result = sqlx::query(&self.insert)
                .bind(msg.id)
                .bind(text)
                .bind(msg.updated_at)
                .execute(&self.pool)
                .await;
            match result {
                Ok(_) => Ok(()),
                // An earlier attempt stored it, then died before marking it done.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
                Err(e) => Err(format!("insert into {}: {e}", self.table)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_body_is_as_lenient_as_go() {
        assert_eq!(MessageBody::parse(br#"{"msg":"a"}"#).unwrap().msg, "a");
        assert_eq!(
            MessageBody::parse(br#"{"Msg":"b","x":1}"#).unwrap().msg,
            "b"
        );
        assert_eq!(MessageBody::parse(b"{}").unwrap().msg, "");
        assert!(MessageBody::parse(b"").is_err());
        assert!(MessageBody::parse(b"{\"msg\":").is_err());
        assert!(MessageBody::parse(b"[1]").is_err());
    }
}
