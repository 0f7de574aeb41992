//! permessage-deflate (RFC 7692) for `gale-load ws --deflate`: the offer, the server's answer,
//! and the client side of the codec, built on gale-core's [`PerMessageDeflate`].
//!
//! gale-core's transform is written for the server role: it compresses under the `server_*`
//! parameters and inflates under the `client_*` ones. The client compresses under the
//! `client_*` parameters, so its compressor is a `PerMessageDeflate` built with the agreed
//! parameters mirrored (client and server swapped).
//!
//! # Checking the replies
//!
//! The echo engine checks reply *bytes*. With deflate, the expected reply of a message is the
//! frame the server's compressor makes of it. A second, server-role `PerMessageDeflate` with
//! the agreed parameters and the server's level and threshold (`--deflate-level`,
//! `--deflate-threshold`, gale's defaults 1 and 256) compresses every payload in the same
//! order as the server does, so it produces the server's bytes exactly, as long as the server
//! is gale with the same zlib-rs as this binary (`bench/Cargo.lock` pins the version of gale's
//! own lock file). Another server, or other settings, show up as mismatched bytes, never as a
//! silently wrong figure.

use bytes::BytesMut;
use gale_core::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate, WindowBits};

/// What `--deflate` offers and how the server is expected to compress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offer {
    /// Also offer `server_no_context_takeover; client_no_context_takeover`.
    pub(crate) no_context_takeover: bool,
    /// The server's compression level (for the expected replies).
    pub(crate) server_level: u32,
    /// The server's threshold: shorter messages come back uncompressed.
    pub(crate) server_threshold: usize,
}

impl Offer {
    /// The `Sec-WebSocket-Extensions` request value.
    pub(crate) fn header_value(&self) -> &'static str {
        if self.no_context_takeover {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        } else {
            // What browsers offer.
            "permessage-deflate; client_max_window_bits"
        }
    }

    /// The per-connection codec for the server's `Sec-WebSocket-Extensions` answer.
    pub(crate) fn accept(&self, answer: &str) -> Result<ClientDeflate, String> {
        let params = parse_answer(answer)?;
        let mut server = DeflateConfig::default();
        server
            .set_level(self.server_level)
            .set_threshold(self.server_threshold);
        // The client compresses everything at least as long as the server's threshold too
        // (the same choice both ways keeps the figures symmetric), at level 1.
        let client = DeflateConfig::default()
            .set_threshold(self.server_threshold)
            .clone();
        Ok(ClientDeflate {
            tx: PerMessageDeflate::new(mirrored(params), &client),
            expect: PerMessageDeflate::new(params, &server),
        })
    }
}

/// One connection's codecs: the client's compressor and the model of the server's.
#[derive(Debug)]
pub(crate) struct ClientDeflate {
    tx: PerMessageDeflate,
    expect: PerMessageDeflate,
}

impl ClientDeflate {
    /// Compresses `payload` as the client sends it; `false` if it goes uncompressed.
    pub(crate) fn compress_request(&mut self, payload: &[u8], out: &mut BytesMut) -> bool {
        compress(&mut self.tx, payload, out)
    }

    /// The server's compressed reply to `payload`; `false` if it comes back uncompressed.
    pub(crate) fn compress_reply(&mut self, payload: &[u8], out: &mut BytesMut) -> bool {
        compress(&mut self.expect, payload, out)
    }
}

fn compress(pmd: &mut PerMessageDeflate, payload: &[u8], out: &mut BytesMut) -> bool {
    if !pmd.should_compress(payload.len()) {
        return false;
    }
    // invariant: compressing a slice into memory fails only on a zlib bug.
    pmd.compress(payload, out).expect("deflate");
    true
}

/// Parses the server's `permessage-deflate` answer into the agreed parameters.
fn parse_answer(answer: &str) -> Result<DeflateParams, String> {
    let mut parts = answer.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") {
        return Err(format!("unexpected extension answer {answer:?}"));
    }
    let mut params = DeflateParams::default();
    for p in parts {
        let (name, value) = p.split_once('=').map_or((p, None), |(n, v)| {
            (n.trim(), Some(v.trim().trim_matches('"')))
        });
        let bits = || {
            value
                .and_then(|v| v.parse().ok())
                .and_then(WindowBits::new)
                .ok_or_else(|| format!("bad {name} in {answer:?}"))
        };
        params = match name {
            "server_no_context_takeover" => params.with_server_no_context_takeover(true),
            "client_no_context_takeover" => params.with_client_no_context_takeover(true),
            "server_max_window_bits" => params.with_server_max_window_bits(bits()?),
            "client_max_window_bits" => params.with_client_max_window_bits(bits()?),
            _ => return Err(format!("unknown parameter {name:?} in {answer:?}")),
        };
    }
    Ok(params)
}

/// The parameters seen from the client: what the server does under `client_*` and back.
fn mirrored(p: DeflateParams) -> DeflateParams {
    DeflateParams::default()
        .with_server_no_context_takeover(p.client_no_context_takeover())
        .with_client_no_context_takeover(p.server_no_context_takeover())
        .with_server_max_window_bits(p.client_max_window_bits())
        .with_client_max_window_bits(p.server_max_window_bits())
}

#[cfg(test)]
mod tests {
    use super::{Offer, parse_answer};
    use bytes::BytesMut;
    use gale_core::deflate::{DeflateConfig, DeflateParams, PerMessageDeflate, WindowBits};

    #[test]
    fn answers_parse() {
        let p = parse_answer("permessage-deflate").unwrap();
        assert_eq!(p, DeflateParams::default());
        let p = parse_answer(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        )
        .unwrap();
        assert!(p.server_no_context_takeover() && !p.client_no_context_takeover());
        assert_eq!(p.client_max_window_bits(), WindowBits::new(10).unwrap());
        assert!(parse_answer("x-webkit-deflate-frame").is_err());
        assert!(parse_answer("permessage-deflate; client_max_window_bits").is_err());
    }

    #[test]
    fn requests_inflate_on_the_server_and_replies_model_the_server() {
        let offer = Offer {
            no_context_takeover: false,
            server_level: 1,
            server_threshold: 8,
        };
        let mut c = offer.accept("permessage-deflate").unwrap();
        let mut server = PerMessageDeflate::new(
            DeflateParams::default(),
            DeflateConfig::default().set_threshold(8),
        );
        for msg in [
            &b"hello hello hello hello"[..],
            b"hello again hello",
            b"tiny",
        ] {
            let mut req = BytesMut::new();
            if c.compress_request(msg, &mut req) {
                assert_eq!(&server.decompress(&req, 1 << 20).unwrap()[..], msg);
            } else {
                assert!(msg.len() < 8);
            }
            let (mut want, mut got) = (BytesMut::new(), BytesMut::new());
            assert_eq!(
                c.compress_reply(msg, &mut want),
                server.should_compress(msg.len())
            );
            if server.should_compress(msg.len()) {
                server.compress(msg, &mut got).unwrap();
            }
            assert_eq!(want, got, "the model makes the server's bytes");
        }
    }
}
