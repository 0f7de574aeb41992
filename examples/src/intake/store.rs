//! The journal of accepted messages, behind the [`Store`] trait.
//!
//! A message's life in the journal:
//!
//! ```text
//!   insert (before the 200) ──► claimed ──mark_done──► done
//!                                 │  ▲
//!          mark_failed, attempts  │  │ claim: due again, or the lease
//!          left: wait the backoff ▼  │ of a crashed process expired
//!                               pending
//!                                 │
//!   mark_failed with no attempts left, or a lease that expired on the last attempt
//!                                 ▼
//!                               failed (terminal, keeps last_error)
//! ```
//!
//! Every change to a claimed message is fenced by `(claimed_by, attempts)`: a worker whose
//! lease expired and was taken over cannot mark the message done or failed any more
//! ([`StoreError::LeaseLost`]).
//!
//! Times are milliseconds since the Unix epoch, passed in by the caller (`now_ms`), so tests
//! move time without sleeping and every backend stores plain `BIGINT`s.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future: what [`Store`] methods return, so the trait is object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Waiting for a worker (first time after a recovery, or between attempts).
    Pending,
    /// A worker holds a lease on it and is processing it.
    Claimed,
    /// Processed.
    Done,
    /// Given up after the last attempt; `last_error` says why.
    Failed,
}

impl MessageState {
    /// The value stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses a `state` column value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "claimed" => Self::Claimed,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Primary key, assigned by the database.
    pub id: i64,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// The request body, as received.
    pub body: Vec<u8>,
    /// Where the message is.
    pub state: MessageState,
    /// How many times processing started (the claim that started it included).
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a pending message becomes due (ms since the epoch).
    pub next_attempt_at: i64,
    /// The worker holding the lease.
    pub claimed_by: Option<String>,
    /// When the lease ends (ms since the epoch).
    pub claimed_until: Option<i64>,
    /// When the message was accepted (ms since the epoch).
    pub created_at: i64,
    /// Last change (ms since the epoch).
    pub updated_at: i64,
}

/// A message to journal, claimed at once by `worker` for its first attempt.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// The worker that processes it first.
    pub worker: &'a str,
    /// Now, in ms since the epoch.
    pub now_ms: i64,
}

/// What [`Store::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Journaled and claimed by the inserting worker (attempt 1).
    New(StoredMessage),
    /// The idempotency key was seen before: nothing was written.
    Duplicate {
        /// The message first stored under the key.
        id: i64,
        /// Whether this request's body equals the first one's.
        same_body: bool,
        /// Where the first message is now.
        state: MessageState,
    },
}

/// What [`Store::mark_failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The message will be tried again at `at` (ms since the epoch).
    Retry {
        /// When it becomes due.
        at: i64,
    },
    /// No attempts left: the message is `failed` for good.
    Terminal,
}

/// Counts of the states that stay small, for metrics (`done` rows are not counted: they
/// grow until purged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Pending messages (due or backing off).
    pub pending: u64,
    /// Claimed messages.
    pub claimed: u64,
    /// Messages that failed for good.
    pub failed: u64,
    /// Creation time of the oldest pending or claimed message (ms since the epoch).
    pub oldest_open_created_at: Option<i64>,
}

/// Retries with capped exponential backoff: attempt `n` (1-based) that fails waits
/// `min(cap, base · 2^(n-1))`; after `max_attempts` the message is failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait. Default 1 s.
    pub base: Duration,
    /// The longest wait. Default 5 min.
    pub cap: Duration,
    /// Attempts before giving up, at least 1. Default 5.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// How long to wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// Whether a message that has started `attempts` attempts may get another one.
    pub fn has_attempts_left(&self, attempts: u32) -> bool {
        attempts < self.max_attempts.max(1)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The lease on the message was lost (it expired and another worker took the message,
    /// or it was already finished): the caller must not report on it.
    #[error("lease on message {id} lost")]
    LeaseLost {
        /// The message.
        id: i64,
    },
    /// A configuration value is unusable (table name, URL scheme).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A row did not have the expected shape.
    #[error("unexpected row: {0}")]
    Corrupt(String),
}

/// The journal of accepted messages. Implementations must make
/// [`insert`](Self::insert) durable before returning `Ok` (the intake answers 200 right
/// after) and hand every due message to exactly one claimer at a time.
pub trait Store: Send + Sync + 'static {
    /// Journals a message, claimed by `msg.worker` for its first attempt. With an
    /// idempotency key seen before, writes nothing and reports the first message.
    fn insert<'a>(&'a self, msg: NewMessage<'a>) -> BoxFuture<'a, Result<Inserted, StoreError>>;

    /// Claims up to `limit` messages that are due (pending and past `next_attempt_at`, or
    /// claimed under an expired lease), oldest first, counting an attempt for each. Expired
    /// claims with no attempts left become `failed` instead.
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        limit: usize,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<StoredMessage>, StoreError>>;

    /// Extends the lease on a message being processed.
    fn renew<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Marks a claimed message processed.
    fn mark_done<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a failed attempt: back to pending after the backoff, or failed for good.
    fn mark_failed<'a>(
        &'a self,
        msg: &'a StoredMessage,
        error: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Failure, StoreError>>;

    /// Gives a claimed message back without counting the attempt (it never started).
    fn release<'a>(
        &'a self,
        msg: &'a StoredMessage,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Makes the claims of an earlier run of `worker` (a crash, a kill) due now; returns how
    /// many. Only call it with a worker id no live process uses.
    fn recover<'a>(
        &'a self,
        worker: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// One message by id.
    fn get(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredMessage>, StoreError>>;

    /// Counts of pending, claimed and failed messages.
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>>;

    /// Deletes `done` messages last changed before `before_ms`; returns how many. Their
    /// idempotency keys are forgotten with them.
    fn purge(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        let waits: Vec<u128> = (1..=6).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
        assert_eq!(p.backoff(0), Duration::from_millis(100));
    }

    #[test]
    fn attempts_left() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(p.has_attempts_left(2));
        assert!(!p.has_attempts_left(3));
        let never_zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(never_zero.has_attempts_left(0));
        assert!(!never_zero.has_attempts_left(1));
    }

    #[test]
    fn states_round_trip() {
        for s in [
            MessageState::Pending,
            MessageState::Claimed,
            MessageState::Done,
            MessageState::Failed,
        ] {
            assert_eq!(MessageState::parse(s.as_str()), Some(s));
        }
        assert_eq!(MessageState::parse("x"), None);
    }
}
