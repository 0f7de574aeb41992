//! The opening handshake ([RFC 6455 §4.2](https://www.rfc-editor.org/rfc/rfc6455#section-4.2)):
//! checking an upgrade request read by [`RequestDecoder`](crate::http::RequestDecoder), asking
//! the application's hook, and writing the `101` or the refusal (the table of refusals is on
//! [`HandshakeError`]).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};

use crate::http::{Headers, HttpError, RequestHead, Response, Version};

/// The value of `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2 step 5.4):
/// base64 of the SHA-1 of the key with the protocol's GUID appended.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     gale_core::ws::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    BASE64.encode(sha1.digest().bytes())
}

/// A valid upgrade request, as the upgrade hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeRequest<'a> {
    head: &'a RequestHead,
    key: &'a [u8],
}

impl<'a> UpgradeRequest<'a> {
    /// Checks that `head` is a WebSocket upgrade request (see [`HandshakeError`] for what is
    /// refused, and how).
    ///
    /// # Errors
    ///
    /// The [`HandshakeError`] to answer with.
    pub fn new(head: &'a RequestHead) -> Result<Self, HandshakeError> {
        if head.method() != "GET" {
            return Err(HandshakeError::NotGet);
        }
        if head.version() != Version::Http11 {
            return Err(HandshakeError::NotHttp11);
        }
        if head.is_chunked() || head.content_length().is_some_and(|n| n > 0) {
            return Err(HandshakeError::HasBody);
        }
        let headers = head.headers();
        if !headers.has_token("upgrade", "websocket") {
            return Err(HandshakeError::NoUpgrade);
        }
        if !headers.has_token("connection", "upgrade") {
            return Err(HandshakeError::NoConnectionUpgrade);
        }
        let mut versions = headers.tokens("sec-websocket-version");
        if versions.next() != Some(b"13") || versions.next().is_some() {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let key = single(headers, "sec-websocket-key").ok_or(HandshakeError::BadKey)?;
        let mut raw = [0u8; 18];
        match BASE64.decode_slice(key, &mut raw) {
            Ok(16) if key.len() == 24 => Ok(Self { head, key }),
            _ => Err(HandshakeError::BadKey),
        }
    }

    /// The whole request head.
    pub fn head(&self) -> &'a RequestHead {
        self.head
    }

    /// The path of the target, without the query (not percent-decoded).
    pub fn path(&self) -> &'a str {
        self.head.path()
    }

    /// The query, without `?` (not percent-decoded).
    pub fn query(&self) -> Option<&'a str> {
        self.head.query()
    }

    /// The header fields.
    pub fn headers(&self) -> &'a Headers {
        self.head.headers()
    }

    /// The first value of header `name` as text.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.head.header_str(name)
    }

    /// The `Origin` field, which browsers always send: check it against the origins
    /// allowed to open connections (cross-site WebSocket hijacking).
    pub fn origin(&self) -> Option<&'a str> {
        self.head.header_str("origin")
    }

    /// The subprotocols the client offers (`Sec-WebSocket-Protocol`), in its order of
    /// preference.
    pub fn subprotocols(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.head
            .headers()
            .tokens("sec-websocket-protocol")
            .filter_map(|t| std::str::from_utf8(t).ok())
    }

    /// The client's `Sec-WebSocket-Key`.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The `101 Switching Protocols` response accepting this request as `decision` says,
    /// with the subprotocol chosen.
    ///
    /// # Errors
    ///
    /// The decision's own refusal ([`HandshakeError::Refused`]), or
    /// [`HandshakeError::InvalidDecision`] for a subprotocol the client did not offer or a
    /// field that is invalid or reserved.
    pub fn accept(
        &self,
        decision: UpgradeDecision,
    ) -> Result<(Response, Option<Box<str>>), HandshakeError> {
        let subprotocol = match decision.verdict {
            Verdict::Reject { status, message } => {
                return Err(HandshakeError::Refused {
                    status,
                    message,
                    headers: decision.headers,
                });
            }
            Verdict::Accept { subprotocol } => subprotocol,
        };
        let mut response = Response::new(101)
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade")
            .with_header("Sec-WebSocket-Accept", accept_key(self.key));
        if let Some(p) = &subprotocol {
            if !self.subprotocols().any(|offered| offered == &**p) {
                return Err(HandshakeError::InvalidDecision(
                    "the chosen subprotocol was not offered",
                ));
            }
            push(&mut response, "Sec-WebSocket-Protocol", p.as_bytes())?;
        }
        for (name, value) in &decision.headers {
            if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                return Err(HandshakeError::InvalidDecision(
                    "the hook set a handshake field",
                ));
            }
            push(&mut response, name, value)?;
        }
        Ok((response, subprotocol))
    }
}

/// What the upgrade hook decides; build one with [`accept`](Self::accept) or
/// [`reject`](Self::reject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeDecision {
    verdict: Verdict,
    headers: Vec<(Box<str>, Box<[u8]>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accept {
        subprotocol: Option<Box<str>>,
    },
    Reject {
        status: u16,
        message: Cow<'static, str>,
    },
}

impl UpgradeDecision {
    /// Accept the upgrade, without a subprotocol.
    pub fn accept() -> Self {
        Self {
            verdict: Verdict::Accept { subprotocol: None },
            headers: Vec::new(),
        }
    }

    /// Refuse the upgrade with `status` (clamped to 300-599, else 500) and a short message
    /// for the response body.
    pub fn reject(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let status = if (300..=599).contains(&status) {
            status
        } else {
            500
        };
        Self {
            verdict: Verdict::Reject {
                status,
                message: message.into(),
            },
            headers: Vec::new(),
        }
    }

    /// Choose one of the subprotocols the client offered (ignored when rejecting).
    pub fn with_subprotocol(mut self, protocol: impl Into<Box<str>>) -> Self {
        if let Verdict::Accept { subprotocol } = &mut self.verdict {
            *subprotocol = Some(protocol.into());
        }
        self
    }

    /// Add a field to the response (`Set-Cookie` on accept, `WWW-Authenticate` on a 401, …).
    /// The handshake's own fields (`Upgrade`, `Connection`, `Sec-WebSocket-*`) are refused
    /// when the response is written, with a 500.
    pub fn with_header(mut self, name: impl Into<Box<str>>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().into()));
        self
    }

    /// Whether this accepts the upgrade.
    pub fn is_accept(&self) -> bool {
        matches!(self.verdict, Verdict::Accept { .. })
    }
}

/// Why an upgrade was refused; [`response`](Self::response) is the answer to write before
/// closing.
///
/// | request | answer |
/// |---|---|
/// | malformed HTTP, head or field count over [`HttpLimits`](crate::http::HttpLimits) | the decoder's status (400, 431, …) |
/// | not `GET` | 405, `Allow: GET` |
/// | HTTP/1.0, or a body | 400 |
/// | no `Upgrade: websocket` | 426, `Upgrade: websocket` |
/// | no `Connection: upgrade` | 400 |
/// | `Sec-WebSocket-Version` missing or not `13` | 426, `Sec-WebSocket-Version: 13` |
/// | `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes | 400 |
/// | head not complete within [`WsConfig::handshake_timeout`](super::WsConfig::handshake_timeout) | 408 |
/// | refused by the hook | the hook's status |
/// | the hook picks a subprotocol not offered, or an invalid or reserved field | 500 |
/// | accepted | 101, `Sec-WebSocket-Accept` |
///
/// Every refusal carries `Connection: close` and a one-line `text/plain` reason; the
/// connection closes once it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request could not be decoded or broke an [`HttpLimits`](crate::http::HttpLimits)
    /// bound (its own status).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Not a `GET` (405).
    #[error("WebSocket upgrades use GET")]
    NotGet,
    /// HTTP/1.0 (400).
    #[error("WebSocket upgrades need HTTP/1.1")]
    NotHttp11,
    /// The request has a body (400).
    #[error("an upgrade request has no body")]
    HasBody,
    /// No `Upgrade: websocket` (426).
    #[error("missing Upgrade: websocket")]
    NoUpgrade,
    /// No `Connection: upgrade` (400).
    #[error("missing Connection: upgrade")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` missing or other than 13 (426).
    #[error("unsupported Sec-WebSocket-Version; this server speaks 13")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` missing, repeated, or not the base64 of 16 bytes (400).
    #[error("missing or invalid Sec-WebSocket-Key")]
    BadKey,
    /// The request head did not complete within the handshake timeout (408).
    #[error("upgrade request not completed in time")]
    Timeout,
    /// The upgrade hook refused the request.
    #[error("{message}")]
    Refused {
        /// The status the hook chose.
        status: u16,
        /// Its message.
        message: Cow<'static, str>,
        /// Fields it added.
        headers: Vec<(Box<str>, Box<[u8]>)>,
    },
    /// The upgrade hook's decision cannot be written (500): a bug in the application.
    #[error("invalid upgrade decision: {0}")]
    InvalidDecision(&'static str),
}

impl HandshakeError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::Http(e) => e.status(),
            Self::NotGet => 405,
            Self::NotHttp11 | Self::HasBody | Self::NoConnectionUpgrade | Self::BadKey => 400,
            Self::NoUpgrade | Self::UnsupportedVersion => 426,
            Self::Timeout => 408,
            Self::Refused { status, .. } if (300..=599).contains(status) => *status,
            Self::Refused { .. } => 500,
            Self::InvalidDecision(_) => 500,
        }
    }

    /// The response that refuses the upgrade: the status, a one-line reason, the fields the
    /// status calls for, `Connection: close`.
    pub fn response(&self) -> Response {
        let mut response = match self {
            Self::Http(e) => Response::from_error(e),
            Self::NotGet => Response::from_error(&HttpError::method_not_allowed("GET")),
            _ => Response::new(self.status())
                .with_header("Content-Type", "text/plain; charset=utf-8")
                .with_body(format!("{self}\n")),
        };
        if self.status() == 426 {
            response = response
                .with_header("Upgrade", "websocket")
                .with_header("Sec-WebSocket-Version", "13");
        }
        if let Self::Refused { headers, .. } = self {
            for (name, value) in headers {
                // A field the response writer refuses is left out rather than injected.
                let _ = response.push_header(name, value);
            }
        }
        response.with_close(true)
    }

    /// The encoded [`response`](Self::response).
    pub(crate) fn encoded_response(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.response().encode(&mut out);
        out.freeze()
    }
}

/// The value of the only field called `name`; `None` if absent or repeated.
fn single<'h>(headers: &'h Headers, name: &str) -> Option<&'h [u8]> {
    let mut all = headers.get_all(name);
    let first = all.next()?;
    all.next().is_none().then_some(first)
}

fn push(response: &mut Response, name: &str, value: &[u8]) -> Result<(), HandshakeError> {
    response
        .push_header(name, value)
        .map(|_| ())
        .map_err(|_| HandshakeError::InvalidDecision("invalid response field"))
}

/// RFC 6455 §1.3.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Fields the handshake writes itself.
const RESERVED: [&str; 6] = [
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-version",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestDecoder;

    fn head(text: &str) -> RequestHead {
        let mut src = BytesMut::from(text.replace('\n', "\r\n").as_bytes());
        let req = RequestDecoder::new().decode(&mut src).unwrap().unwrap();
        req.into_parts().0
    }

    const GOOD: &str = "GET /chat?room=1 HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nOrigin: http://example.com\nSec-WebSocket-Protocol: chat, superchat\nSec-WebSocket-Version: 13\n\n";

    #[test]
    fn rfc_request_is_accepted_with_the_rfc_accept_key() {
        let h = head(GOOD);
        let req = UpgradeRequest::new(&h).unwrap();
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.query(), Some("room=1"));
        assert_eq!(req.origin(), Some("http://example.com"));
        assert_eq!(
            req.subprotocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        let (response, sub) = req
            .accept(
                UpgradeDecision::accept()
                    .with_subprotocol("chat")
                    .with_header("X-A", "1"),
            )
            .unwrap();
        assert_eq!(sub.as_deref(), Some("chat"));
        let mut out = BytesMut::new();
        response.encode(&mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
             X-A: 1\r\n\r\n"
        );
    }

    #[test]
    fn every_malformed_request_gets_its_status() {
        let cases: [(&str, &str, u16); 12] = [
            ("GET /chat", "DELETE /chat", 405),
            ("HTTP/1.1\nHost", "HTTP/1.0\nHost", 400),
            ("Upgrade: websocket", "Upgrade: h2c", 426),
            ("Connection: Upgrade", "Connection: keep-alive", 400),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
            ("Sec-WebSocket-Version: 13\n", "", 426),
            (
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Version: 13, 8",
                426,
            ),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n", "", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZSE=", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j*Q==", 400),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n",
                400,
            ),
        ];
        for (from, to, status) in cases {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from}");
            let err = UpgradeRequest::new(&head(&text)).unwrap_err();
            assert_eq!(err.status(), status, "{to}: {err}");
            let response = err.response();
            assert!(response.closes_connection());
            let mut out = BytesMut::new();
            response.encode(&mut out);
            let out = String::from_utf8(out.to_vec()).unwrap();
            assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
            if status == 426 {
                assert!(out.contains("Sec-WebSocket-Version: 13\r\n"), "{out}");
                assert!(out.contains("Upgrade: websocket\r\n"), "{out}");
            }
            if status == 405 {
                assert!(out.contains("Allow: GET\r\n"), "{out}");
            }
        }
    }

    #[test]
    fn tokens_are_case_insensitive_and_listed() {
        let text = GOOD
            .replace("Upgrade: websocket", "upgrade: foo, WebSocket")
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        assert!(UpgradeRequest::new(&head(&text)).is_ok());
    }

    #[test]
    fn a_body_is_refused() {
        let text = GOOD.replace("\n\n", "\nContent-Length: 0\n\n");
        assert!(UpgradeRequest::new(&head(&text)).is_ok());
        let mut src = BytesMut::from(
            GOOD.replace("\n\n", "\nContent-Length: 1\n\nx")
                .replace('\n', "\r\n")
                .as_bytes(),
        );
        let req = RequestDecoder::new().decode(&mut src).unwrap().unwrap();
        assert_eq!(
            UpgradeRequest::new(req.head()).unwrap_err(),
            HandshakeError::HasBody
        );
    }

    #[test]
    fn hook_decisions_are_checked() {
        let h = head(GOOD);
        let req = UpgradeRequest::new(&h).unwrap();
        let err = req
            .accept(UpgradeDecision::accept().with_subprotocol("nope"))
            .unwrap_err();
        assert_eq!(err.status(), 500);
        let err = req
            .accept(UpgradeDecision::accept().with_header("Sec-WebSocket-Extensions", "x"))
            .unwrap_err();
        assert_eq!(err.status(), 500);
        let err = req
            .accept(UpgradeDecision::accept().with_header("X-Bad", "a\r\nb"))
            .unwrap_err();
        assert_eq!(err.status(), 500);
        let decision =
            UpgradeDecision::reject(401, "who are you").with_header("WWW-Authenticate", "Basic");
        assert!(!decision.is_accept());
        let err = req.accept(decision).unwrap_err();
        assert_eq!(err.status(), 401);
        let out = err.encoded_response();
        let out = std::str::from_utf8(&out).unwrap();
        assert!(out.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{out}");
        assert!(out.contains("WWW-Authenticate: Basic\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nwho are you\n"), "{out}");
        assert_eq!(
            UpgradeDecision::reject(200, "x"),
            UpgradeDecision::reject(500, "x")
        );
    }
}
