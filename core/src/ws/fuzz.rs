//! Fuzz helpers behind the cargo-fuzz targets `ws_handshake` and `ws_frames` (feature
//! `fuzzing`), and the client-side support the unit tests share with them: a recording echo
//! handler, an upgrade request, masked client frames.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Message, Outbound, WebSocket, WsConfig};
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Context, Handler};

/// For the cargo-fuzz target; asserts invariants, panics only on a bug.
///
/// Treats `data` as an upgrade request: byte 0 picks the read size (1 to 64 bytes) and
/// whether the head limits are tiny; the rest is what the client sends. Checks:
///
/// - no panic, whatever the bytes;
/// - the server writes nothing, or one HTTP/1.1 response: `101` (connection open, `Open`
///   delivered once) or an error status (connection closed once it is written);
/// - at most `max_head_size` bytes wait in the receive buffer for the head to finish;
/// - once the client has finished sending, reading in pieces upgrades if and only if
///   reading everything at once does (which error status a bad head earns may depend on
///   where reads end: a head over the size limit with a syntax error is 400 or 431);
/// - the handshake timeout ends every connection that did not upgrade.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn fuzz_ws_handshake(data: &[u8], origin: Instant) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(control & 0x3f) + 1;
    let tiny = control & 0x40 != 0;
    let (whole, _) = run_handshake(input, input.len().max(1), tiny, origin, true);
    let (pieces, _) = run_handshake(input, step, tiny, origin, true);
    assert_eq!(kind(&pieces), kind(&whole), "split into {step}-byte reads");
    let (status, mut h) = run_handshake(input, step, tiny, origin, false);
    if status.is_some() {
        assert_eq!(
            kind(&status),
            kind(&whole),
            "an early answer is the final one"
        );
    }
    let upgraded = h.conn().state().opened;
    match status.as_deref() {
        None => assert_eq!(upgraded, 0),
        Some("101") => {
            assert_eq!(upgraded, 1);
            assert!(h.closed().is_none() || h.conn().state().closed);
        }
        Some(s) => {
            assert!(s.starts_with('4') || s.starts_with('5'), "status {s}");
            assert_eq!(upgraded, 0);
            assert!(h.closed().is_some(), "refused connections close");
        }
    }
    h.advance(Duration::from_secs(11));
    if upgraded == 0 {
        assert!(
            h.closed().is_some(),
            "the handshake timeout ends the connection"
        );
    }
}

/// For the cargo-fuzz target; asserts invariants, panics only on a bug.
///
/// Upgrades a connection, then sends it `data` as frames: byte 0 picks the read size, small
/// limits (1 KiB frames, 2 KiB messages) and raw-frame mode; the rest is the stream (masked
/// or not, valid or not). Checks:
///
/// - no panic, whatever the bytes;
/// - every text message handed over is UTF-8 and every message within the message limit;
/// - the receive buffer never holds more than one frame plus one read window;
/// - reading in pieces gives the same messages, and the same bytes written back, as reading
///   everything at once;
/// - a connection that wrote a close frame is closed once time passes the close timeout.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn fuzz_ws_frames(data: &[u8], origin: Instant) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(control & 0x1f) + 1;
    let mut config = WsConfig::default();
    config.set_raw_frames(control & 0x20 != 0);
    if control & 0x40 != 0 {
        config.set_max_frame_size(1024).set_max_message_size(2048);
    }
    let config = Arc::new(config);
    let (whole, _) = run_frames(config.clone(), input, input.len().max(1), origin);
    let (pieces, mut h) = run_frames(config.clone(), input, step, origin);
    assert_eq!(whole, pieces, "split into {step}-byte reads");
    for msg in &pieces.messages {
        match msg {
            Message::Text(t) => assert!(std::str::from_utf8(t.as_bytes()).is_ok()),
            Message::Binary(b) => assert!(b.len() <= config.max_message_size()),
            Message::Frame(f) => assert!(f.payload.len() <= config.max_frame_size()),
            _ => {}
        }
    }
    let sent_close = server_frames(&pieces.written)
        .iter()
        .any(|(b0, _)| b0 & 0x0f == 0x8);
    h.advance(config.close_timeout() + Duration::from_secs(1));
    if sent_close {
        assert!(
            h.closed().is_some(),
            "a close frame went out, the connection stayed"
        );
    }
}

/// What a connection did with some input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Message>,
    written: Vec<u8>,
    closed: Option<CloseReason>,
}

fn run_handshake(
    input: &[u8],
    step: usize,
    tiny: bool,
    origin: Instant,
    eof: bool,
) -> (Option<String>, Harness<Recorder>) {
    let mut config = WsConfig::default();
    if tiny {
        config.http_limits_mut().max_head_size(96).max_headers(4);
    }
    let mut h = Harness::new(
        Recorder::new(Arc::new(config)),
        ConnConfig::default(),
        origin,
    );
    for piece in input.chunks(step) {
        h.peer_send(piece);
        let limit = if tiny { 96 } else { 8 * 1024 };
        assert!(
            h.conn().state().opened > 0 || h.conn().read_buffer_len() < limit + 64,
            "head buffered past its limit"
        );
    }
    if eof {
        h.peer_eof();
    }
    let written = h.take_written();
    let status = written
        .strip_prefix(b"HTTP/1.1 ")
        .map(|rest| String::from_utf8_lossy(&rest[..3.min(rest.len())]).into_owned());
    assert_eq!(status.is_some(), !written.is_empty(), "{written:?}");
    (status, h)
}

fn run_frames(
    config: Arc<WsConfig>,
    input: &[u8],
    step: usize,
    origin: Instant,
) -> (Outcome, Harness<Recorder>) {
    let max_frame = config.max_frame_size();
    let mut h = Harness::new(Recorder::new(config), ConnConfig::default(), origin);
    h.peer_send(&upgrade_request("/"));
    let _ = h.take_written();
    for piece in input.chunks(step) {
        h.peer_send(piece);
        assert!(
            h.conn().read_buffer_len() <= max_frame + 14 + 64 * 1024,
            "receive buffer past one frame"
        );
    }
    let messages = std::mem::take(&mut h.conn().state().messages);
    let outcome = Outcome {
        messages,
        written: h.take_written().to_vec(),
        closed: h.closed().cloned(),
    };
    (outcome, h)
}

/// What a status line says: nothing yet, upgraded, or refused.
fn kind(status: &Option<String>) -> Option<bool> {
    status.as_deref().map(|s| s == "101")
}

/// A valid upgrade request for `path`.
pub(crate) fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: gale.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A client frame: `b0` is FIN/RSV/opcode, masked with `key` unless it is `None`.
#[cfg(test)]
pub(crate) fn client_frame(b0: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mut body = payload.to_vec();
    if let Some(key) = key {
        out.extend_from_slice(&key);
        super::apply_mask(&mut body, key, 0);
    }
    out.extend_from_slice(&body);
    out
}

/// Per-connection record of a [`Recorder`].
#[derive(Default)]
pub(crate) struct Record {
    pub(crate) messages: Vec<Message>,
    pub(crate) opened: usize,
    pub(crate) closed: bool,
}

/// Echoes text and binary messages (and raw frames), records every message.
pub(crate) struct Recorder {
    config: Arc<WsConfig>,
    pub(crate) closes: Mutex<Vec<CloseReason>>,
}

impl Recorder {
    pub(crate) fn new(config: Arc<WsConfig>) -> Arc<Self> {
        Arc::new(Self {
            config,
            closes: Mutex::new(Vec::new()),
        })
    }
}

impl Handler for Recorder {
    type Protocol = WebSocket;
    type State = Record;

    fn protocol(&self) -> WebSocket {
        WebSocket::new(self.config.clone())
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Message) {
        if matches!(msg, Message::Open(_)) {
            cx.state().opened += 1;
        }
        if let Some(Outbound::Text(t)) = Option::<Outbound>::from(msg.clone())
            && t.as_str() == "close please"
        {
            cx.close();
        } else if let Some(echo) = Option::<Outbound>::from(msg.clone()) {
            let _ = cx.send(echo);
        }
        cx.state().messages.push(msg);
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        cx.state().closed = true;
        self.closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reason.clone());
    }
}

/// Splits what the server wrote into frames `(b0, payload)`; stops at the first incomplete
/// or masked frame (servers never mask).
pub(crate) fn server_frames(mut wire: &[u8]) -> Vec<(u8, Bytes)> {
    let mut frames = Vec::new();
    while let Some(h) = super::frame::parse_header(wire) {
        let Ok(len) = usize::try_from(h.payload_len) else {
            break;
        };
        if h.mask.is_some() || wire.len() - h.len < len {
            break;
        }
        frames.push((h.b0, Bytes::copy_from_slice(&wire[h.len..h.len + len])));
        wire = &wire[h.len + len..];
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<Vec<u8>> {
        let dir = format!("{}/../fuzz/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("the corpus ships with the repository")
            .map(|e| std::fs::read(e.expect("readable corpus dir").path()).unwrap())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "corpus {name} went missing");
        files
    }

    #[test]
    fn ws_handshake_corpus_replays_cleanly() {
        for data in corpus("ws_handshake") {
            fuzz_ws_handshake(&data, crate::t0());
        }
    }

    #[test]
    fn ws_frames_corpus_replays_cleanly() {
        for data in corpus("ws_frames") {
            fuzz_ws_frames(&data, crate::t0());
        }
    }

    #[test]
    fn frames_survive_pseudo_random_streams() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for _ in 0..200 {
            let data: Vec<u8> = (0..300).map(|_| next()).collect();
            fuzz_ws_frames(&data, crate::t0());
            fuzz_ws_handshake(&data, crate::t0());
        }
    }
}
