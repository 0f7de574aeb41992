//! The intake server: gale's port of GSEAsyncServer, an HTTP server that accepts messages,
//! answers at once, processes them in the background with a bounded pool of workers, and
//! never loses a message it answered 200 for.
//!
//! ```text
//!   client ── POST /task/v1/message ──► api::IntakeApi (a gale Handler on any driver)
//!                                            │ JSON checked, Idempotency-Key read
//!                                            ▼
//!                                      worker::Intake ── gale-core TaskQueue: start / wait / 503
//!                                            │ slot taken
//!                                            ▼
//!                                      store::Store::insert (durable)  ──► 200 to the client
//!                                            │
//!                                            ▼
//!                                      action::Action::process ──► mark_done / mark_failed
//! ```
//!
//! - [`store`]: the journal trait and its states; [`sql`]: the journal on SQLite (default,
//!   a local file in WAL mode), MySQL/MariaDB and PostgreSQL.
//! - [`worker`]: admission through gale-core's task queue, leases, retries, recovery.
//! - [`action`]: what a worker does: store the message in a table (the default, as
//!   GSEAsyncServer's configuration describes) or simulate work.
//! - [`api`]: the HTTP answers, GSEAsyncServer's texts included.
//! - [`config`]: GSEAsyncServer's YAML configuration file.
//! - [`mod@serve`]: the `async-server` command line, and starting and stopping the whole server
//!   (the example and the end-to-end tests share it).
//!
//! Processing is at least once: after a crash, messages claimed by the dead process run
//! again, so actions key their effects on the message id (as [`action::TableAction`]
//! does), which makes the stored result exactly once.

pub mod action;
pub mod api;
pub mod config;
pub mod serve;
pub mod sql;
pub mod store;
pub mod worker;

pub use action::{Action, Delayed, DemoAction, MessageBody, TableAction};
pub use api::IntakeApi;
pub use serve::{IntakeArgs, RunningIntake, ServeError, serve};
pub use sql::{SqlStore, SqlStoreConfig, SqliteSync};
pub use store::{RetryPolicy, Store, StoreError, StoredMessage};
pub use worker::{Answer, Intake, IntakeConfig};
