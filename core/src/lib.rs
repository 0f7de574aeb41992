//! gale-core: the sans-IO protocol engine of gale.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod timer;
