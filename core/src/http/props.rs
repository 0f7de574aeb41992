//! Properties of the whole decoder, checked with quickcheck.

use bytes::BytesMut;
use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::fuzz::fuzz_http_request;
use super::{HttpError, HttpLimits, Request, RequestDecoder};

/// A request the generator can write in several framings.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    query: Option<String>,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    /// `Some(sizes)`: chunked, cut into chunks of these sizes (cycled); `None`: Content-Length.
    chunks: Option<Vec<usize>>,
    close: bool,
    /// An empty line before the request line, which servers must skip (RFC 9112 §2.2).
    leading_crlf: bool,
}

impl Arbitrary for Req {
    fn arbitrary(g: &mut Gen) -> Self {
        let method = *g
            .choose(&["GET", "POST", "PUT", "DELETE", "PATCH"])
            .expect("non-empty");
        let fields = (0..usize::arbitrary(g) % 4)
            .map(|i| (format!("X-{}-{i}", word(g)), word(g)))
            .collect();
        let chunks = bool::arbitrary(g).then(|| {
            let sizes: Vec<usize> = Vec::arbitrary(g);
            sizes.into_iter().map(|s| s % 40 + 1).collect()
        });
        Self {
            method,
            path: format!("/{}", word(g)),
            query: bool::arbitrary(g).then(|| word(g)),
            fields,
            body: Vec::arbitrary(g),
            chunks,
            close: u8::arbitrary(g) % 8 == 0,
            leading_crlf: u8::arbitrary(g) % 8 == 0,
        }
    }
}

impl Req {
    fn write(&self, out: &mut Vec<u8>) {
        if self.leading_crlf {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("{} {}", self.method, self.path).as_bytes());
        if let Some(q) = &self.query {
            out.extend_from_slice(format!("?{q}").as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\nHost: gale\r\n");
        for (n, v) in &self.fields {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        match &self.chunks {
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes
                        .get(i % sizes.len().max(1))
                        .copied()
                        .unwrap_or(rest.len())
                        .min(rest.len());
                    let ext = if i % 3 == 1 { ";ext=\"v\"" } else { "" };
                    let size = if i % 2 == 0 {
                        format!("{n:x}")
                    } else {
                        format!("{n:X}")
                    };
                    out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    i += 1;
                }
                out.extend_from_slice(b"0\r\n");
                if self.body.len() % 2 == 1 {
                    out.extend_from_slice(b"Trailer-Field: x\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            None if self.body.is_empty() && !matches!(self.method, "POST" | "PUT") => {
                out.extend_from_slice(b"\r\n");
            }
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
        }
    }

    fn matches(&self, got: &Request) -> bool {
        got.method() == self.method
            && got.path() == self.path
            && got.query() == self.query.as_deref()
            && got.body()[..] == self.body[..]
            && got.keep_alive() != self.close
            && self
                .fields
                .iter()
                .all(|(n, v)| got.header(n) == Some(v.as_bytes()))
    }
}

fn word(g: &mut Gen) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.";
    (0..usize::arbitrary(g) % 9)
        .map(|_| char::from(*g.choose(CHARS).expect("non-empty")))
        .collect()
}

/// Cuts `wire` into reads of sizes taken from `cuts` (cycled; each 1 to 32 bytes).
fn reads<'a>(wire: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .map_or(rest.len(), |&c| usize::from(c % 32) + 1);
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        out.push(piece);
        rest = tail;
        i += 1;
    }
    out
}

/// Feeds `reads` one by one; returns the requests and the first error.
fn feed(decoder: &mut RequestDecoder, reads: &[&[u8]]) -> (Vec<Request>, Option<HttpError>) {
    let mut src = BytesMut::new();
    let mut got = Vec::new();
    for piece in reads {
        src.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(req)) => got.push(req),
                Ok(None) => {
                    assert!(src.len() <= decoder.buffer_bound());
                    break;
                }
                Err(err) => return (got, Some(err)),
            }
        }
    }
    match decoder.decode_eof(&mut src) {
        Ok(last) => got.extend(last),
        Err(err) => return (got, Some(err)),
    }
    (got, None)
}

fn check(tests: u64, prop: impl quickcheck::Testable) {
    QuickCheck::new().tests(tests).quickcheck(prop);
}

#[test]
fn any_split_of_pipelined_requests_decodes_to_the_same_requests() {
    fn prop(reqs: Vec<Req>, cuts: Vec<u8>) -> bool {
        let mut wire = Vec::new();
        for r in &reqs {
            r.write(&mut wire);
        }
        let (split, err) = feed(&mut RequestDecoder::new(), &reads(&wire, &cuts));
        let (whole, whole_err) = feed(&mut RequestDecoder::new(), &[&wire]);
        err.is_none()
            && whole_err.is_none()
            && split == whole
            && split.len() == reqs.len()
            && reqs.iter().zip(&split).all(|(want, got)| want.matches(got))
    }
    check(300, prop as fn(Vec<Req>, Vec<u8>) -> bool);
}

#[test]
fn declared_oversize_body_fails_before_any_body_byte() {
    fn prop(max_body: u16, excess: u16) -> bool {
        let mut limits = HttpLimits::default();
        limits.max_body(usize::from(max_body));
        let declared = u64::from(max_body) + 1 + u64::from(excess);
        let head = format!("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: {declared}\r\n\r\n");
        let mut decoder = RequestDecoder::with_limits(limits);
        let mut src = BytesMut::new();
        let (last, before) = head.as_bytes().split_last().expect("non-empty");
        for &b in before {
            src.extend_from_slice(&[b]);
            if decoder.decode(&mut src) != Ok(None) {
                return false;
            }
        }
        src.extend_from_slice(&[*last]);
        let refused = decoder.decode(&mut src)
            == Err(HttpError::BodyTooLarge {
                max: limits.max_body,
            });
        // Expect: 100-continue would not be offered either: the error came first.
        refused && !decoder.take_expect_continue()
    }
    check(200, prop as fn(u16, u16) -> bool);
}

#[test]
fn chunked_body_over_the_limit_fails_at_the_crossing_size_line() {
    fn prop(sizes: Vec<u8>, slack: u8) -> bool {
        // Put the limit at, just under or just over the body size so the boundary is hit.
        let total: usize = sizes.iter().map(|&s| usize::from(s)).sum();
        let max_body = (total + 2).saturating_sub(usize::from(slack % 5));
        let mut limits = HttpLimits::default();
        limits.max_body(max_body);
        let mut wire =
            b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut total = 0;
        let mut fail_at = None;
        for &s in sizes.iter().filter(|&&s| s > 0) {
            wire.extend_from_slice(format!("{s:x}\r\n").as_bytes());
            total += usize::from(s);
            if total > max_body && fail_at.is_none() {
                fail_at = Some(wire.len());
            }
            wire.extend(std::iter::repeat_n(b'a', usize::from(s)));
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut decoder = RequestDecoder::with_limits(limits);
        let mut src = BytesMut::new();
        for (i, &b) in wire.iter().enumerate() {
            src.extend_from_slice(&[b]);
            match decoder.decode(&mut src) {
                Ok(None) => {}
                Ok(Some(req)) => {
                    return fail_at.is_none() && i + 1 == wire.len() && req.body().len() == total;
                }
                Err(err) => {
                    return Some(i + 1) == fail_at
                        && err == HttpError::BodyTooLarge { max: max_body };
                }
            }
        }
        false
    }
    check(200, prop as fn(Vec<u8>, u8) -> bool);
}

#[test]
fn random_bytes_never_panic_and_stay_bounded() {
    fn prop(data: Vec<u8>) {
        fuzz_http_request(&data);
    }
    check(500, prop as fn(Vec<u8>));
}

#[test]
fn mutated_requests_never_panic_and_stay_bounded() {
    fn prop(reqs: Vec<Req>, control: u8, edits: Vec<(u16, u8, u8)>) {
        let mut data = vec![control];
        for r in &reqs {
            r.write(&mut data);
        }
        for (at, kind, byte) in edits {
            let at = 1 + usize::from(at) % data.len();
            let interesting = *b"\r\n :;,0-9aAfF\t\x00\x7f";
            let byte = if byte % 2 == 0 {
                interesting[usize::from(byte / 2) % interesting.len()]
            } else {
                byte
            };
            match kind % 3 {
                0 if at < data.len() => data[at] = byte,
                1 => data.insert(at, byte),
                _ if at < data.len() => {
                    data.remove(at);
                }
                _ => {}
            }
        }
        fuzz_http_request(&data);
    }
    check(500, prop as fn(Vec<Req>, u8, Vec<(u16, u8, u8)>));
}
