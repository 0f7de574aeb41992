//! [`RequestDecoder`]: bytes in, one [`Request`] out at a time.

use bytes::{Bytes, BytesMut};

use super::body::BodyDecoder;
use super::head::{HeadScan, decode_head};
use super::{HttpError, HttpLimits, Request, RequestHead};

/// The interim response to write when [`RequestDecoder::take_expect_continue`] says so.
pub const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Decodes HTTP/1.1 requests from a byte stream, one at a time, within [`HttpLimits`].
///
/// Same shape as a tokio-util `Decoder`: [`decode`](Self::decode) returns `Ok(None)` when
/// it needs more bytes, `Ok(Some(request))` after consuming exactly one request from the
/// front of `src` (pipelined requests stay in `src` for the next call), or an error whose
/// [`status`](HttpError::status) the caller answers with
/// [`Response::from_error`](super::Response::from_error) before closing the connection.
///
/// ```text
///             decode(src)                  ┌───────────────┐
///   ┌──────┐  head, no body  ────────────► │ Ok(Some(req)) │ ◄─── body complete ──┐
///   │ Head │                               └───────────────┘                      │
///   └──┬───┘  head with body  ──► ┌──────┐ ───────────────────────────────────────┘
///      │                          │ Body │ ── Ok(None); with `Expect: 100-continue`,
///      └──► Ok(None): head        └──────┘    take_expect_continue() is true once
///           incomplete
///   any error ──► failed: every later call returns the same error; answer it and close
/// ```
///
/// The driver loop, with the `100 Continue` hand-shake:
///
/// ```
/// use bytes::BytesMut;
/// use gale_core::http::{CONTINUE_RESPONSE, RequestDecoder, Response};
///
/// let mut decoder = RequestDecoder::new();
/// let mut src = BytesMut::new();
/// let mut out = BytesMut::new();
/// let reads: [&[u8]; 2] = [
///     b"POST /task/v1/message HTTP/1.1\r\nHost: gale\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n",
///     b"{\"a\":1}GET /health HTTP/1.1\r\nHost: gale\r\n\r\n",
/// ];
/// let mut paths = Vec::new();
/// for read in reads {
///     src.extend_from_slice(read);
///     loop {
///         match decoder.decode(&mut src) {
///             Ok(Some(req)) => {
///                 paths.push(req.path().to_owned());
///                 Response::new(200).for_request(req.head()).encode(&mut out);
///             }
///             Ok(None) => break,
///             Err(err) => {
///                 Response::from_error(&err).encode(&mut out);
///                 break; // then close the connection
///             }
///         }
///     }
///     if decoder.take_expect_continue() {
///         out.extend_from_slice(CONTINUE_RESPONSE);
///     }
/// }
/// assert_eq!(paths, ["/task/v1/message", "/health"]);
/// assert!(out.starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
/// ```
#[derive(Debug)]
pub struct RequestDecoder {
    limits: HttpLimits,
    require_host: bool,
    /// Search for the next head; used while `pending` is `None`.
    scan: HeadScan,
    /// The request whose body is arriving.
    pending: Option<Pending>,
    continue_pending: bool,
    failed: Option<HttpError>,
}

impl RequestDecoder {
    /// A decoder with the default [`HttpLimits`].
    pub fn new() -> Self {
        Self::with_limits(HttpLimits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: HttpLimits) -> Self {
        Self {
            limits,
            require_host: true,
            scan: HeadScan::default(),
            pending: None,
            continue_pending: false,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// The limits, to change; changes apply from the next [`decode`](Self::decode) call.
    pub fn limits_mut(&mut self) -> &mut HttpLimits {
        &mut self.limits
    }

    /// Whether an HTTP/1.1 request without a `Host` field is refused with 400, as
    /// [RFC 9112 §3.2](https://www.rfc-editor.org/rfc/rfc9112#section-3.2) requires.
    /// Default: `true`. More than one `Host` is always refused.
    pub fn require_host(&mut self, yes: bool) -> &mut Self {
        self.require_host = yes;
        self
    }

    /// Decodes the next request from the front of `src`.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Consumed bytes (a finished head, chunk
    /// framing) are removed from `src`; a `Content-Length` body is left in `src` until it
    /// is complete and then split off without copying.
    ///
    /// # Errors
    ///
    /// Any [`HttpError`] the request earns; from then on the decoder is failed and returns
    /// the same error (see [`HttpError::closes_connection`]).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.decode_step(src).inspect_err(|err| {
            self.failed = Some(err.clone());
            self.continue_pending = false;
        })
    }

    /// Like [`decode`](Self::decode), when the peer has closed its side: a request still
    /// incomplete becomes [`HttpError::UnexpectedEof`]; an empty buffer between requests
    /// gives `Ok(None)`.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), plus [`HttpError::UnexpectedEof`].
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        if let Some(request) = self.decode(src)? {
            return Ok(Some(request));
        }
        if src.is_empty() && self.is_idle() {
            return Ok(None);
        }
        let err = self.eof_error(src.len());
        self.failed = Some(err.clone());
        self.continue_pending = false;
        Err(err)
    }

    /// The error for a stream that ended with `buffered` bytes of an unfinished request.
    pub fn eof_error(&mut self, buffered: usize) -> HttpError {
        HttpError::UnexpectedEof { buffered }
    }

    /// How many bytes `src` must hold, counted from its start, for the next
    /// [`decode`](Self::decode) to finish the request in progress, when known: the length
    /// of a `Content-Length` body. `None` while reading a head or a chunked body (they are
    /// consumed as they arrive).
    pub fn frame_size_hint(&self, _src: &BytesMut) -> Option<usize> {
        match &self.pending {
            Some(pending) if self.failed.is_none() => pending.body.size_hint(),
            _ => None,
        }
    }

    /// Whether the caller should now write [`CONTINUE_RESPONSE`]: true once per request
    /// whose head carried `Expect: 100-continue` (HTTP/1.1) and whose body has not fully
    /// arrived when [`decode`](Self::decode) returned `Ok(None)`. Reading it clears it. An
    /// application that will refuse the request anyway (inspect
    /// [`pending_head`](Self::pending_head)) may answer with a final status instead, and
    /// then close.
    #[must_use]
    pub fn take_expect_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_pending)
    }

    /// The head of the request whose body is arriving, if any.
    pub fn pending_head(&self) -> Option<&RequestHead> {
        self.pending.as_ref().map(|pending| &pending.head)
    }

    /// Whether no request has been partially consumed: the decoder is between requests
    /// (bytes of the next head may already sit in `src`).
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
    }

    /// Whether the decoder returned an error and will keep returning it.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The most bytes `src` may hold after `decode` returned `Ok(None)`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn buffer_bound(&self) -> usize {
        match &self.pending {
            _ if self.failed.is_some() => usize::MAX,
            None => self.limits.max_head_size.saturating_sub(1),
            Some(pending) => pending.body.buffer_bound(&self.limits),
        }
    }

    fn decode_step(&mut self, src: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        let mut pending = match self.pending.take() {
            Some(pending) => pending,
            None => {
                let Some((head, kind)) =
                    decode_head(&mut self.scan, src, &self.limits, self.require_host)?
                else {
                    return Ok(None);
                };
                match BodyDecoder::new(kind) {
                    None => {
                        return Ok(Some(Request {
                            head,
                            body: Bytes::new(),
                        }));
                    }
                    Some(body) => Pending {
                        head,
                        body,
                        continue_offered: false,
                    },
                }
            }
        };
        if let Some(body) = pending.body.decode(src, &self.limits)? {
            self.continue_pending = false;
            return Ok(Some(Request {
                head: pending.head,
                body,
            }));
        }
        if !pending.continue_offered && pending.head.expects_continue() {
            pending.continue_offered = true;
            self.continue_pending = true;
        }
        self.pending = Some(pending);
        Ok(None)
    }
}

impl crate::codec::Decoder for RequestDecoder {
    type Item = Request;
    type Error = HttpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        Self::decode(self, src)
    }

    /// Forwarded explicitly: a chunked body is consumed as it arrives, so `src` may be empty
    /// while a request is half-read, which the trait's default would take for a clean end.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Request>, HttpError> {
        Self::decode_eof(self, src)
    }

    fn eof_error(&mut self, buffered: usize) -> HttpError {
        Self::eof_error(self, buffered)
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        Self::frame_size_hint(self, src)
    }
}

impl Default for RequestDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// A request between its head and the end of its body.
#[derive(Debug)]
struct Pending {
    head: RequestHead,
    body: BodyDecoder,
    /// `100 Continue` was already signalled for this request.
    continue_offered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Version;

    fn decode_all(decoder: &mut RequestDecoder, src: &mut BytesMut) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(req) = decoder.decode(src).expect("valid requests") {
            out.push(req);
        }
        out
    }

    const INTAKE: &[u8] = b"POST /task/v1/message HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{\"Msg\":\"test message 12\"}\n";

    #[test]
    fn decodes_the_intake_request() {
        let mut src = BytesMut::from(INTAKE);
        let req = RequestDecoder::new().decode(&mut src).unwrap().unwrap();
        assert_eq!(req.method(), "POST");
        assert_eq!(req.path(), "/task/v1/message");
        assert_eq!(req.query(), None);
        assert_eq!(req.version(), Version::Http11);
        assert_eq!(req.header_str("content-type"), Some("application/json"));
        assert_eq!(&req.body()[..], b"{\"Msg\":\"test message 12\"}\n");
        assert!(req.keep_alive());
        assert!(src.is_empty());
    }

    #[test]
    fn pipelined_requests_are_consumed_one_at_a_time() {
        let mut raw = INTAKE.to_vec();
        raw.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        raw.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
        raw.extend_from_slice(b"\r\nGET /c HTTP/1.0\r\n\r\nGET /d HT");
        let mut src = BytesMut::from(&raw[..]);
        let mut dec = RequestDecoder::new();
        let first = dec.decode(&mut src).unwrap().unwrap();
        assert_eq!(first.path(), "/task/v1/message");
        assert!(
            src.starts_with(b"GET /a "),
            "the next request stays in the buffer"
        );
        let rest = decode_all(&mut dec, &mut src);
        let paths: Vec<&str> = rest.iter().map(Request::path).collect();
        assert_eq!(paths, ["/a", "/b", "/c"]);
        assert_eq!(&rest[1].body()[..], b"hi");
        assert!(!rest[2].keep_alive());
        assert_eq!(&src[..], b"GET /d HT");
    }

    #[test]
    fn expect_continue_is_signalled_once_while_the_body_is_missing() {
        let mut dec = RequestDecoder::new();
        let mut src = BytesMut::from(
            &b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n"[..],
        );
        assert_eq!(dec.decode(&mut src), Ok(None));
        assert_eq!(dec.pending_head().map(RequestHead::path), Some("/x"));
        assert!(dec.take_expect_continue());
        assert!(!dec.take_expect_continue(), "only once");
        src.extend_from_slice(b"ab");
        assert_eq!(dec.decode(&mut src), Ok(None));
        assert!(
            !dec.take_expect_continue(),
            "not again for the same request"
        );
        src.extend_from_slice(b"cd");
        assert_eq!(&dec.decode(&mut src).unwrap().unwrap().body()[..], b"abcd");
        assert!(dec.pending_head().is_none());
    }

    #[test]
    fn expect_continue_is_not_signalled_when_not_needed() {
        let cases: [&[u8]; 4] = [
            // the body came with the head
            b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
            // no body at all
            b"GET /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
            // HTTP/1.0 expectations are ignored
            b"PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            // no expectation
            b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n",
        ];
        for raw in cases {
            let mut dec = RequestDecoder::new();
            let _ = dec.decode(&mut BytesMut::from(raw)).unwrap();
            assert!(
                !dec.take_expect_continue(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn expect_continue_for_chunked_bodies_and_cleared_by_errors() {
        let mut dec = RequestDecoder::new();
        let mut src = BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
        assert_eq!(dec.decode(&mut src), Ok(None));
        src.extend_from_slice(b"zz\r\n");
        assert!(dec.decode(&mut src).is_err());
        assert!(!dec.take_expect_continue(), "no 100 after an error");
    }

    #[test]
    fn errors_stick() {
        let mut dec = RequestDecoder::new();
        let mut src = BytesMut::from(
            &b"POST / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        );
        assert_eq!(dec.decode(&mut src), Err(HttpError::LengthRequired));
        assert!(dec.is_failed());
        assert_eq!(dec.decode(&mut src), Err(HttpError::LengthRequired));
        assert_eq!(dec.decode_eof(&mut src), Err(HttpError::LengthRequired));
    }

    #[test]
    fn eof_between_requests_is_clean_inside_one_is_an_error() {
        let mut dec = RequestDecoder::new();
        assert_eq!(dec.decode_eof(&mut BytesMut::new()), Ok(None));
        assert_eq!(dec.decode_eof(&mut BytesMut::from(&b"\r\n"[..])), Ok(None));
        let mut src = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /"[..]);
        assert!(dec.decode_eof(&mut src).unwrap().is_some());
        assert_eq!(
            dec.decode_eof(&mut src),
            Err(HttpError::UnexpectedEof { buffered: 5 })
        );
        assert!(dec.is_failed());

        // a chunked body partly consumed: the buffer is empty but a request is open.
        let mut dec = RequestDecoder::new();
        let mut src = BytesMut::from(
            &b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"[..],
        );
        assert_eq!(dec.decode(&mut src), Ok(None));
        assert!(src.is_empty());
        assert!(!dec.is_idle());
        assert_eq!(
            dec.decode_eof(&mut src),
            Err(HttpError::UnexpectedEof { buffered: 0 })
        );
        assert_eq!(dec.eof_error(3).status(), 400);
    }

    #[test]
    fn frame_size_hint_is_the_content_length() {
        let mut dec = RequestDecoder::new();
        let mut src =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc"[..]);
        assert_eq!(dec.frame_size_hint(&src), None);
        assert_eq!(dec.decode(&mut src), Ok(None));
        assert_eq!(dec.frame_size_hint(&src), Some(100));
        assert_eq!(src.len(), 3);
        assert!(src.len() <= dec.buffer_bound());
    }

    #[test]
    fn limits_can_change_between_requests() {
        let mut dec = RequestDecoder::new();
        dec.limits_mut().max_body(3);
        assert_eq!(dec.limits().body_limit(), 3);
        let mut src =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n"[..]);
        assert_eq!(
            dec.decode(&mut src),
            Err(HttpError::BodyTooLarge { max: 3 })
        );
        let mut dec = RequestDecoder::default();
        dec.require_host(false);
        assert!(
            dec.decode(&mut BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn websocket_upgrade_head_leaves_frames_in_the_buffer() {
        let mut src = BytesMut::from(&b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n\x81\x05hello"[..]);
        let req = RequestDecoder::new().decode(&mut src).unwrap().unwrap();
        assert!(req.has_token("connection", "upgrade"));
        assert!(req.has_token("upgrade", "WebSocket"));
        assert_eq!(
            req.header("sec-websocket-key"),
            Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..])
        );
        let protocols: Vec<&[u8]> = req.headers().tokens("sec-websocket-protocol").collect();
        assert_eq!(protocols, [&b"chat"[..], b"superchat"]);
        assert_eq!(req.query(), Some("room=1"));
        assert_eq!(&src[..], b"\x81\x05hello");
    }
}
