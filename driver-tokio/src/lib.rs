//! gale driver on `tokio` (skeleton; filled in by its own issue).
//!
//! Moves bytes between sockets and [`gale_core::Connection`]; all protocol logic lives in
//! gale-core.
#![forbid(unsafe_code)]

pub use gale_core;
