//! permessage-deflate ([RFC 7692](https://www.rfc-editor.org/rfc/rfc7692)): WebSocket
//! message compression, as a transform the WebSocket protocol calls.
//!
//! Two steps, both sans-IO:
//!
//! 1. **Negotiation**, in the upgrade: [`DeflateConfig::negotiate`] reads the client's
//!    `Sec-WebSocket-Extensions` offers and returns the agreed [`DeflateParams`] (or `None`:
//!    no extension, never a failed handshake); its `Display` form is the response's
//!    `Sec-WebSocket-Extensions` value.
//! 2. **Per message**, after it: a [`PerMessageDeflate`] per connection compresses outgoing
//!    payloads and inflates incoming ones, within a size limit that holds against
//!    decompression bombs.
//!
//! ```text
//!   client offer                                   server answer (101)
//!   Sec-WebSocket-Extensions:                      Sec-WebSocket-Extensions:
//!     permessage-deflate; client_max_window_bits,    permessage-deflate
//!     permessage-deflate                             (first acceptable offer)
//!
//!   a compressed message: RSV1 on its first frame only
//!   ┌──────────────┬───────────────────────┐ ┌──────────────┬─────────────────────────┐
//!   │ FIN=0 RSV1=1 │ DEFLATE bytes …       │ │ FIN=1 RSV1=0 │ … DEFLATE bytes         │
//!   │ op=text      │                       │ │ op=cont      │ (sync flush, 00 00 ff ff│
//!   └──────────────┴───────────────────────┘ └──────────────┴──── tail removed) ──────┘
//! ```
//!
//! The backend is zlib-rs (pure Rust) through flate2, the flate2 backend that can set the
//! window size. A window of 8 bits is run as 9, which zlib's own deflate has always done
//! and which stays within a 256-byte window ([`WindowBits`]).
//!
//! # Memory
//!
//! Measured with a counting allocator (`core/tests/deflate_memory.rs`), zlib-rs 0.6:
//!
//! | state | bytes |
//! |---|---|
//! | compressor, 15 window bits (any level) | 380,032 (371 KiB) |
//! | compressor, 9 window bits | 251,008 (245 KiB): a 128 KiB hash table and 80 KiB of symbol buffers do not shrink with the window |
//! | decompressor, any window | 47,552 (46 KiB) |
//!
//! Setting up a compressor costs about 7 µs (zeroing its tables), so without context
//! takeover a 2 KiB message at level 1 takes ~11 µs instead of ~5.
//!
//! Nothing is allocated until the first compressed message in each direction. Without
//! context takeover in a direction (`*_no_context_takeover`, which
//! [`DeflateConfig::set_server_no_context_takeover`] and
//! [`DeflateConfig::set_client_no_context_takeover`] can impose), that direction's state
//! is freed after every message, so idle connections hold nothing; with takeover, a
//! connection keeps up to ~417 KiB for its lifetime. Messages under the
//! [`threshold`](DeflateConfig::threshold) are sent uncompressed and never allocate the
//! compressor.
//!
//! # Speed
//!
//! `core/benches/deflate.rs`, 16 different JSON-like messages per size, on a busy 2-core
//! machine (medians; compressed size as a share of the original):
//!
//! | message | level 1, takeover | level 1, none | level 6, takeover | inflate, takeover |
//! |---|---|---|---|---|
//! | 2 KiB | 4.6 µs, 0.28 | 11 µs, 0.36 | 38 µs, 0.19 | 3.4 µs |
//! | 4 KiB | 7.3 µs, 0.27 | 16 µs, 0.33 | 64 µs, 0.18 | 4.9 µs |
//! | 8 KiB | 13 µs, 0.27 | 21 µs, 0.31 | 85 µs, 0.17 | 8.3 µs |
//! | 16 KiB | 44 µs, 0.27 | 53 µs, 0.29 | 262 µs, 0.17 | 10.5 µs |
//!
//! Those figures hold for one connection whose state stays in the CPU caches. A server
//! with many busy connections does not have that: with context takeover every connection
//! keeps its own ~417 KiB, and zlib-rs looks every 4-byte string up in a 128 KiB hash
//! table (65,536 entries whatever the window or level), at a random place, so once the
//! states outgrow the caches nearly every lookup misses. `core/benches/ws_echo.rs` (a
//! whole echo through [`Connection`](crate::Connection), 2 KiB JSON, level 1) shows it:
//! ~9 µs per message with one connection, ~15 µs with 8, 35-80 µs with 50 (noisy: it
//! depends on what else uses the shared cache), against ~14 µs with 50 connections without
//! context takeover, whose state is set up in the same, cache-hot memory every time. A
//! server with many busy connections spends 3-5x less CPU per message when it imposes
//! no context takeover in both directions, for about a third more bytes on the wire.

mod codec;
mod config;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz;
mod negotiate;
#[cfg(test)]
mod tests;

pub use codec::{DeflateError, PerMessageDeflate};
pub use config::{DeflateConfig, WindowBits};
#[cfg(feature = "fuzzing")]
pub use fuzz::fuzz_inflate;
pub use negotiate::DeflateParams;
