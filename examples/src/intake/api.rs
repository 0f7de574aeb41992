//! [`IntakeApi`]: GSEAsyncServer's HTTP interface as a gale [`Handler`], on any driver.
//!
//! | request | answer |
//! |---|---|
//! | `POST /task/v1/message` `{"msg": "…"}`, journaled | 200 `Message successfully received!` |
//! | the same `Idempotency-Key` and body again | the same 200 (plus `Idempotent-Replayed: true`) |
//! | the same `Idempotency-Key`, another body | 422 |
//! | a body that is not a JSON object | 400 `Failed to decode request body: ….` |
//! | any other path | 400 `bad request.Got invalid uri: "…".` |
//! | another method on the path | 405, `Allow: POST` |
//! | every slot busy and the waiting line full, a wait past `--process-max-timeout`, the journal down, shutting down | 503 with `Retry-After` |
//! | a malformed request, a body over the limit | 400, 413, … from [`HttpServer`], then close |
//!
//! Bodies are GSEAsyncServer's, `http.Error` style: `text/plain; charset=utf-8`,
//! `X-Content-Type-Options: nosniff`, a trailing newline. GSEAsyncServer answered a timeout
//! with 500; this port says 503 with `Retry-After`, which clients and proxies retry.

use std::fmt::Write as _;
use std::time::Duration;

use gale_core::http::{HttpLimits, HttpServer, Reply, Request, Response};
use gale_core::{Context, Handler};

use super::action::MessageBody;
use super::worker::{Answer, Intake};

/// The path GSEAsyncServer serves.
pub const MESSAGE_PATH: &str = "/task/v1/message";

/// The body of a 200.
pub const RECEIVED: &str = "Message successfully received!";

/// The HTTP front of an [`Intake`].
#[derive(Debug, Clone)]
pub struct IntakeApi {
    intake: Intake,
    limits: HttpLimits,
    retry_after: Duration,
}

impl IntakeApi {
    /// Serves `intake` with the default request limits (1 MiB bodies) and `Retry-After: 1`.
    pub fn new(intake: Intake) -> Self {
        Self {
            intake,
            limits: HttpLimits::default(),
            retry_after: Duration::from_secs(1),
        }
    }

    /// Request limits (largest body, head, …).
    pub fn limits_mut(&mut self) -> &mut HttpLimits {
        &mut self.limits
    }

    /// What 503 answers put in `Retry-After` (whole seconds, at least 1).
    pub fn retry_after(&mut self, after: Duration) -> &mut Self {
        self.retry_after = after;
        self
    }

    /// The intake behind the API.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }
}

impl Handler for IntakeApi {
    type Protocol = HttpServer;
    type State = ();

    fn protocol(&self) -> HttpServer {
        HttpServer::with_limits(self.limits)
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, req: Request) {
        if req.path() != MESSAGE_PATH {
            let text = format!("bad request.Got invalid uri: \"{}\".", req.head().target());
            tracing::warn!(target_uri = req.head().target(), "bad request: invalid uri");
            let _ = cx.send(plain(400, &text).into());
            return;
        }
        if req.method() != "POST" {
            let mut response = plain(405, "Only POST is allowed.");
            let _ = response.push_header("Allow", b"POST");
            let _ = cx.send(response.into());
            return;
        }
        let msg = match MessageBody::parse(req.body()) {
            Ok(msg) => msg,
            Err(e) => {
                let text = format!(
                    "Failed to decode request body: {}.",
                    decode_error(&e, req.body())
                );
                tracing::warn!(error = %e, "failed to decode request body");
                let _ = cx.send(plain(400, &text).into());
                return;
            }
        };
        let key = match idempotency_key(&req) {
            Ok(key) => key,
            Err(text) => {
                let _ = cx.send(plain(400, text).into());
                return;
            }
        };
        let (Some(seq), Some(handle)) = (cx.protocol().request_seq(), cx.handle()) else {
            let _ = cx.send(plain(500, "This driver gives no connection handle.").into());
            return;
        };
        let retry_after = self.retry_after.as_secs().max(1);
        let key_for_answer = key.clone();
        self.intake.submit(
            req.into_body(),
            key,
            Box::new(move |answer| {
                let response =
                    answer_response(&answer, &msg, key_for_answer.as_deref(), retry_after);
                // The client may be gone; the message is journaled either way.
                let _ = handle.send(Reply::to(seq, response));
            }),
        );
    }
}

/// The HTTP answer for an intake [`Answer`].
pub fn answer_response(
    answer: &Answer,
    msg: &MessageBody,
    key: Option<&str>,
    retry_after: u64,
) -> Response {
    let unavailable = |why: &str| {
        let mut response = plain(
            503,
            &format!("Message: {{Msg:{}}} handle failed,error: {why}.", msg.msg),
        );
        let _ = response.push_header("Retry-After", retry_after.to_string().as_bytes());
        response
    };
    match answer {
        Answer::Accepted { id } => plain(200, RECEIVED).with_header("X-Message-Id", id.to_string()),
        Answer::Duplicate { id } => plain(200, RECEIVED)
            .with_header("X-Message-Id", id.to_string())
            .with_header("Idempotent-Replayed", "true"),
        Answer::KeyReused { id } => plain(
            422,
            &format!(
                "Idempotency-Key {:?} was first used for message {id} with another body.",
                key.unwrap_or_default()
            ),
        ),
        Answer::Busy | Answer::TimedOut => unavailable(&format!(
            "Async task {{MessageTask:{{Msg:{}}}}} timeout",
            msg.msg
        )),
        Answer::Unavailable(e) => unavailable(e),
        // The server goes away: a keep-alive client should reconnect (elsewhere).
        Answer::Stopping => unavailable("server is shutting down").with_close(true),
    }
}

/// A `text/plain` answer the way Go's `http.Error` writes it.
pub fn plain(status: u16, text: &str) -> Response {
    let mut body = String::with_capacity(text.len() + 1);
    body.push_str(text);
    body.push('\n');
    Response::new(status)
        .with_header("Content-Type", "text/plain; charset=utf-8")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_body(body)
}

/// The `Idempotency-Key` field: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &Request) -> Result<Option<String>, &'static str> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("More than one Idempotency-Key field.");
    }
    let valid =
        !value.is_empty() && value.len() <= 255 && value.iter().all(|b| (0x21..=0x7e).contains(b));
    if !valid {
        return Err("Idempotency-Key must be 1 to 255 visible ASCII characters.");
    }
    Ok(Some(String::from_utf8_lossy(value).into_owned()))
}

/// serde's message, with Go's `EOF` for an empty body.
fn decode_error(e: &serde_json::Error, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "EOF".to_owned();
    }
    let mut s = String::new();
    let _ = write!(s, "{e}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_carry_gse_texts() {
        let msg = MessageBody {
            msg: "test message 12".into(),
        };
        let mut out = bytes::BytesMut::new();
        answer_response(&Answer::Accepted { id: 7 }, &msg, None, 1).encode(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\nMessage successfully received!\n"),
            "{text}"
        );
        assert!(text.contains("X-Message-Id: 7\r\n"));

        let mut out = bytes::BytesMut::new();
        answer_response(&Answer::TimedOut, &msg, None, 3).encode(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Retry-After: 3\r\n"));
        assert!(text.ends_with(
            "Message: {Msg:test message 12} handle failed,error: Async task {MessageTask:{Msg:test message 12}} timeout.\n"
        ), "{text}");
    }

    #[test]
    fn empty_bodies_read_like_go() {
        let e = MessageBody::parse(b"").unwrap_err();
        assert_eq!(decode_error(&e, b""), "EOF");
        let e = MessageBody::parse(b"nope").unwrap_err();
        assert!(decode_error(&e, b"nope").starts_with("expected"), "{e}");
    }
}
