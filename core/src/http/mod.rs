//! HTTP/1.1 requests on [`httparse`], for the intake server and WebSocket upgrades.
//!
//! [`RequestDecoder`] turns bytes into [`Request`]s (head plus whole body) within
//! [`HttpLimits`]; [`Response`] writes answers, including the one for any [`HttpError`].
//! [`HttpServer`] puts both behind a connection [`Protocol`](crate::Protocol): keep-alive,
//! pipelining with in-order [`Reply`]s, `100 Continue`, error answers and request timeouts.
//! Pure and sans-IO like the rest of core: no sockets, no clock.
//!
//! ```text
//!   request-line CRLF             ─┐ head: ≤ max_head_size bytes, ≤ max_headers fields
//!   *( field-line CRLF ) CRLF     ─┘ parsed by httparse once complete
//!   body, framed by RFC 9112 §6.3:
//!     Transfer-Encoding: chunked  → chunks (+ ignored trailers), ≤ max_body after decoding
//!     Content-Length: n           → n bytes, n ≤ max_body (else 413 from the head alone)
//!     neither                     → empty; 411 for POST and PUT
//! ```
//!
//! What is refused, and how:
//!
//! | input | status |
//! |-------|--------|
//! | bad request line or field syntax, bare CR, obs-fold | 400 |
//! | HTTP/1.1 without `Host`, two `Host` fields | 400 |
//! | invalid or repeated `Content-Length` | 400 |
//! | `Transfer-Encoding` with `Content-Length`, in HTTP/1.0, empty, `chunked` twice | 400 |
//! | bad chunk framing, chunk-size line too long | 400 |
//! | `POST`/`PUT` without a length | 411 |
//! | body over `max_body` (declared or accumulated) | 413 |
//! | head over `max_head_size`, more than `max_headers` fields, trailers too big | 431 |
//! | a transfer coding other than `chunked` | 501 |
//! | well-formed `HTTP/x.y` other than 1.0 and 1.1 (a malformed version is 400) | 505 |
//!
//! Keep-alive follows RFC 9112 §9.3 ([`Request::keep_alive`]); pipelined requests are
//! decoded one per [`decode`](RequestDecoder::decode) call, the rest left in the buffer.
//! `Expect: 100-continue` is surfaced by [`RequestDecoder::take_expect_continue`]; any other
//! expectation is ignored (RFC 9110 §10.1.1 allows that).
//!
//! ```
//! use bytes::BytesMut;
//! use gale_core::http::{HttpError, RequestDecoder, Response};
//!
//! let mut src = BytesMut::from(
//!     &b"POST /task/v1/message HTTP/1.1\r\nHost: gale\r\nContent-Length: 22\r\n\r\n{\"Msg\":\"test message\"}"[..],
//! );
//! let req = RequestDecoder::new().decode(&mut src)?.expect("a whole request");
//! let response = match (req.method(), req.path()) {
//!     ("POST", "/task/v1/message") => Response::new(200).with_body("Message successfully received!\n"),
//!     (_, "/task/v1/message") => Response::from_error(&HttpError::method_not_allowed("POST")),
//!     _ => Response::from_error(&HttpError::not_found()),
//! };
//! let mut out = BytesMut::new();
//! response.for_request(req.head()).encode(&mut out);
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! # Ok::<(), HttpError>(())
//! ```

mod body;
mod decoder;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz;
mod head;
mod limits;
#[cfg(test)]
mod props;
mod request;
mod response;
mod server;

pub use decoder::{CONTINUE_RESPONSE, RequestDecoder};
pub use error::HttpError;
#[cfg(feature = "fuzzing")]
pub use fuzz::fuzz_http_request;
pub use limits::HttpLimits;
pub use request::{Headers, Request, RequestHead, Version};
pub use response::{InvalidHeader, Response, reason_phrase};
pub use server::{HttpServer, Reply, RequestSeq};
