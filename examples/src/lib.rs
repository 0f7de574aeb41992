//! Shared helpers for the gale examples.
