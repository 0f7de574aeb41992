//! Finding, parsing and checking a request head; deciding how its body is framed.
//!
//! The end of the head (the first empty line) is searched incrementally, resuming where the
//! previous call stopped and never past `max_head_size`; httparse runs once on the complete
//! head, plus once early when the request line is complete (so garbage and unsupported
//! versions are refused without waiting for the whole head). Total work is linear in the
//! head, however it is split across reads.

use bytes::{Buf, BytesMut};

use super::body::BodyKind;
use super::request::{Field, Headers, RequestHead, Span, Version, trim_ows};
use super::{HttpError, HttpLimits};

/// Progress of the search for the end of a head, kept between calls.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HeadScan {
    /// No head can end before this offset (positions before it were examined).
    scanned: usize,
    /// A line feed was seen, so the request line is complete.
    saw_newline: bool,
    /// httparse already ran on an incomplete head.
    line_checked: bool,
}

/// Decodes one head from the front of `src`. On success the head bytes are split off `src`
/// (the body, if any, follows) and the body framing is returned with it.
pub(crate) fn decode_head(
    scan: &mut HeadScan,
    src: &mut BytesMut,
    limits: &HttpLimits,
    require_host: bool,
) -> Result<Option<(RequestHead, BodyKind)>, HttpError> {
    if scan.scanned == 0 && !scan.saw_newline {
        // RFC 9112 §2.2: ignore empty lines before the request line (old clients send a
        // CRLF after a POST body). They are consumed, so they cost no buffer space.
        skip_empty_lines(src);
        if src.is_empty() || src[..] == b"\r"[..] {
            return Ok(None);
        }
    }
    let limit = src.len().min(limits.max_head_size);
    if let Some(end) = find_head_end(&src[..limit], scan) {
        *scan = HeadScan::default();
        let mut head = parse_head(src, end, limits)?;
        let body = frame(&mut head, limits, require_host)?;
        return Ok(Some((head, body)));
    }
    if scan.saw_newline && !scan.line_checked {
        scan.line_checked = true;
        run_httparse(&src[..limit], limits.max_headers, |status, _| {
            status.map_err(|e| map_error(e, &src[..limit], limits))
        })?;
    }
    if src.len() >= limits.max_head_size {
        return Err(HttpError::HeadTooLarge {
            max: limits.max_head_size,
        });
    }
    Ok(None)
}

/// Drops leading CRLF and LF pairs.
fn skip_empty_lines(src: &mut BytesMut) {
    let mut n = 0;
    loop {
        match src.get(n..n + 2) {
            Some([b'\r', b'\n']) => n += 2,
            _ if src.get(n) == Some(&b'\n') => n += 1,
            _ => break,
        }
    }
    src.advance(n);
}

/// The offset just past the empty line ending the head in `buf`, if there is one. Accepts
/// the bare-LF line endings httparse accepts, so both agree on where the head ends.
fn find_head_end(buf: &[u8], scan: &mut HeadScan) -> Option<usize> {
    let mut i = scan.scanned.min(buf.len());
    while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + offset;
        scan.saw_newline = true;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            (None, _) | (Some(b'\r'), None) => {
                scan.scanned = lf;
                return None;
            }
            _ => i = lf + 1,
        }
    }
    scan.scanned = buf.len();
    None
}

/// Parses the complete head `src[..end]` and splits it off `src`.
fn parse_head(
    src: &mut BytesMut,
    end: usize,
    limits: &HttpLimits,
) -> Result<RequestHead, HttpError> {
    let buf = &src[..end];
    let (method, target, version, fields) =
        run_httparse(buf, limits.max_headers, |status, req| {
            match status {
                Ok(httparse::Status::Complete(n)) if n == end => {}
                Ok(_) => return Err(HttpError::Malformed("head does not end at its empty line")),
                Err(e) => return Err(map_error(e, buf, limits)),
            }
            let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version)
            else {
                return Err(HttpError::Malformed("incomplete request line"));
            };
            let version = match minor {
                0 => Version::Http10,
                1 => Version::Http11,
                _ => return Err(HttpError::UnsupportedVersion),
            };
            let fields: Vec<Field> = req
                .headers
                .iter()
                .map(|h| Field {
                    name: Span::within(buf, h.name.as_bytes()),
                    value: Span::within(buf, trim_ows(h.value)),
                })
                .collect();
            let method = Span::within(buf, method.as_bytes());
            let target = Span::within(buf, target.as_bytes());
            Ok((method, target, version, fields))
        })?;
    let (path, query) = split_target(&src[target.start..target.end], target.start);
    let buf = src.split_to(end).freeze();
    Ok(RequestHead {
        headers: Headers { buf, fields },
        method,
        target,
        path,
        query,
        version,
        keep_alive: false,
        content_length: None,
        chunked: false,
    })
}

/// Applies the message-framing rules of RFC 9112 §6 and the Host rule of §3.2; fills in
/// keep-alive and framing on `head`.
fn frame(
    head: &mut RequestHead,
    limits: &HttpLimits,
    require_host: bool,
) -> Result<BodyKind, HttpError> {
    let headers = &head.headers;
    let hosts = headers.get_all("host").count();
    if hosts > 1 || (require_host && hosts == 0 && head.version == Version::Http11) {
        return Err(HttpError::InvalidHost);
    }
    let mut lengths = headers.get_all("content-length");
    let length = lengths.next();
    if lengths.next().is_some() {
        return Err(HttpError::MultipleContentLength);
    }
    let kind = if headers.contains("transfer-encoding") {
        if head.version == Version::Http10 {
            return Err(HttpError::InvalidTransferEncoding(
                "not allowed in HTTP/1.0",
            ));
        }
        if length.is_some() {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        let mut chunked = 0;
        for coding in headers.tokens("transfer-encoding") {
            if !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            chunked += 1;
        }
        match chunked {
            0 => return Err(HttpError::InvalidTransferEncoding("empty")),
            1 => BodyKind::Chunked,
            _ => return Err(HttpError::InvalidTransferEncoding("chunked applied twice")),
        }
    } else if let Some(value) = length {
        let declared = parse_content_length(value)?;
        let len = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= limits.max_body)
            .ok_or(HttpError::BodyTooLarge {
                max: limits.max_body,
            })?;
        head.content_length = Some(declared);
        match len {
            0 => BodyKind::Empty,
            n => BodyKind::Length(n),
        }
    } else if matches!(head.method(), "POST" | "PUT") {
        return Err(HttpError::LengthRequired);
    } else {
        BodyKind::Empty
    };
    let close = head.headers.has_token("connection", "close");
    head.keep_alive = match head.version {
        Version::Http11 => !close,
        Version::Http10 => !close && head.headers.has_token("connection", "keep-alive"),
    };
    head.chunked = kind == BodyKind::Chunked;
    Ok(kind)
}

/// `1*DIGIT`, nothing else (no sign, no list, no spaces inside). Too many digits saturate,
/// which the caller then refuses as too large.
fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    Ok(value.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Splits a request target into path and query spans (offsets shifted by `base`).
fn split_target(target: &[u8], base: usize) -> (Span, Option<Span>) {
    let span = |start: usize, end: usize| Span {
        start: base + start,
        end: base + end,
    };
    let path_start = if target.first() == Some(&b'/') {
        0
    } else if let Some(authority) = scheme_end(target) {
        // absolute-form: the path starts after the authority.
        target[authority..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(target.len(), |i| authority + i)
    } else {
        // asterisk-form or authority-form: no path or query to split.
        return (span(0, target.len()), None);
    };
    match target[path_start..].iter().position(|&b| b == b'?') {
        Some(i) => (
            span(path_start, path_start + i),
            Some(span(path_start + i + 1, target.len())),
        ),
        None => (span(path_start, target.len()), None),
    }
}

/// The offset after `scheme://` if `target` starts with one (RFC 3986 scheme syntax).
fn scheme_end(target: &[u8]) -> Option<usize> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (valid && target[colon..].starts_with(b"://")).then_some(colon + 3)
}

/// Runs httparse over `buf` with a field table of `max_headers` entries and hands the
/// outcome to `f`. The table never has more entries than `buf` could hold field lines
/// (each takes at least 3 bytes, `a:\n`), so a huge `max_headers` allocates nothing extra.
fn run_httparse<R>(
    buf: &[u8],
    max_headers: usize,
    f: impl FnOnce(httparse::Result<usize>, &httparse::Request<'_, '_>) -> R,
) -> R {
    let entries = max_headers.min(buf.len() / 3 + 1);
    let mut inline = [httparse::EMPTY_HEADER; INLINE_HEADERS];
    let mut heap;
    let table = if entries <= INLINE_HEADERS {
        &mut inline[..entries]
    } else {
        heap = vec![httparse::EMPTY_HEADER; entries];
        &mut heap[..]
    };
    let mut req = httparse::Request::new(table);
    let status = req.parse(buf);
    f(status, &req)
}

/// Maps an httparse error on `buf` (a head or head prefix) to a status.
fn map_error(error: httparse::Error, buf: &[u8], limits: &HttpLimits) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            max: limits.max_headers,
        },
        httparse::Error::Version if version_is_well_formed(buf) => HttpError::UnsupportedVersion,
        httparse::Error::Version => HttpError::Malformed("invalid HTTP version"),
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Token => HttpError::Malformed("invalid method or request target"),
        httparse::Error::Status => HttpError::Malformed("invalid request line"),
    }
}

/// Whether the request line ends in `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3), so a version
/// httparse refuses is unsupported (505) rather than garbage (400).
fn version_is_well_formed(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// Field-table entries kept on the stack; larger `max_headers` allocate per head.
const INLINE_HEADERS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &[u8]) -> Result<Option<(RequestHead, BodyKind)>, HttpError> {
        decode_with(raw, &HttpLimits::default())
    }

    fn decode_with(
        raw: &[u8],
        limits: &HttpLimits,
    ) -> Result<Option<(RequestHead, BodyKind)>, HttpError> {
        let mut src = BytesMut::from(raw);
        decode_head(&mut HeadScan::default(), &mut src, limits, true)
    }

    fn status(raw: &[u8]) -> u16 {
        decode(raw).expect_err("the head must be refused").status()
    }

    fn head(raw: &[u8]) -> (RequestHead, BodyKind) {
        decode(raw).expect("valid head").expect("complete head")
    }

    #[test]
    fn parses_the_intake_request_line_and_fields() {
        let (h, body) = head(b"POST /task/v1/message?trace=1 HTTP/1.1\r\nHost: gale\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(h.method(), "POST");
        assert_eq!(h.target(), "/task/v1/message?trace=1");
        assert_eq!(h.path(), "/task/v1/message");
        assert_eq!(h.query(), Some("trace=1"));
        assert_eq!(h.version(), Version::Http11);
        assert_eq!(h.header_str("content-type"), Some("application/json"));
        assert_eq!(h.content_length(), Some(9));
        assert_eq!(body, BodyKind::Length(9));
        assert!(h.keep_alive());
    }

    #[test]
    fn target_forms() {
        let cases: [(&[u8], &str, Option<&str>); 6] = [
            (
                b"GET http://h:8/a/b?q HTTP/1.1\r\nHost: h\r\n\r\n",
                "/a/b",
                Some("q"),
            ),
            (b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", "/", None),
            (
                b"GET https://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
                "/",
                Some("x=1"),
            ),
            (b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", None),
            (b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", "h:443", None),
            (b"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", "/a", Some("b?c")),
        ];
        for (raw, path, query) in cases {
            let (h, _) = head(raw);
            assert_eq!((h.path(), h.query()), (path, query), "{}", h.target());
        }
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let (h, _) = head(b"\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(h.target(), "/");
        assert_eq!(h.headers.buf.first(), Some(&b'G'));
        assert!(decode(b"\r\n\r\n").unwrap().is_none());
        assert!(decode(b"\r").unwrap().is_none());
    }

    #[test]
    fn bare_lf_line_endings_are_accepted() {
        let (h, _) = head(b"GET / HTTP/1.1\nHost: h\n\n");
        assert_eq!(h.header("host"), Some(&b"h"[..]));
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |raw: &[u8]| head(raw).0.keep_alive();
        assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!ka(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n"
        ));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn host_rules() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
        head(b"GET / HTTP/1.0\r\n\r\n");
        let mut src = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
        let lax = decode_head(
            &mut HeadScan::default(),
            &mut src,
            &HttpLimits::default(),
            false,
        );
        assert!(matches!(lax, Ok(Some(_))));
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").1,
            BodyKind::Empty
        );
        assert_eq!(
            head(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n").1,
            BodyKind::Length(7)
        );
        assert_eq!(
            head(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:  3 \r\n\r\n").1,
            BodyKind::Length(3)
        );
        for bad in [
            &b"-1"[..],
            b"+1",
            b"1.0",
            b"0x10",
            b"1 2",
            b"1,1",
            b"",
            b"abc",
        ] {
            let mut raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ".to_vec();
            raw.extend_from_slice(bad);
            raw.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                decode(&raw),
                Err(HttpError::InvalidContentLength),
                "{bad:?}"
            );
        }
        let dup =
            decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(dup, Err(HttpError::MultipleContentLength));
        let conflict =
            decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n");
        assert_eq!(conflict, Err(HttpError::MultipleContentLength));
    }

    #[test]
    fn declared_oversize_body_is_413_from_the_head_alone() {
        let mut limits = HttpLimits::default();
        limits.max_body(10);
        let ok = decode_with(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n",
            &limits,
        );
        assert!(matches!(ok, Ok(Some((_, BodyKind::Length(10))))));
        let big = decode_with(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
            &limits,
        );
        assert_eq!(big, Err(HttpError::BodyTooLarge { max: 10 }));
        let huge = decode(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        );
        assert_eq!(huge.map(|_| ()).unwrap_err().status(), 413);
    }

    #[test]
    fn transfer_encoding_rules() {
        let (h, body) = head(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(body, BodyKind::Chunked);
        assert!(h.is_chunked());
        let smuggle = decode(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(smuggle, Err(HttpError::ContentLengthWithTransferEncoding));
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        // a space before the colon is a classic smuggling trick; httparse refuses it.
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn post_and_put_need_a_length() {
        assert_eq!(
            decode(b"POST / HTTP/1.1\r\nHost: h\r\n\r\n"),
            Err(HttpError::LengthRequired)
        );
        assert_eq!(status(b"PUT / HTTP/1.1\r\nHost: h\r\n\r\n"), 411);
        assert_eq!(
            head(b"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n").1,
            BodyKind::Empty
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            decode(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"),
            Err(HttpError::UnsupportedVersion)
        );
        assert_eq!(status(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/0.9\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTX/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/11\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status(b"GET /\r\n\r\n"), 400, "HTTP/0.9 simple request");
    }

    #[test]
    fn syntax_errors_are_400() {
        for raw in [
            &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n",
            b"GET / HTTP/1.1\rHost: h\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
        ] {
            assert_eq!(status(raw), 400, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn garbage_is_refused_once_the_first_line_ends() {
        let mut src = BytesMut::from(&b"GET / HTTP/3.0\r\nHost: h\r\n"[..]);
        let r = decode_head(
            &mut HeadScan::default(),
            &mut src,
            &HttpLimits::default(),
            true,
        );
        assert_eq!(r, Err(HttpError::UnsupportedVersion));
        let mut src = BytesMut::from(&b"\x00\x01\x02\n"[..]);
        let r = decode_head(
            &mut HeadScan::default(),
            &mut src,
            &HttpLimits::default(),
            true,
        );
        assert_eq!(r.map(|_| ()).unwrap_err().status(), 400);
    }

    #[test]
    fn head_size_limit_is_exact_and_scanning_stops_there() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut limits = HttpLimits::default();
        limits.max_head_size(raw.len());
        assert!(matches!(decode_with(raw, &limits), Ok(Some(_))));
        limits.max_head_size(raw.len() - 1);
        assert_eq!(
            decode_with(raw, &limits),
            Err(HttpError::HeadTooLarge { max: raw.len() - 1 })
        );
        // an unterminated head below the limit waits; at the limit it fails.
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(HttpLimits::DEFAULT_MAX_HEAD_SIZE - 1, b'a');
        assert_eq!(decode(&long), Ok(None));
        long.push(b'a');
        assert_eq!(decode(&long), Err(HttpError::HeadTooLarge { max: 8192 }));
    }

    #[test]
    fn header_count_limit() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..63 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(head(&raw).0.headers().len(), 64);
        raw.splice(16..16, b"Y: 1\r\n".iter().copied());
        assert_eq!(decode(&raw), Err(HttpError::TooManyHeaders { max: 64 }));
        let mut limits = HttpLimits::default();
        limits.max_headers(100);
        assert!(
            matches!(decode_with(&raw, &limits), Ok(Some(_))),
            "heap field table"
        );
        limits.max_headers(usize::MAX);
        assert!(
            matches!(decode_with(&raw, &limits), Ok(Some(_))),
            "table sized by the head"
        );
        let mut minimal = b"GET / HTTP/1.1\nHost:h\n".to_vec();
        for _ in 0..100 {
            minimal.extend_from_slice(b"a:\n");
        }
        minimal.push(b'\n');
        let (h, _) = decode_with(&minimal, &limits).unwrap().unwrap();
        assert_eq!(h.headers().len(), 101, "3-byte field lines fit the table");
        limits.max_headers(0);
        assert_eq!(
            decode_with(&raw, &limits),
            Err(HttpError::TooManyHeaders { max: 0 })
        );
    }

    #[test]
    fn incremental_scan_resumes_and_finds_the_same_head() {
        let raw = b"GET /x HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\nNEXT";
        for cut in 0..raw.len() {
            let mut scan = HeadScan::default();
            let mut src = BytesMut::from(&raw[..cut]);
            let limits = HttpLimits::default();
            let first = decode_head(&mut scan, &mut src, &limits, true).expect("valid prefix");
            src.extend_from_slice(&raw[cut..]);
            let got = match first {
                Some(found) => found,
                None => decode_head(&mut scan, &mut src, &limits, true)
                    .unwrap()
                    .unwrap(),
            };
            assert_eq!(got.0.target(), "/x", "cut at {cut}");
            assert_eq!(got.0.headers().len(), 2);
            assert_eq!(&src[..], b"NEXT");
        }
    }

    #[test]
    fn version_shape() {
        assert!(version_is_well_formed(b"GET / HTTP/2.0\r\n"));
        assert!(version_is_well_formed(b"GET / HTTP/9.9\n"));
        assert!(!version_is_well_formed(b"GET / HTTP/2\r\n"));
        assert!(!version_is_well_formed(b"GET / http/1.1\r\n"));
    }
}
