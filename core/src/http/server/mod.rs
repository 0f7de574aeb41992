//! [`HttpServer`]: HTTP/1.1 as a connection [`Protocol`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{CONTINUE_RESPONSE, HttpError, HttpLimits, Request, RequestDecoder, Response, Version};
use crate::protocol::{Protocol, ProtocolCx, ProtocolError};

#[cfg(test)]
mod tests;

/// The position of a request on its connection (0 for the first): names the request a
/// [`Reply`] answers. Read it with [`HttpServer::request_seq`] while handling the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestSeq(u64);

impl RequestSeq {
    /// The sequence number, for logs.
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request#{}", self.0)
    }
}

/// What a handler of an [`HttpServer`] connection sends: a [`Response`] and the request it
/// answers.
///
/// `Reply::from(response)` (or `response.into()`) answers the oldest request still owed a
/// response; [`Reply::to`] answers a given request, so replies can arrive in any order.
/// Do not call [`Response::for_request`]: the server fits the response to its request
/// (`Connection` field, `HEAD`) itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    to: Option<RequestSeq>,
    response: Response,
}

impl Reply {
    /// Answers the oldest request still owed a response.
    #[must_use]
    pub fn new(response: Response) -> Self {
        Self { to: None, response }
    }

    /// Answers request `seq`.
    #[must_use]
    pub fn to(seq: RequestSeq, response: Response) -> Self {
        Self {
            to: Some(seq),
            response,
        }
    }

    /// The request this reply answers, if it names one.
    #[must_use]
    pub fn seq(&self) -> Option<RequestSeq> {
        self.to
    }

    /// The response.
    #[must_use]
    pub fn response(&self) -> &Response {
        &self.response
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Self::new(response)
    }
}

/// HTTP/1.1 server side of a connection: decodes [`Request`]s, writes [`Reply`]s in request
/// order, and handles `100 Continue`, keep-alive, pipelining, errors and slow requests.
/// Requests in, responses out, in request order, whenever and from wherever the
/// application answers.
///
/// ```text
///  bytes ─► RequestDecoder ─► Request #0, #1, #2 … ─► Handler::on_message
///                                   │ one slot per request, oldest first
///                                   ▼
///             ┌──────────┬──────────┬──────────┐
///   queue:    │ #0 owed  │ #1 ready │ #2 owed  │   Reply::to(#1, …) parks in its slot
///             └────┬─────┴──────────┴──────────┘
///                  └─ Reply for #0 arrives ─► #0 and #1 are written, #2 still owed
/// ```
///
/// Responses leave in request order (RFC 9112 §9.3.2) even when the application answers out
/// of order from worker threads through a [`ConnHandle`](crate::ConnHandle): each request
/// has a [`RequestSeq`], a [`Reply`] names the request it answers, and a reply for a later
/// request waits in its slot until every earlier one has been written. A reply without a
/// sequence number answers the oldest request still owed one, which is right for handlers
/// that answer in `on_message` or otherwise in order.
///
/// What the protocol does on its own:
///
/// | situation | what is written | then |
/// |---|---|---|
/// | `Expect: 100-continue`, body not yet sent | [`CONTINUE_RESPONSE`], once every earlier response is out | read the body |
/// | request the decoder refuses ([`HttpError`]) | [`Response::from_error`], in its turn | close |
/// | request with `Connection: close`, or HTTP/1.0 without keep-alive | its response, with `Connection: close` | close; later bytes are ignored |
/// | a response that [closes the connection](Response::closes_connection) | that response | close |
/// | a request still incomplete after [`request_timeout`](HttpServer::request_timeout) | 408 | close |
/// | more than [`max_pipeline`](HttpServer::max_pipeline) requests owed a response | nothing more is read | close after the last owed response (the client retries the rest, RFC 9112 §9.3.2) |
/// | HTTP/1.0 with `Connection: keep-alive` | `Connection: keep-alive` | keep reading |
/// | `HEAD` | the head with the body's `Content-Length`, no body | keep reading |
///
/// When nothing is owed, a decoder error returns the error from
/// [`decode`](Protocol::decode) after queueing its response, so the connection flushes the
/// response and closes with [`CloseReason::Protocol`](crate::CloseReason::Protocol). When
/// earlier requests are still owed a response, the error response waits for them and the
/// connection then closes as [`CloseReason::Local`](crate::CloseReason::Local).
///
/// A handler that answers later keeps the [`RequestSeq`] of the request it is handling:
///
/// ```
/// use bytes::Bytes;
/// use gale_core::http::{HttpServer, Reply, Request, Response};
/// use gale_core::{Context, Handler};
///
/// struct Api;
///
/// impl Handler for Api {
///     type Protocol = HttpServer;
///     type State = ();
///
///     fn protocol(&self) -> HttpServer {
///         HttpServer::new()
///     }
///
///     fn on_message(&self, cx: &mut Context<'_, Self>, req: Request) {
///         if req.path() == "/now" {
///             // Answered at once: no sequence number needed.
///             let _ = cx.send(Response::new(200).with_body("now\n").into());
///             return;
///         }
///         // Answered later, from another thread: remember which request this is.
///         let seq = cx.protocol().request_seq().expect("a request was just decoded");
///         let handle = cx.handle().expect("every gale driver provides handles");
///         std::thread::spawn(move || {
///             let _ = handle.send(Reply::to(seq, Response::new(200).with_body("later\n")));
///         });
///     }
/// }
/// ```
///
/// A peer that half-closes (EOF) after its last request still gets every response owed to
/// it: the protocol is not [idle](Protocol::is_idle) while a request waits for its answer,
/// so the connection stays open for replies arriving later, for at most
/// [`request_timeout`](Self::request_timeout) from the EOF. Past that, the requests still
/// unanswered are dropped and the connection closes
/// ([`CloseReason::Local`](crate::CloseReason::Local)). With no request timeout, only the
/// connection's idle timeout bounds the wait.
///
/// Limits, with defaults and setters:
///
/// | limit | default | beyond it |
/// |---|---|---|
/// | request sizes ([`HttpLimits`]) | see [`HttpLimits`] | 4xx/5xx, close |
/// | [`max_pipeline`](Self::max_pipeline) | 32 requests owed a response | stop reading, close after answering them |
/// | [`request_timeout`](Self::request_timeout) | 60 s from a request's first byte to its last | 408, close |
/// | the same, from the peer's EOF to the last owed response | 60 s | the unanswered requests are dropped, close |
///
/// A reply the protocol cannot place (an unknown or already answered [`RequestSeq`], or no
/// request owed a response) is caller misuse: [`Protocol::encode`] returns an error, which
/// [`Context::send`](crate::Context::send) hands back as
/// [`SendError::Encode`](crate::SendError::Encode).
#[derive(Debug)]
pub struct HttpServer {
    decoder: RequestDecoder,
    /// Requests decoded and not yet written, oldest first: `owed[i]` is request `first + i`.
    owed: VecDeque<Slot>,
    /// Sequence number of `owed[0]`.
    first: u64,
    /// Sequence number of the last request handed to the application.
    last: Option<RequestSeq>,
    max_pipeline: usize,
    request_timeout: Option<Duration>,
    /// When the request now arriving sent its first byte.
    started: Option<Instant>,
    /// No more requests are read: one asked to close, the decoder failed, the pipeline is
    /// full, or the connection is closing.
    stopped: bool,
    /// A `100 Continue` waits for earlier responses to be written.
    continue_owed: bool,
    /// The peer sent EOF while responses were owed: give up on them at this instant.
    eof_deadline: Option<Instant>,
}

impl HttpServer {
    /// Default of [`max_pipeline`](Self::max_pipeline): 32.
    pub const DEFAULT_MAX_PIPELINE: usize = 32;
    /// Default of [`request_timeout`](Self::request_timeout): 60 s, nginx's
    /// `client_header_timeout`.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// A server protocol with the default limits.
    #[must_use]
    pub fn new() -> Self {
        Self::with_decoder(RequestDecoder::new())
    }

    /// A server protocol with these request limits.
    #[must_use]
    pub fn with_limits(limits: HttpLimits) -> Self {
        Self::with_decoder(RequestDecoder::with_limits(limits))
    }

    /// A server protocol around a configured decoder.
    #[must_use]
    pub fn with_decoder(decoder: RequestDecoder) -> Self {
        Self {
            decoder,
            owed: VecDeque::new(),
            first: 0,
            last: None,
            max_pipeline: Self::DEFAULT_MAX_PIPELINE,
            request_timeout: Some(Self::DEFAULT_REQUEST_TIMEOUT),
            started: None,
            stopped: false,
            continue_owed: false,
            eof_deadline: None,
        }
    }

    /// The request decoder, to change its limits between requests.
    pub fn decoder_mut(&mut self) -> &mut RequestDecoder {
        &mut self.decoder
    }

    /// Most requests owed a response at once. When that many are owed and more bytes
    /// arrive, the server stops reading, answers the owed requests (the last one with
    /// `Connection: close`) and closes; RFC 9112 §9.3.2 has clients retry the requests left
    /// unanswered. Handlers that answer in `on_message` never owe more than one. Default
    /// [`DEFAULT_MAX_PIPELINE`](Self::DEFAULT_MAX_PIPELINE); at least 1.
    pub fn max_pipeline(&mut self, n: usize) -> &mut Self {
        self.max_pipeline = n.max(1);
        self
    }

    /// Longest time from the first byte of a request to its last (head and body); `None`
    /// waits forever (the connection's idle timeout still applies). A request not complete
    /// in time is answered with 408 and the connection closes, which bounds how long a
    /// slow-loris client holds a connection. Also the longest wait, after the peer's EOF,
    /// for responses still owed. Default
    /// [`DEFAULT_REQUEST_TIMEOUT`](Self::DEFAULT_REQUEST_TIMEOUT).
    pub fn request_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.request_timeout = timeout;
        self
    }

    /// The sequence number of the request most recently handed to the application: inside
    /// [`Handler::on_message`](crate::Handler::on_message), the request being handled.
    #[must_use]
    pub fn request_seq(&self) -> Option<RequestSeq> {
        self.last
    }

    /// How many requests are owed a response (decoded and not yet written).
    #[must_use]
    pub fn owed(&self) -> usize {
        self.owed.len()
    }

    /// Whether the server still reads requests on this connection.
    #[must_use]
    pub fn is_reading(&self) -> bool {
        !self.stopped
    }

    fn decode_next(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Request>, ProtocolError> {
        if eof && self.eof_deadline.is_none() && !self.owed.is_empty() {
            self.eof_deadline = self
                .request_timeout
                .and_then(|timeout| cx.now().checked_add(timeout));
        }
        if self.stopped {
            src.clear();
            return Ok(None);
        }
        if src.is_empty() && self.decoder.is_idle() {
            self.started = None;
            return Ok(None);
        }
        if self.owed.len() >= self.max_pipeline && self.decoder.is_idle() {
            self.stop(src);
            if let Some(last) = self.owed.back_mut() {
                last.close = true;
            }
            return Ok(None);
        }
        self.started.get_or_insert(cx.now());
        let decoded = if eof {
            self.decoder.decode_eof(src)
        } else {
            self.decoder.decode(src)
        };
        match decoded {
            Ok(Some(request)) => {
                let seq = RequestSeq(self.first + self.owed.len() as u64);
                self.owed.push_back(Slot::for_request(&request));
                self.last = Some(seq);
                self.continue_owed = false;
                self.started = None;
                if !request.keep_alive() {
                    self.stop(src);
                }
                Ok(Some(request))
            }
            Ok(None) => {
                if self.decoder.take_expect_continue() {
                    if self.owed.is_empty() {
                        cx.send(bytes::Bytes::from_static(CONTINUE_RESPONSE));
                    } else {
                        self.continue_owed = true;
                    }
                }
                Ok(None)
            }
            Err(err) => self.refuse(cx, src, Response::from_error(&err), &err),
        }
    }

    /// Answers the request in progress with `response` in its turn, then closes.
    fn refuse(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
        response: Response,
        err: &HttpError,
    ) -> Result<Option<Request>, ProtocolError> {
        self.stop(src);
        let slot = Slot {
            keep_alive: false,
            http10: false,
            head: false,
            close: true,
            response: Some(response),
        };
        if self.owed.is_empty() {
            slot.write(cx);
            return Err(ProtocolError::other(format!(
                "HTTP {} {}: {err}",
                err.status(),
                err.reason()
            )));
        }
        self.owed.push_back(slot);
        Ok(None)
    }

    /// Reads no more requests; bytes already buffered and arriving later are dropped.
    fn stop(&mut self, src: &mut BytesMut) {
        self.stopped = true;
        self.started = None;
        self.continue_owed = false;
        src.clear();
    }

    /// Writes every reply at the front of the line, in order.
    fn flush(&mut self, cx: &mut ProtocolCx<'_>) {
        while self
            .owed
            .front()
            .is_some_and(|slot| slot.response.is_some())
        {
            let Some(slot) = self.owed.pop_front() else {
                break;
            };
            self.first += 1;
            if slot.write(cx) {
                cx.close();
                self.stopped = true;
                self.first += self.owed.len() as u64;
                self.owed.clear();
                return;
            }
        }
        if self.owed.is_empty() && self.continue_owed && !self.decoder.is_idle() {
            self.continue_owed = false;
            cx.send(bytes::Bytes::from_static(CONTINUE_RESPONSE));
        }
    }

    /// Where `reply` goes in the line of owed requests.
    fn slot_of(&self, reply: &Reply) -> Result<usize, ProtocolError> {
        let Some(seq) = reply.to else {
            return self
                .owed
                .iter()
                .position(|slot| slot.response.is_none())
                .ok_or_else(|| ProtocolError::other("no request is owed a response"));
        };
        let index = seq
            .0
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.owed.len());
        match index {
            Some(i) if self.owed[i].response.is_none() => Ok(i),
            _ => Err(ProtocolError::other(format!(
                "{seq} is not owed a response (answered already, or never received)"
            ))),
        }
    }
}

impl Default for HttpServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Protocol for HttpServer {
    type Message = Request;
    type Outgoing = Reply;

    fn decode(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Request>, ProtocolError> {
        self.decode_next(cx, src, false)
    }

    fn decode_eof(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Request>, ProtocolError> {
        self.decode_next(cx, src, true)
    }

    /// Parks the reply in its request's slot and writes every reply that is now in turn;
    /// the head is one chunk, a body of 1 KiB or more is queued as its own
    /// [`Bytes`](bytes::Bytes) without copying.
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, reply: Reply) -> Result<(), ProtocolError> {
        let index = self.slot_of(&reply)?;
        self.owed[index].response = Some(reply.response);
        self.flush(cx);
        Ok(())
    }

    fn frame_size_hint(&self, src: &BytesMut) -> Option<usize> {
        self.decoder.frame_size_hint(src)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let request = self
            .started
            .zip(self.request_timeout)
            .and_then(|(started, timeout)| started.checked_add(timeout));
        let owed = self.eof_deadline.filter(|_| !self.owed.is_empty());
        request.into_iter().chain(owed).min()
    }

    fn handle_timeout(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if self.eof_deadline.is_some_and(|deadline| deadline <= now) {
            self.eof_deadline = None;
            if !self.owed.is_empty() {
                // The peer is gone and the application did not answer in time.
                self.stopped = true;
                self.started = None;
                self.first += self.owed.len() as u64;
                self.owed.clear();
                cx.close();
                return Ok(());
            }
        }
        let request_deadline = self
            .started
            .zip(self.request_timeout)
            .and_then(|(started, timeout)| started.checked_add(timeout));
        if self.stopped || request_deadline.is_none_or(|deadline| deadline > now) {
            return Ok(());
        }
        let err = HttpError::with_status(408, "request not received in time");
        let response = Response::from_error(&err).with_close(true);
        self.refuse(cx, &mut BytesMut::new(), response, &err)
            .map(|_| ())
    }

    fn handle_close(&mut self, _cx: &mut ProtocolCx<'_>, _reason: &crate::CloseReason) {
        self.stopped = true;
        self.started = None;
        self.eof_deadline = None;
    }

    /// Idle when no request is owed a response.
    fn is_idle(&self) -> bool {
        self.owed.is_empty()
    }
}

/// One request owed a response, and what its response needs to know about it.
#[derive(Debug)]
struct Slot {
    keep_alive: bool,
    http10: bool,
    head: bool,
    /// Close after this response whatever the request said (error, full pipeline).
    close: bool,
    /// The reply, once the application gave it.
    response: Option<Response>,
}

impl Slot {
    fn for_request(request: &Request) -> Self {
        Self {
            keep_alive: request.keep_alive(),
            http10: request.version() == Version::Http10,
            head: request.method() == "HEAD",
            close: false,
            response: None,
        }
    }

    /// Queues the response; returns whether the connection closes after it.
    fn write(self, cx: &mut ProtocolCx<'_>) -> bool {
        let Some(response) = self.response else {
            return false;
        };
        let close = self.close || !self.keep_alive || response.closes_connection();
        let mut response = response.with_close(close);
        if !close && self.http10 {
            // A keep-alive HTTP/1.0 client closes unless told otherwise (RFC 9112 §9.3).
            let _ = response.push_header("Connection", b"keep-alive");
        }
        let body = response.body();
        let send_body = response.writes_body() && !self.head;
        let inline = send_body && body.len() < COPY_BODY_BELOW;
        let mut head = BytesMut::with_capacity(HEAD_CAPACITY + if inline { body.len() } else { 0 });
        response.encode_head(&mut head);
        if inline {
            head.extend_from_slice(body);
        }
        cx.send(head.freeze());
        if send_body && !inline {
            cx.send(body.clone());
        }
        close
    }
}

/// Bodies shorter than this are copied behind the head into one chunk (one slice in the
/// vectored write); longer ones are queued as they are, without copying.
const COPY_BODY_BELOW: usize = 1024;

/// Initial capacity of an encoded response head.
const HEAD_CAPACITY: usize = 128;
