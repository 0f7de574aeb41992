//! Scenario tests: an [`HttpServer`] connection driven by the virtual-clock harness.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quickcheck::{QuickCheck, TestResult};

use super::*;
use crate::buf::SendQueue;
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Context, Handler, SendError};

/// Answers every request at once with `200`, body `METHOD path body`; `/close` answers with
/// a response that closes the connection.
struct Sync;

impl Handler for Sync {
    type Protocol = HttpServer;
    type State = ();

    fn protocol(&self) -> HttpServer {
        HttpServer::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, req: Request) {
        let body = format!(
            "{} {} {}",
            req.method(),
            req.path(),
            String::from_utf8_lossy(req.body())
        );
        let response = Response::new(200)
            .with_body(body)
            .with_close(req.path() == "/close");
        cx.send(response.into()).expect("the connection is open");
    }
}

/// Answers nothing itself: records each request's sequence number and path for the test,
/// which answers through the connection handle, as a worker thread would.
#[derive(Default)]
struct Deferred {
    seen: Mutex<Vec<(RequestSeq, String)>>,
    max_pipeline: Option<usize>,
}

impl Deferred {
    fn seen(&self) -> Vec<(RequestSeq, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Deferred {
    type Protocol = HttpServer;
    type State = ();

    fn protocol(&self) -> HttpServer {
        let mut p = HttpServer::new();
        if let Some(n) = self.max_pipeline {
            p.max_pipeline(n);
        }
        p
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, req: Request) {
        let seq = cx.protocol().request_seq().expect("just decoded");
        self.seen.lock().unwrap().push((seq, req.path().to_owned()));
    }
}

fn sync() -> Harness<Sync> {
    Harness::new(Arc::new(Sync), ConnConfig::default(), crate::t0())
}

fn deferred(max_pipeline: Option<usize>) -> (Arc<Deferred>, Harness<Deferred>) {
    let handler = Arc::new(Deferred {
        max_pipeline,
        ..Deferred::default()
    });
    let h = Harness::new(handler.clone(), ConnConfig::default(), crate::t0());
    (handler, h)
}

/// One parsed response: status, `Connection` field, body.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    status: u16,
    connection: Option<String>,
    body: String,
}

/// Splits what the server wrote into responses (none of them to `HEAD`).
fn parse_all(mut out: &[u8]) -> Vec<Parsed> {
    let mut all = Vec::new();
    while !out.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(n) = resp.parse(out).expect("valid response") else {
            panic!("incomplete response: {:?}", String::from_utf8_lossy(out));
        };
        let field = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let len: usize = field("content-length").map_or(0, |v| v.parse().unwrap());
        let status = resp.code.unwrap();
        let connection = field("connection");
        all.push(Parsed {
            status,
            connection,
            body: String::from_utf8_lossy(&out[n..n + len]).into_owned(),
        });
        out = &out[n + len..];
    }
    all
}

fn statuses(out: &[u8]) -> Vec<u16> {
    parse_all(out).iter().map(|p| p.status).collect()
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

#[test]
fn keep_alive_serves_requests_one_after_another() {
    let mut h = sync();
    for i in 0..3 {
        h.peer_send(&post("/task/v1/message", &format!("{{\"msg\":\"{i}\"}}")));
        let out = parse_all(&h.take_written());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, 200);
        assert_eq!(out[0].connection, None);
        assert_eq!(
            out[0].body,
            format!("POST /task/v1/message {{\"msg\":\"{i}\"}}")
        );
    }
    assert!(h.closed().is_none());
    assert!(h.conn().wants_read());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = sync();
    let mut burst = get("/a");
    burst.extend(post("/b", "xy"));
    burst.extend(get("/c"));
    h.peer_send(&burst);
    let bodies: Vec<String> = parse_all(&h.take_written())
        .into_iter()
        .map(|p| p.body)
        .collect();
    assert_eq!(bodies, ["GET /a ", "POST /b xy", "GET /c "]);
    assert!(h.closed().is_none());
}

#[test]
fn replies_out_of_order_are_written_in_request_order() {
    let (handler, mut h) = deferred(None);
    let mut burst = get("/0");
    burst.extend(get("/1"));
    burst.extend(get("/2"));
    h.peer_send(&burst);
    let seen = handler.seen();
    let paths: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, ["/0", "/1", "/2"]);
    let handle = h.handle();
    let answer = |i: usize| Reply::to(seen[i].0, Response::new(200).with_body(format!("r{i}")));
    handle.send(answer(2)).unwrap();
    handle.send(answer(1)).unwrap();
    h.step();
    assert!(h.written().is_empty(), "request 0 is still owed");
    handle.send(answer(0)).unwrap();
    h.step();
    let bodies: Vec<String> = parse_all(&h.take_written())
        .into_iter()
        .map(|p| p.body)
        .collect();
    assert_eq!(bodies, ["r0", "r1", "r2"]);
    assert!(h.closed().is_none());
}

#[test]
fn a_reply_without_seq_answers_the_oldest_owed_request() {
    let (handler, mut h) = deferred(None);
    h.peer_send(&[get("/0"), get("/1")].concat());
    let seen = handler.seen();
    let handle = h.handle();
    handle
        .send(Reply::to(seen[1].0, Response::new(201)))
        .unwrap();
    handle.send(Response::new(202).into()).unwrap();
    h.step();
    assert_eq!(statuses(&h.take_written()), [202, 201]);
}

#[test]
fn misplaced_replies_are_caller_errors() {
    struct Misuse;
    impl Handler for Misuse {
        type Protocol = HttpServer;
        type State = Vec<Result<(), SendError>>;
        fn protocol(&self) -> HttpServer {
            HttpServer::new()
        }
        fn on_message(&self, cx: &mut Context<'_, Self>, _req: Request) {
            let seq = cx.protocol().request_seq().unwrap();
            let results = vec![
                cx.send(Reply::to(RequestSeq(seq.0 + 1), Response::new(200))),
                cx.send(Reply::to(seq, Response::new(200))),
                cx.send(Reply::to(seq, Response::new(200))),
                cx.send(Response::new(200).into()),
            ];
            *cx.state() = results;
        }
    }
    let mut h = Harness::new(Arc::new(Misuse), ConnConfig::default(), crate::t0());
    h.peer_send(&get("/"));
    let results = std::mem::take(h.conn().state());
    assert!(
        matches!(results[0], Err(SendError::Encode(_))),
        "future seq"
    );
    assert_eq!(results[1], Ok(()));
    assert!(
        matches!(results[2], Err(SendError::Encode(_))),
        "answered twice"
    );
    assert!(
        matches!(results[3], Err(SendError::Encode(_))),
        "nothing owed"
    );
    assert_eq!(statuses(&h.take_written()), [200]);
}

#[test]
fn expect_continue_is_answered_before_the_body() {
    let mut h = sync();
    h.peer_send(
        b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(h.take_written(), CONTINUE_RESPONSE);
    h.peer_send(b"hel");
    assert!(h.written().is_empty(), "100 Continue is sent once");
    h.peer_send(b"lo");
    let out = parse_all(&h.take_written());
    assert_eq!(out[0].status, 200);
    assert_eq!(out[0].body, "POST /up hello");
}

#[test]
fn expect_continue_waits_for_earlier_responses() {
    let (handler, mut h) = deferred(None);
    let mut burst = get("/first");
    burst.extend_from_slice(
        b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    h.peer_send(&burst);
    assert!(
        h.written().is_empty(),
        "100 must not overtake the response to /first"
    );
    h.handle().send(Response::new(200).into()).unwrap();
    h.step();
    let written = h.take_written();
    let expected_tail = CONTINUE_RESPONSE;
    assert!(written.ends_with(expected_tail), "{written:?}");
    assert_eq!(
        statuses(&written[..written.len() - expected_tail.len()]),
        [200]
    );
    h.peer_send(b"ok");
    assert_eq!(handler.seen().len(), 2);
}

#[test]
fn expect_continue_is_dropped_once_the_body_arrived() {
    let (handler, mut h) = deferred(None);
    let mut burst = get("/first");
    burst.extend_from_slice(
        b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    h.peer_send(&burst);
    // The client stopped waiting and sent the body.
    h.peer_send(b"ok");
    assert_eq!(handler.seen().len(), 2);
    let handle = h.handle();
    handle.send(Response::new(200).into()).unwrap();
    handle.send(Response::new(201).into()).unwrap();
    h.step();
    assert_eq!(
        statuses(&h.take_written()),
        [200, 201],
        "no late 100 Continue"
    );
}

#[test]
fn every_decoder_error_reaches_the_client_before_the_close() {
    let cases: [(&[u8], u16); 8] = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: t\r\n\r\n", 411),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
    ];
    for (raw, status) in cases {
        let mut h = sync();
        h.peer_send(raw);
        let out = parse_all(&h.take_written());
        let name = String::from_utf8_lossy(raw);
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(out[0].status, status, "{name}");
        assert_eq!(out[0].connection.as_deref(), Some("close"), "{name}");
        assert!(!out[0].body.is_empty(), "{name}");
        assert!(
            matches!(h.closed(), Some(CloseReason::Protocol(_))),
            "{name}: {:?}",
            h.closed()
        );
    }
    // Too many fields and too long a head: 431.
    let mut h = sync();
    let mut raw = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..100 {
        raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    h.peer_send(&raw);
    assert_eq!(statuses(&h.take_written()), [431]);
    let mut h = sync();
    h.peer_send(&vec![b'a'; 9000]);
    assert_eq!(statuses(&h.take_written()), [431]);
    assert!(h.closed().is_some());
}

#[test]
fn an_error_behind_owed_requests_waits_its_turn_then_closes() {
    let (handler, mut h) = deferred(None);
    let mut burst = get("/ok");
    burst.extend_from_slice(b"POST / HTTP/1.1\r\nHost: t\r\n\r\n");
    burst.extend(get("/never"));
    h.peer_send(&burst);
    assert_eq!(
        handler.seen().len(),
        1,
        "nothing after the bad request is decoded"
    );
    assert!(h.written().is_empty());
    assert!(h.closed().is_none(), "the owed response can still be sent");
    h.handle().send(Response::new(200).into()).unwrap();
    h.step();
    assert_eq!(statuses(&h.take_written()), [200, 411]);
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn connection_close_is_honoured_after_the_response() {
    let mut h = sync();
    let mut burst =
        b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz".to_vec();
    burst.extend(get("/ignored"));
    h.peer_send(&burst);
    let out = parse_all(&h.take_written());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].connection.as_deref(), Some("close"));
    assert_eq!(out[0].body, "POST /x z");
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn connection_close_waits_for_a_deferred_reply() {
    let (handler, mut h) = deferred(None);
    h.peer_send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(handler.seen().len(), 1);
    assert!(h.closed().is_none());
    h.peer_send(&get("/after-close"));
    assert_eq!(handler.seen().len(), 1);
    h.handle().send(Response::new(200).into()).unwrap();
    h.step();
    let out = parse_all(&h.take_written());
    assert_eq!(out[0].connection.as_deref(), Some("close"));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn a_response_that_closes_ends_the_connection() {
    let mut h = sync();
    h.peer_send(&[get("/close"), get("/never")].concat());
    let out = parse_all(&h.take_written());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].connection.as_deref(), Some("close"));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn http10_closes_unless_keep_alive() {
    let mut h = sync();
    h.peer_send(b"GET /a HTTP/1.0\r\n\r\n");
    let out = parse_all(&h.take_written());
    assert_eq!(out[0].connection.as_deref(), Some("close"));
    assert_eq!(h.closed(), Some(&CloseReason::Local));

    let mut h = sync();
    h.peer_send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    h.peer_send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let out = parse_all(&h.take_written());
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|p| p.connection.as_deref() == Some("keep-alive"))
    );
    assert!(h.closed().is_none());
}

#[test]
fn head_gets_the_length_but_no_body() {
    let mut h = sync();
    h.peer_send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        h.take_written(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n"[..]
    );
}

#[test]
fn a_full_pipeline_stops_reading_and_closes_after_the_owed_replies() {
    let (handler, mut h) = deferred(Some(2));
    h.peer_send(&[get("/0"), get("/1"), get("/2"), get("/3")].concat());
    assert_eq!(handler.seen().len(), 2);
    let handle = h.handle();
    handle.send(Response::new(200).into()).unwrap();
    h.step();
    assert!(h.closed().is_none());
    handle.send(Response::new(200).into()).unwrap();
    h.step();
    let out = parse_all(&h.take_written());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].connection, None);
    assert_eq!(out[1].connection.as_deref(), Some("close"));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    assert_eq!(handler.seen().len(), 2, "the client retries /2 and /3");
}

#[test]
fn a_slow_request_gets_408() {
    let mut h = sync();
    h.peer_send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
    h.advance(HttpServer::DEFAULT_REQUEST_TIMEOUT - Duration::from_millis(1));
    assert!(h.written().is_empty());
    h.peer_send(b"67");
    h.advance(Duration::from_millis(1));
    let out = parse_all(&h.take_written());
    assert_eq!(out[0].status, 408);
    assert_eq!(out[0].connection.as_deref(), Some("close"));
    assert!(matches!(h.closed(), Some(CloseReason::Protocol(_))));
}

#[test]
fn the_request_timer_runs_only_while_a_request_arrives() {
    let mut h = sync();
    assert_eq!(h.conn().poll_timeout(), None);
    h.peer_send(&get("/"));
    assert_eq!(h.conn().poll_timeout(), None, "between requests");
    h.advance(Duration::from_secs(3600));
    assert!(h.closed().is_none());
    h.peer_send(b"GET / HT");
    assert_eq!(
        h.conn().poll_timeout(),
        Some(h.now() + HttpServer::DEFAULT_REQUEST_TIMEOUT)
    );
}

#[test]
fn eof_inside_a_request_is_a_400_and_a_close() {
    let mut h = sync();
    h.peer_send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    h.peer_eof();
    assert_eq!(statuses(&h.take_written()), [400]);
    assert!(matches!(h.closed(), Some(CloseReason::Protocol(_))));
}

#[test]
fn a_peer_that_half_closed_still_gets_the_replies_it_is_owed() {
    let (handler, mut h) = deferred(None);
    h.peer_send(&[post("/0", "a"), post("/1", "b")].concat());
    h.peer_eof();
    assert!(h.closed().is_none(), "two responses are owed");
    assert!(!h.conn().wants_read());
    let seen = handler.seen();
    let handle = h.handle();
    let answer = |i: usize| Reply::to(seen[i].0, Response::new(200).with_body(format!("r{i}")));
    handle.send(answer(1)).unwrap();
    h.step();
    assert!(h.written().is_empty() && h.closed().is_none(), "#0 is owed");
    handle.send(answer(0)).unwrap();
    h.step();
    let bodies: Vec<String> = parse_all(&h.take_written())
        .into_iter()
        .map(|p| p.body)
        .collect();
    assert_eq!(bodies, ["r0", "r1"]);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

#[test]
fn owed_replies_after_eof_are_given_up_at_the_request_timeout() {
    let (handler, mut h) = deferred(None);
    h.peer_send(&post("/slow", "x"));
    h.advance(Duration::from_secs(5));
    h.peer_eof();
    assert_eq!(
        h.conn().poll_timeout(),
        Some(h.now() + HttpServer::DEFAULT_REQUEST_TIMEOUT),
        "the wait is counted from the EOF"
    );
    h.advance(HttpServer::DEFAULT_REQUEST_TIMEOUT - Duration::from_millis(1));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    assert!(h.written().is_empty(), "nothing was answered");
    let seq = handler.seen()[0].0;
    let late = h.handle().send(Reply::to(seq, Response::new(200)));
    assert!(late.is_err(), "the connection is gone");
}

#[test]
fn an_error_queued_behind_owed_replies_is_still_written_after_eof() {
    let (handler, mut h) = deferred(None);
    h.peer_send(&post("/0", "a"));
    // A truncated request, then EOF: its 400 waits for #0.
    h.peer_send(b"POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc");
    h.peer_eof();
    assert!(h.closed().is_none());
    let seq = handler.seen()[0].0;
    h.handle()
        .send(Reply::to(seq, Response::new(200).with_body("r0")))
        .unwrap();
    h.step();
    assert_eq!(statuses(&h.take_written()), [200, 400]);
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn without_a_request_timeout_the_idle_timeout_bounds_the_wait_after_eof() {
    struct Unbounded;
    impl Handler for Unbounded {
        type Protocol = HttpServer;
        type State = ();
        fn protocol(&self) -> HttpServer {
            let mut p = HttpServer::new();
            p.request_timeout(None);
            p
        }
        fn on_message(&self, _cx: &mut Context<'_, Self>, _req: Request) {}
    }
    let mut config = ConnConfig::default();
    config.set_idle_timeout(Some(Duration::from_secs(300)));
    let mut h = Harness::new(Arc::new(Unbounded), config, crate::t0());
    h.peer_send(&get("/"));
    h.peer_eof();
    h.advance(Duration::from_secs(299));
    assert!(h.closed().is_none());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.closed(), Some(&CloseReason::IdleTimeout));
}

#[test]
fn eof_between_requests_is_a_clean_close() {
    let mut h = sync();
    h.peer_send(&get("/"));
    h.peer_eof();
    assert_eq!(statuses(&h.take_written()), [200]);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

#[test]
fn large_bodies_are_queued_without_copying() {
    let mut server = HttpServer::new();
    let mut src = BytesMut::from(&get("/")[..]);
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(crate::t0(), &mut send, &mut close);
    assert!(server.decode(&mut cx, &mut src).unwrap().is_some());
    let body = Bytes::from(vec![7u8; 64 * 1024]);
    server
        .encode(&mut cx, Response::new(200).with_body(body.clone()).into())
        .unwrap();
    assert_eq!(send.chunk_count(), 2, "head, then the body itself");
    assert_eq!(
        send.len(),
        body.len() + "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n".len()
    );

    let mut src = BytesMut::from(&get("/")[..]);
    let mut send = SendQueue::new();
    let mut cx = ProtocolCx::new(crate::t0(), &mut send, &mut close);
    assert!(server.decode(&mut cx, &mut src).unwrap().is_some());
    server
        .encode(&mut cx, Response::new(200).with_body("small").into())
        .unwrap();
    assert_eq!(send.chunk_count(), 1, "a small body rides with the head");
    assert!(!close);
}

/// Any split of a pipelined stream gives the same responses as one write.
#[test]
fn prop_splits_do_not_change_the_answers() {
    fn prop(cuts: Vec<u16>) -> TestResult {
        let mut stream = get("/a");
        stream.extend(post("/b", "body"));
        stream.extend_from_slice(
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
        stream.extend(get("/d"));
        let mut whole = sync();
        whole.peer_send(&stream);
        let expected = whole.take_written();

        let mut cuts: Vec<usize> = cuts
            .iter()
            .map(|c| usize::from(*c) % stream.len())
            .collect();
        cuts.sort_unstable();
        let mut pieces = sync();
        let mut at = 0;
        for cut in cuts {
            pieces.peer_send(&stream[at..cut]);
            at = cut;
        }
        pieces.peer_send(&stream[at..]);
        TestResult::from_bool(pieces.take_written() == expected && pieces.closed().is_none())
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<u16>) -> TestResult);
}

/// Whatever order deferred replies come in, the client reads them in request order.
#[test]
fn prop_reply_order_does_not_matter() {
    fn prop(order: Vec<u8>) -> TestResult {
        let n = 6;
        let (handler, mut h) = deferred(None);
        let burst: Vec<u8> = (0..n).flat_map(|i| get(&format!("/{i}"))).collect();
        h.peer_send(&burst);
        let seen = handler.seen();
        let mut pending: Vec<usize> = (0..n).collect();
        let handle = h.handle();
        for pick in order {
            if pending.is_empty() {
                break;
            }
            let i = pending.remove(usize::from(pick) % pending.len());
            handle
                .send(Reply::to(
                    seen[i].0,
                    Response::new(200).with_body(format!("{i}")),
                ))
                .unwrap();
            h.step();
        }
        for i in pending {
            handle
                .send(Reply::to(
                    seen[i].0,
                    Response::new(200).with_body(format!("{i}")),
                ))
                .unwrap();
        }
        h.step();
        let bodies: Vec<String> = parse_all(&h.take_written())
            .into_iter()
            .map(|p| p.body)
            .collect();
        let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        TestResult::from_bool(bodies == expected)
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<u8>) -> TestResult);
}
