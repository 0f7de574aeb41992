//! The parsed request: [`RequestHead`], [`Headers`], [`Request`].
//!
//! A head is one [`Bytes`] (split off the receive buffer without copying) plus offsets into
//! it, so a decoded request costs one small allocation for the field table. Holding a
//! `Request` keeps its part of the receive buffer's allocation alive.

use std::fmt;

use bytes::Bytes;

/// The HTTP version of a request. Only 1.0 and 1.1 are parsed; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`: the connection closes after the response unless `Connection: keep-alive`.
    Http10,
    /// `HTTP/1.1`: the connection stays open unless `Connection: close`.
    Http11,
}

impl Version {
    /// The version as written on the wire, e.g. `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header fields of a request, in arrival order, with case-insensitive lookup.
///
/// ```
/// use bytes::BytesMut;
/// use gale_core::http::RequestDecoder;
///
/// let mut src = BytesMut::from(
///     &b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"[..],
/// );
/// let req = RequestDecoder::new().decode(&mut src).unwrap().unwrap();
/// let headers = req.headers();
/// assert_eq!(headers.get("UPGRADE"), Some(&b"websocket"[..]));
/// assert!(headers.has_token("connection", "upgrade"));
/// assert_eq!(headers.len(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// The whole head; every span below points into it.
    pub(crate) buf: Bytes,
    pub(crate) fields: Vec<Field>,
}

impl Headers {
    /// Number of field lines (a name sent twice counts twice).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of the first field called `name` (ASCII case-insensitive), without the
    /// surrounding whitespace.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).next()
    }

    /// Like [`get`](Self::get), as text; `None` when absent or not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every field called `name`, in arrival order.
    pub fn get_all<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s [u8]> + use<'s, 'n> {
        self.fields
            .iter()
            .filter(move |f| f.name.of(&self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value.of(&self.buf))
    }

    /// Whether a field called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The elements of the comma-separated lists in every field called `name`, trimmed of
    /// spaces and tabs, empty elements skipped (RFC 9110 §5.6.1). Quoted strings are not
    /// interpreted, so use this for token lists (`Connection`, `Upgrade`,
    /// `Transfer-Encoding`, `Sec-WebSocket-Protocol`), not for values that quote commas.
    pub fn tokens<'s, 'n>(&'s self, name: &'n str) -> impl Iterator<Item = &'s [u8]> + use<'s, 'n> {
        self.get_all(name)
            .flat_map(|value| value.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|t| !t.is_empty())
    }

    /// Whether some field called `name` lists `token` (both compared ASCII
    /// case-insensitively), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Every field as `(name, value)`, in arrival order. Names are as sent (not lowercased).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields.iter().map(|f| {
            // invariant: httparse only accepts token bytes (ASCII) in field names, so the
            // fallback is never taken.
            let name = std::str::from_utf8(f.name.of(&self.buf)).unwrap_or("");
            (name, f.value.of(&self.buf))
        })
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v).into_owned())),
            )
            .finish()
    }
}

/// Everything before the body: request line and header fields, plus what the decoder
/// derived from them (keep-alive, body framing).
///
/// [`RequestDecoder::pending_head`](super::RequestDecoder::pending_head) shows it while the
/// body is still arriving, so an application can refuse a request before answering
/// `100 Continue`; a WebSocket upgrade reads it from the decoded [`Request`].
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub(crate) headers: Headers,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) path: Span,
    pub(crate) query: Option<Span>,
    pub(crate) version: Version,
    pub(crate) keep_alive: bool,
    pub(crate) content_length: Option<u64>,
    pub(crate) chunked: bool,
}

impl RequestHead {
    /// The method token, case-sensitive as RFC 9110 §9.1 says (`"GET"`, `"POST"`, …).
    pub fn method(&self) -> &str {
        self.str_of(self.method)
    }

    /// The request target exactly as sent (`/task/v1/message?x=1`, `*`,
    /// `http://host/p`, `host:443`).
    pub fn target(&self) -> &str {
        self.str_of(self.target)
    }

    /// The path of the target, without the query: `/task/v1/message` for both
    /// `/task/v1/message?x=1` and `http://host/task/v1/message`. An absolute-form target
    /// with no path gives `/`; the asterisk and authority forms give the whole target.
    /// Not percent-decoded.
    pub fn path(&self) -> &str {
        match self.str_of(self.path) {
            "" => "/",
            path => path,
        }
    }

    /// The query, after `?` and without it, if the target has one. Not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.query.map(|q| self.str_of(q))
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive); see [`Headers::get`].
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// The first value of header `name` as text; see [`Headers::get_str`].
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.get_str(name)
    }

    /// Whether header `name` lists `token`; see [`Headers::has_token`].
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers.has_token(name, token)
    }

    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`
    /// ([RFC 9112 §9.3](https://www.rfc-editor.org/rfc/rfc9112#section-9.3)).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The declared `Content-Length`, if the body is framed by one.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Whether the body uses the chunked transfer coding.
    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// Whether the client asked for `100 Continue` before sending the body (HTTP/1.1 and
    /// `Expect: 100-continue`). HTTP/1.0 expectations are ignored, as RFC 9110 §10.1.1 says.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11 && self.headers.has_token("expect", "100-continue")
    }

    fn str_of(&self, span: Span) -> &str {
        // invariant: method and target spans come from httparse's `&str`s, so they lie on
        // character boundaries of valid UTF-8 and the fallback is never taken.
        std::str::from_utf8(span.of(&self.headers.buf)).unwrap_or("")
    }
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// A complete request: its head and its whole body (chunked coding removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub(crate) head: RequestHead,
    pub(crate) body: Bytes,
}

impl Request {
    /// The head: request line and header fields.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The body; empty when the request has none.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body, dropping the head.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// Splits the request into head and body.
    pub fn into_parts(self) -> (RequestHead, Bytes) {
        (self.head, self.body)
    }

    /// The method; see [`RequestHead::method`].
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The path without query; see [`RequestHead::path`].
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query; see [`RequestHead::query`].
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The first value of header `name` as text.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }

    /// Whether header `name` lists `token`; see [`Headers::has_token`].
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.head.has_token(name, token)
    }

    /// Whether the connection may carry another request; see [`RequestHead::keep_alive`].
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }
}

/// A byte range inside a head buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    /// The span of `part`, which must be a sub-slice of `base`.
    pub(crate) fn within(base: &[u8], part: &[u8]) -> Self {
        // invariant: callers pass slices httparse returned from `base`, so `part` lies
        // inside `base` and the subtraction cannot wrap.
        let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
        Self {
            start,
            end: start + part.len(),
        }
    }

    /// The bytes of this span; empty if it does not fit (never, by construction).
    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }
}

/// One field line: where its name and (trimmed) value are in the head buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// `s` without leading and trailing spaces and tabs (RFC 9110 "OWS").
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &[(&str, &str)]) -> Headers {
        let mut buf = Vec::new();
        let mut fields = Vec::new();
        for (n, v) in raw {
            let start = buf.len();
            buf.extend_from_slice(n.as_bytes());
            let name = Span {
                start,
                end: buf.len(),
            };
            let start = buf.len();
            buf.extend_from_slice(v.as_bytes());
            let value = Span {
                start,
                end: buf.len(),
            };
            fields.push(Field { name, value });
        }
        Headers {
            buf: Bytes::from(buf),
            fields,
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_first_wins() {
        let h = headers(&[("Content-Type", "a"), ("content-type", "b")]);
        assert_eq!(h.get("CONTENT-TYPE"), Some(&b"a"[..]));
        assert_eq!(h.get_all("content-type").count(), 2);
        assert_eq!(h.get("content-length"), None);
        assert!(!h.contains("host"));
        assert_eq!(h.get_str("Content-Type"), Some("a"));
    }

    #[test]
    fn tokens_span_lines_trim_and_skip_empty_elements() {
        let h = headers(&[
            ("Connection", " keep-alive ,, Upgrade\t"),
            ("connection", "x"),
        ]);
        let tokens: Vec<&[u8]> = h.tokens("CONNECTION").collect();
        assert_eq!(tokens, [&b"keep-alive"[..], b"Upgrade", b"x"]);
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.has_token("connection", "KEEP-ALIVE"));
        assert!(!h.has_token("connection", "close"));
        assert!(!h.has_token("connection", "keep"), "whole elements only");
        assert!(!h.has_token("upgrade", "x"));
    }

    #[test]
    fn non_utf8_values_are_bytes_but_not_str() {
        let mut h = headers(&[("X", "")]);
        h.buf = Bytes::from_static(b"X\xff");
        h.fields[0].value = Span { start: 1, end: 2 };
        assert_eq!(h.get("x"), Some(&b"\xff"[..]));
        assert_eq!(h.get_str("x"), None);
    }

    #[test]
    fn trim_ows_cases() {
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b" a b\t"), b"a b");
        assert_eq!(trim_ows(b"a"), b"a");
    }

    #[test]
    fn span_of_out_of_range_is_empty() {
        assert_eq!(Span { start: 3, end: 9 }.of(b"abc"), b"");
        let base = b"hello";
        assert_eq!(Span::within(base, &base[1..3]), Span { start: 1, end: 3 });
    }

    #[test]
    fn debug_shows_lossy_values() {
        let h = headers(&[("Host", "a")]);
        assert_eq!(format!("{h:?}"), r#"[("Host", "a")]"#);
    }
}
