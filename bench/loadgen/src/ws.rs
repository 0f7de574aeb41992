//! WebSocket (RFC 6455) client pieces: the upgrade handshake and the [`Ws`] wire.
//!
//! The handshake is parsed, not byte-matched (servers differ in header order and extras): the
//! status line must be `HTTP/1.1 101`, and `Sec-WebSocket-Accept` must be
//! `base64(SHA-1(key ++ GUID))` for the connection's random key. Frames: every message is one
//! masked frame (FIN, random mask per frame): binary for random payloads, text for JSON; the
//! expected reply is the same payload as one unmasked frame of the same type, checked byte for
//! byte by the echo engine.
//!
//! With `--deflate` the upgrade offers permessage-deflate (RFC 7692); the server must agree.
//! Messages at or above the threshold then go out compressed (RSV1), and their expected
//! replies are the server's compressed frames, modelled by [`crate::deflate`].

use std::net::SocketAddr;

use bytes::BytesMut;

use crate::deflate::{ClientDeflate, Offer};
use crate::payload::Payload;
use crate::rng::WyRand;
use crate::wire::Wire;

/// Masked frames; the mask keys come from its own generator.
#[derive(Debug, Clone)]
pub(crate) struct Ws {
    masks: WyRand,
    payload: Payload,
    deflate: Option<Offer>,
    scratch: BytesMut,
}

impl Ws {
    /// A wire whose mask keys are fixed by `seed`, for `payload`s, offering `deflate`.
    pub(crate) fn new(seed: u64, payload: Payload, deflate: Option<Offer>) -> Self {
        Self {
            masks: WyRand::new(seed),
            payload,
            deflate,
            scratch: BytesMut::new(),
        }
    }
}

impl Wire for Ws {
    fn encode(
        &mut self,
        payload: &[u8],
        deflate: Option<&mut ClientDeflate>,
        out: &mut Vec<u8>,
        expect: &mut Vec<u8>,
    ) {
        let opcode = match self.payload {
            Payload::Random => 0x2,
            Payload::Json => 0x1,
        };
        let mask = (self.masks.next_u64() as u32).to_le_bytes();
        let Some(d) = deflate else {
            put_frame(out, FIN | opcode, payload, Some(mask));
            put_frame(expect, FIN | opcode, payload, None);
            return;
        };
        let s = &mut self.scratch;
        s.clear();
        if d.compress_request(payload, s) {
            put_frame(out, FIN | RSV1 | opcode, s, Some(mask));
        } else {
            put_frame(out, FIN | opcode, payload, Some(mask));
        }
        s.clear();
        if d.compress_reply(payload, s) {
            put_frame(expect, FIN | RSV1 | opcode, s, None);
        } else {
            put_frame(expect, FIN | opcode, payload, None);
        }
    }

    fn upgrades(&self) -> bool {
        true
    }

    fn payload(&self) -> Payload {
        self.payload
    }

    fn offer(&self) -> Option<Offer> {
        self.deflate
    }
}

/// Appends one frame: first byte `b0`, masked with `mask` if given.
fn put_frame(out: &mut Vec<u8>, b0: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    put_header(out, b0, payload.len(), mask.is_some());
    let Some(mask) = mask else {
        out.extend_from_slice(payload);
        return;
    };
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends a frame header for `len` payload bytes (mask key not included).
fn put_header(out: &mut Vec<u8>, b0: u8, len: usize, masked: bool) {
    let m = if masked { 0x80 } else { 0 };
    out.push(b0);
    if len < 126 {
        out.push(m | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(m | 126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A fresh random `Sec-WebSocket-Key` (base64 of 16 random bytes).
pub(crate) fn new_key(rng: &mut WyRand) -> String {
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    base64(&raw)
}

/// The upgrade request for `key`, offering `deflate` if given.
pub(crate) fn request(addr: SocketAddr, key: &str, deflate: Option<&Offer>) -> Vec<u8> {
    let ext = deflate.map_or_else(String::new, |o| {
        format!("Sec-WebSocket-Extensions: {}\r\n", o.header_value())
    });
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    )
    .into_bytes()
}

/// The `Sec-WebSocket-Accept` value a server must answer `key` with.
pub(crate) fn accept_for(key: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64(&h.digest().bytes())
}

/// Parses the server's handshake response from the bytes received so far.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some(n))`: a valid `101` with the right accept
/// value whose head is the first `n` bytes (bytes after it are WebSocket frames).
/// `Err`: not a valid upgrade, or the head is longer than [`MAX_RESPONSE_HEAD`].
/// [`extensions`] reads the head's `Sec-WebSocket-Extensions`.
pub(crate) fn parse_response(buf: &[u8], accept: &str) -> Result<Option<usize>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_RESPONSE_HEAD {
            Err(format!(
                "no end of the response head in {MAX_RESPONSE_HEAD} bytes"
            ))
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("expected a 101 response, got {status:?}"));
    }
    let got = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, v)| v.trim());
    match got {
        Some(v) if v == accept => Ok(Some(end + 4)),
        Some(v) => Err(format!("Sec-WebSocket-Accept {v:?}, expected {accept:?}")),
        None => Err("101 response without Sec-WebSocket-Accept".to_owned()),
    }
}

/// The `Sec-WebSocket-Extensions` value of a response head, if any.
pub(crate) fn extensions(head: &[u8]) -> Option<String> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| v.trim().to_owned())
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// RFC 6455's magic GUID.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// FIN in a frame's first byte.
const FIN: u8 = 0x80;
/// RSV1 in a frame's first byte: a compressed message (permessage-deflate).
const RSV1: u8 = 0x40;
/// Longest response head accepted.
pub(crate) const MAX_RESPONSE_HEAD: usize = 8 * 1024;

#[cfg(test)]
mod tests {
    use super::{Ws, accept_for, base64, extensions, parse_response};
    use crate::payload::Payload;
    use crate::wire::Wire;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn response_parsing() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                   sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x82\x00";
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        assert_eq!(parse_response(ok, accept), Ok(Some(ok.len() - 2)));
        assert_eq!(parse_response(&ok[..20], accept), Ok(None));
        assert!(parse_response(ok, "x").is_err());
        assert!(parse_response(b"HTTP/1.1 400 Bad\r\n\r\n", accept).is_err());
        assert_eq!(extensions(ok), None);
        let head = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        assert_eq!(extensions(head).as_deref(), Some("permessage-deflate"));
    }

    #[test]
    fn frames_masked_out_plain_back() {
        let mut w = Ws::new(1, Payload::Random, None);
        for len in [0usize, 5, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (mut out, mut expect) = (Vec::new(), Vec::new());
            w.encode(&payload, None, &mut out, &mut expect);
            let (hl, ext) = match len {
                0..126 => (2, 0),
                126..65536 => (4, 2),
                _ => (10, 8),
            };
            assert_eq!((out[0], expect[0]), (0x82, 0x82));
            assert_eq!(out[1] & 0x80, 0x80);
            assert_eq!(expect[1] & 0x80, 0);
            assert_eq!(out[2..2 + ext], expect[2..2 + ext]);
            assert_eq!(&expect[hl..], &payload[..]);
            let mask = &out[hl..hl + 4];
            let unmasked: Vec<u8> = out[hl + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i & 3])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }
}
