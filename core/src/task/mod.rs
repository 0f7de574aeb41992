//! The async task queue: gale's port of GSEAsyncServer's worker pool.
//!
//! Long work never blocks an event loop: the application submits it to a [`TaskQueue`], which
//! admits it (start now, wait in line, or refuse), and later reports back with
//! [`TaskQueue::handle_task_done`]. The queue is a state machine of plain values: no threads,
//! no channels, no clock reads. Drivers spawn what [`TaskQueue::poll_event`] hands them.
//!
//! A task's life:
//!
//! ```text
//!  submit(task, now)
//!     │
//!     ├── a slot is free ────────────────────────────┐
//!     │                                              ▼
//!     ├── line has room ──► Waiting ──slot frees──► Starting ──poll_event: Run──► Running
//!     │                      │  │     (FIFO)                                        │
//!     │                      │  └── cancel(id) ──► task handed back               │
//!     │                      └── deadline passes ──► poll_event: Expired          │
//!     │                                                                           ▼
//!     └── line is full ──► Submitted::Refused(task)        handle_task_done(id, Done | Failed)
//! ```
//!
//! Limits and their defaults are on [`TaskConfig`]; the driver contract (the drain rule) is on
//! [`TaskQueue`]. [`Dispatcher`] is that queue shared between threads and holding closures:
//! the common half of the drivers' task pools (`gale_mio::TaskPool` and its siblings).

mod config;
mod dispatch;
mod queue;
mod types;
mod waitline;

#[cfg(any(test, feature = "fuzzing"))]
mod check;

pub use config::TaskConfig;
pub use dispatch::{AsyncWork, CatchPanic, Dispatcher, OnExpired, Work, catch_panic};
pub use queue::TaskQueue;
pub use types::{Outcome, Submitted, TaskError, TaskEvent, TaskId, TaskState, TaskStats};

#[cfg(feature = "fuzzing")]
pub use check::fuzz_task_queue;
