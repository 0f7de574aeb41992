//! Helpers wrapped by the cargo-fuzz targets in `fuzz/` (feature `fuzzing`; not a stable
//! API). Each takes arbitrary bytes, drives a state machine with them, and asserts gale's
//! invariants; it panics only on a bug.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::codec::{fuzz_length_delimited, fuzz_lines, fuzz_raw};
pub use crate::deflate::fuzz_inflate;
pub use crate::http::fuzz_http_request;
pub use crate::protobuf::{fuzz_gev_protobuf, fuzz_protobuf_registry, fuzz_varint_delimited};
pub use crate::task::fuzz_task_queue;
pub use crate::ws::{fuzz_ws_frames, fuzz_ws_handshake};

use crate::codec::LengthDelimited;
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Context, Handler};

/// Drives one connection (a length-delimited echo with small limits) with an arbitrary
/// sequence of operations: input chunks, EOF, time passing, sends and closes through a
/// handle, write shutdowns, a peer that stops and resumes reading, socket errors.
///
/// Asserts: no panic; queued bytes never exceed the high watermark plus one reply while the
/// connection reads; the receive buffer stays within its limit plus one read window;
/// `on_close` runs exactly once, and only after the connection is closed.
pub fn fuzz_connection(data: &[u8], origin: Instant) {
    let handler = Arc::new(FuzzEcho::default());
    let mut config = ConnConfig::default();
    config
        .set_watermarks(512, 2048)
        .set_max_recv_buffer(8 * 1024)
        .set_max_send_buffer(16 * 1024)
        .set_idle_timeout(Some(Duration::from_millis(500)))
        .set_close_linger(Duration::from_millis(200));
    let mut h = Harness::new(handler.clone(), config, origin);
    let handle = h.handle();
    let mut ops = data;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op % 9 {
            0 | 1 => {
                let len = usize::from(ops.first().copied().unwrap_or(0));
                let take = len.min(ops.len().saturating_sub(1));
                let chunk = ops.get(1..1 + take).unwrap_or(&[]);
                h.peer_send(chunk);
                ops = ops.get(1 + take..).unwrap_or(&[]);
            }
            2 => h.peer_eof(),
            3 => {
                let ms = u64::from(ops.first().copied().unwrap_or(0)) * 4;
                ops = ops.get(1..).unwrap_or(&[]);
                h.advance(Duration::from_millis(ms));
            }
            4 => {
                let _ = handle.send(Bytes::from(vec![0x5a; usize::from(op)]));
                h.step();
            }
            5 => {
                let _ = handle.close();
                h.step();
            }
            6 => {
                let window = ops.first().map(|b| usize::from(*b) * 16);
                ops = ops.get(1..).unwrap_or(&[]);
                h.set_peer_window(window.filter(|w| *w != 0));
            }
            7 => {
                let _ = handle.shutdown_write();
                h.step();
            }
            _ => {
                let now = h.now();
                h.conn()
                    .handle_io_error(now, std::io::ErrorKind::ConnectionReset);
                h.step();
            }
        }
        let conn = h.conn();
        assert!(
            !conn.wants_read() || conn.write_buffer_len() <= 2048,
            "reading while above the high watermark"
        );
        assert!(conn.write_buffer_len() <= 16 * 1024 + MAX_REPLY);
        assert!(conn.read_buffer_len() <= 8 * 1024 + 64 * 1024);
        let closes = handler.closes.load(Ordering::Relaxed);
        assert_eq!(
            closes,
            usize::from(h.closed().is_some()),
            "on_close exactly once"
        );
    }
    // Whatever happened, enough time closes the connection (idle timeout or linger).
    h.set_peer_window(None);
    h.advance(Duration::from_secs(5));
    assert!(h.closed().is_some(), "connection outlived its idle timeout");
    assert_eq!(handler.closes.load(Ordering::Relaxed), 1);
}

const MAX_REPLY: usize = 256;

#[derive(Default)]
struct FuzzEcho {
    closes: AtomicUsize,
}

impl Handler for FuzzEcho {
    type Protocol = LengthDelimited;
    type State = ();

    fn protocol(&self) -> LengthDelimited {
        // invariant: a 1-byte length field with a 255-byte maximum is a valid configuration.
        LengthDelimited::builder()
            .length_field_width(crate::codec::LengthWidth::U8)
            .max_frame_length(255)
            .build()
            .expect("valid codec configuration")
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        match msg.first() {
            Some(b'c') => cx.close(),
            Some(b's') => cx.shutdown_write(),
            Some(b't') => {
                let _ = cx.set_timer_after(u64::from(msg.len() as u8), Duration::from_millis(50));
            }
            _ => {
                let _ = cx.send(msg);
            }
        }
    }

    fn on_timer(&self, cx: &mut Context<'_, Self>, timer: u64) {
        let _ = cx.send(Bytes::from(timer.to_string()));
    }

    fn on_close(&self, _cx: &mut Context<'_, Self>, _reason: &CloseReason) {
        self.closes.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::fuzz_connection;

    #[test]
    fn connection_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/connection");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus ships with the repository") {
            let data = std::fs::read(entry.expect("readable corpus dir").path()).unwrap();
            fuzz_connection(&data, crate::t0());
            n += 1;
        }
        assert!(n >= 4, "corpus went missing");
    }

    #[test]
    fn connection_survives_pseudo_random_operations() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..300 {
            let data: Vec<u8> = (0..256)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            fuzz_connection(&data, crate::t0());
        }
    }
}
