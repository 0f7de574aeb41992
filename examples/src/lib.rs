//! Shared helpers for the gale examples.
pub mod intake;
