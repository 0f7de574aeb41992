//! [`Response`]: a small HTTP/1.1 response writer.

use bytes::{BufMut, Bytes, BytesMut};

use super::{HttpError, RequestHead, Version};

/// An HTTP/1.1 response: status, header fields, body.
///
/// `Content-Length` is written from the body (except for 1xx, 204 and 304, which carry no
/// content, RFC 9110 §8.6); `Connection: close` when asked. There is no `Date` field: core
/// reads no clock, so a driver or application that wants one adds it.
///
/// ```
/// use bytes::BytesMut;
/// use gale_core::http::Response;
///
/// let mut out = BytesMut::new();
/// Response::new(202)
///     .with_header("Content-Type", "application/json")
///     .with_body(r#"{"accepted":true}"#)
///     .encode(&mut out);
/// assert_eq!(
///     &out[..],
///     &b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"accepted\":true}"[..],
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    /// Encoded field lines, `name: value\r\n` each.
    fields: Vec<u8>,
    body: Bytes,
    close: bool,
    keep_alive_field: bool,
    omit_body: bool,
}

impl Response {
    /// A response with this status, no fields, an empty body, keep-alive.
    ///
    /// # Panics
    ///
    /// If `status` is not a three-digit code (`100..=999`): a caller bug, never peer input.
    pub fn new(status: u16) -> Self {
        assert!(
            (100..=999).contains(&status),
            "HTTP status must have three digits, got {status}"
        );
        Self {
            status,
            fields: Vec::new(),
            body: Bytes::new(),
            close: false,
            keep_alive_field: false,
            omit_body: false,
        }
    }

    /// The answer to an error: its status and reason phrase, its message as a short
    /// `text/plain` body, `Allow` for 405, and `Connection: close` when
    /// [`HttpError::closes_connection`].
    ///
    /// ```
    /// use gale_core::http::{HttpError, Response};
    ///
    /// let mut out = bytes::BytesMut::new();
    /// Response::from_error(&HttpError::LengthRequired).encode(&mut out);
    /// assert!(out.starts_with(b"HTTP/1.1 411 Length Required\r\n"));
    /// ```
    pub fn from_error(err: &HttpError) -> Self {
        let mut response = Self::new(err.status())
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{err}\n"))
            .with_close(err.closes_connection());
        if let HttpError::MethodNotAllowed { allow } = err {
            // An application's `allow` list with CR or LF is dropped rather than injected.
            let _ = response.push_header("Allow", allow.as_bytes());
        }
        response
    }

    /// Adds a header field.
    ///
    /// # Panics
    ///
    /// Where [`push_header`](Self::push_header) returns an error (name not a token, value
    /// with a control character, `Content-Length` or `Transfer-Encoding`). Use
    /// `push_header` for values derived from peer input.
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        if let Err(err) = self.push_header(name, value.as_ref()) {
            panic!("invalid response header {name:?}: {err}");
        }
        self
    }

    /// Adds a header field, refusing what could break the framing or inject fields.
    ///
    /// # Errors
    ///
    /// [`InvalidHeader`] if `name` is not a token, `value` contains a control character
    /// other than tab (CR and LF included), or `name` is `Content-Length` or
    /// `Transfer-Encoding`, which the writer sets itself.
    pub fn push_header(&mut self, name: &str, value: &[u8]) -> Result<&mut Self, InvalidHeader> {
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(InvalidHeader::Name);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(InvalidHeader::Value);
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(InvalidHeader::Reserved);
        }
        self.fields.extend_from_slice(name.as_bytes());
        self.fields.extend_from_slice(b": ");
        self.fields.extend_from_slice(value);
        self.fields.extend_from_slice(b"\r\n");
        Ok(self)
    }

    /// Sets the body (zero-copy for `Bytes`, `Vec<u8>`, `String`, `&'static` data).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether to write `Connection: close` (the caller then closes after writing).
    pub fn with_close(mut self, close: bool) -> Self {
        self.close = close;
        self
    }

    /// Fits the response to the request it answers: `Connection: close` unless the request
    /// keeps the connection alive, `Connection: keep-alive` for a keep-alive HTTP/1.0
    /// client, and no body bytes (but the body's `Content-Length`) for `HEAD`.
    pub fn for_request(mut self, head: &RequestHead) -> Self {
        self.close = !head.keep_alive();
        self.keep_alive_field = head.keep_alive() && head.version() == Version::Http10;
        self.omit_body = head.method() == "HEAD";
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the connection closes after this response.
    pub fn closes_connection(&self) -> bool {
        self.close
    }

    /// Appends the whole response to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.head_len() + self.body.len());
        self.encode_head(dst);
        if self.writes_body() {
            dst.put_slice(&self.body);
        }
    }

    /// Appends the status line and header section only, so the body [`Bytes`] can be queued
    /// separately without copying. Write the body only if
    /// [`writes_body`](Self::writes_body).
    pub fn encode_head(&self, dst: &mut BytesMut) {
        dst.reserve(self.head_len());
        dst.put_slice(b"HTTP/1.1 ");
        put_decimal(dst, usize::from(self.status));
        dst.put_u8(b' ');
        dst.put_slice(reason_phrase(self.status).as_bytes());
        dst.put_slice(b"\r\n");
        dst.put_slice(&self.fields);
        if self.close {
            dst.put_slice(b"Connection: close\r\n");
        } else if self.keep_alive_field {
            dst.put_slice(b"Connection: keep-alive\r\n");
        }
        if self.has_content() {
            dst.put_slice(b"Content-Length: ");
            put_decimal(dst, self.body.len());
            dst.put_slice(b"\r\n");
        }
        dst.put_slice(b"\r\n");
    }

    /// Whether [`encode`](Self::encode) writes the body after the head (not for `HEAD`
    /// requests, 1xx, 204 and 304).
    pub fn writes_body(&self) -> bool {
        self.has_content() && !self.omit_body
    }

    fn has_content(&self) -> bool {
        !matches!(self.status, 100..=199 | 204 | 304)
    }

    /// Upper bound of the head's encoded length.
    fn head_len(&self) -> usize {
        let reason = reason_phrase(self.status).len();
        b"HTTP/1.1 000 \r\n".len()
            + reason
            + self.fields.len()
            + b"Connection: keep-alive\r\n".len()
            + b"Content-Length: \r\n".len()
            + MAX_DECIMAL
            + 2
    }
}

/// Why [`Response::push_header`] refused a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidHeader {
    /// The name is empty or not a token (RFC 9110 §5.1).
    #[error("field name is not a token")]
    Name,
    /// The value contains a control character (CR, LF, NUL, …).
    #[error("field value contains a control character")]
    Value,
    /// `Content-Length` or `Transfer-Encoding`: the writer frames the body itself.
    #[error("the response writer sets this field itself")]
    Reserved,
}

/// The standard reason phrase for `status` (RFC 9110 §15), or a generic one for its class.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn put_decimal(dst: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; MAX_DECIMAL];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10 < 10`, so the cast keeps the value.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[at..]);
}

/// Digits of `usize::MAX` on 64-bit targets.
const MAX_DECIMAL: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestDecoder;

    fn encoded(r: &Response) -> String {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn head_of(raw: &[u8]) -> RequestHead {
        let req = RequestDecoder::new()
            .decode(&mut BytesMut::from(raw))
            .unwrap()
            .unwrap();
        req.into_parts().0
    }

    #[test]
    fn content_length_is_automatic() {
        assert_eq!(
            encoded(&Response::new(200)),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        );
        let r = Response::new(200).with_body(vec![b'x'; 1234]);
        assert!(encoded(&r).starts_with("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nxxx"));
    }

    #[test]
    fn no_content_statuses_have_no_length_and_no_body() {
        let r = Response::new(101)
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade");
        assert_eq!(
            encoded(&r),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
        assert_eq!(
            encoded(&Response::new(204).with_body("x")),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        assert_eq!(
            encoded(&Response::new(304)),
            "HTTP/1.1 304 Not Modified\r\n\r\n"
        );
    }

    #[test]
    fn connection_follows_the_request() {
        let close = Response::new(200).for_request(&head_of(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ));
        assert!(close.closes_connection());
        assert!(encoded(&close).contains("\r\nConnection: close\r\n"));
        let old = Response::new(200).for_request(&head_of(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(old.closes_connection());
        let old_ka = Response::new(200).for_request(&head_of(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ));
        assert!(!old_ka.closes_connection());
        assert!(encoded(&old_ka).contains("\r\nConnection: keep-alive\r\n"));
        let new_ka = Response::new(200).for_request(&head_of(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!encoded(&new_ka).contains("Connection"));
    }

    #[test]
    fn head_requests_get_the_length_but_not_the_body() {
        let r = Response::new(200)
            .with_body("hello")
            .for_request(&head_of(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!r.writes_body());
        assert_eq!(encoded(&r), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    }

    #[test]
    fn encode_head_then_body_equals_encode() {
        let r = Response::new(404)
            .with_header("X-A", "b")
            .with_body("missing");
        let mut split = BytesMut::new();
        r.encode_head(&mut split);
        split.extend_from_slice(r.body());
        assert_eq!(String::from_utf8(split.to_vec()).unwrap(), encoded(&r));
    }

    #[test]
    fn header_injection_is_refused() {
        let mut r = Response::new(200);
        assert_eq!(
            r.push_header("X", b"a\r\nSet-Cookie: x"),
            Err(InvalidHeader::Value)
        );
        assert_eq!(r.push_header("X", b"a\nb"), Err(InvalidHeader::Value));
        assert_eq!(r.push_header("X", b"a\0"), Err(InvalidHeader::Value));
        assert_eq!(r.push_header("X Y", b"a"), Err(InvalidHeader::Name));
        assert_eq!(r.push_header("", b"a"), Err(InvalidHeader::Name));
        assert_eq!(r.push_header("X:", b"a"), Err(InvalidHeader::Name));
        assert_eq!(
            r.push_header("content-length", b"1"),
            Err(InvalidHeader::Reserved)
        );
        assert_eq!(
            r.push_header("Transfer-Encoding", b"chunked"),
            Err(InvalidHeader::Reserved)
        );
        assert!(r.push_header("X", b"tab\tand \xff obs-text").is_ok());
        assert_eq!(
            r,
            Response::new(200).with_header("X", b"tab\tand \xff obs-text")
        );
    }

    #[test]
    #[should_panic(expected = "invalid response header")]
    fn with_header_panics_on_caller_misuse() {
        let _ = Response::new(200).with_header("X", "a\r\n");
    }

    #[test]
    #[should_panic(expected = "three digits")]
    fn new_panics_on_a_bad_status() {
        let _ = Response::new(42);
    }

    #[test]
    fn from_error_writes_status_reason_and_text() {
        let r = Response::from_error(&HttpError::BodyTooLarge { max: 1024 });
        assert!(r.closes_connection());
        assert_eq!(
            encoded(&r),
            "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 36\r\n\r\nrequest body larger than 1024 bytes\n"
        );
        let r = Response::from_error(&HttpError::not_found());
        assert!(!r.closes_connection());
        assert!(encoded(&r).starts_with("HTTP/1.1 404 Not Found\r\n"));
        let r = Response::from_error(&HttpError::method_not_allowed("POST"));
        assert!(encoded(&r).contains("\r\nAllow: POST\r\n"));
        let r = Response::from_error(&HttpError::method_not_allowed("POST\r\nX: y"));
        assert!(!encoded(&r).contains("X: y\r\n"));
        let r = Response::from_error(&HttpError::with_status(503, "queue full"));
        assert!(encoded(&r).ends_with("\r\n\r\nqueue full\n"));
    }

    #[test]
    fn reason_phrases_fall_back_by_class() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(299), "Success");
        assert_eq!(reason_phrase(499), "Client Error");
        assert_eq!(reason_phrase(599), "Server Error");
        assert_eq!(reason_phrase(150), "Informational");
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 99, 100, 1_048_576, usize::MAX] {
            let mut out = BytesMut::new();
            put_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }
}
