//! [`HttpError`]: why a request could not be served, as an HTTP status.

use std::borrow::Cow;

use super::response::reason_phrase;

/// Why a request was refused, mapped onto an HTTP status code.
///
/// The decoder raises the variants up to [`UnsupportedVersion`](Self::UnsupportedVersion);
/// they mean the peer sent something this server will not parse, and the connection must be
/// closed after answering with [`Response::from_error`](super::Response::from_error) (see
/// [`closes_connection`](Self::closes_connection)). The last three variants are for the
/// application, so that "no such path" or "wrong method" is answered the same way; build them
/// with [`not_found`](Self::not_found), [`method_not_allowed`](Self::method_not_allowed) and
/// [`with_status`](Self::with_status).
///
/// | status | variants |
/// |--------|----------|
/// | 400 | `Malformed`, `InvalidContentLength`, `MultipleContentLength`, `ContentLengthWithTransferEncoding`, `InvalidTransferEncoding`, `InvalidHost`, `InvalidChunk`, `ChunkLineTooLong`, `UnexpectedEof` |
/// | 411 | `LengthRequired` |
/// | 413 | `BodyTooLarge` |
/// | 431 | `HeadTooLarge`, `TooManyHeaders`, `TrailersTooLarge` |
/// | 501 | `UnsupportedTransferEncoding` |
/// | 505 | `UnsupportedVersion` |
/// | 404, 405, any | `NotFound`, `MethodNotAllowed`, `Status` (application) |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request line or a header line is not valid HTTP/1.1 syntax (400).
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    /// `Content-Length` is not a plain decimal number (400).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// More than one `Content-Length` field, even with equal values (400).
    #[error("more than one Content-Length field")]
    MultipleContentLength,
    /// Both `Transfer-Encoding` and `Content-Length`: a request-smuggling vector
    /// ([RFC 9112 §6.3](https://www.rfc-editor.org/rfc/rfc9112#section-6.3)) (400).
    #[error("both Transfer-Encoding and Content-Length")]
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` is empty, repeats `chunked`, or comes in an HTTP/1.0 request (400).
    #[error("invalid Transfer-Encoding: {0}")]
    InvalidTransferEncoding(&'static str),
    /// An HTTP/1.1 request without `Host`, or any request with more than one (400,
    /// [RFC 9112 §3.2](https://www.rfc-editor.org/rfc/rfc9112#section-3.2)).
    #[error("missing or repeated Host field")]
    InvalidHost,
    /// The chunked body breaks the chunked coding syntax (400).
    #[error("invalid chunked body: {0}")]
    InvalidChunk(&'static str),
    /// A chunk-size line (with its extensions) is longer than the limit (400).
    #[error("chunk-size line longer than {max} bytes")]
    ChunkLineTooLong {
        /// The limit, [`HttpLimits::max_chunk_line`](super::HttpLimits::max_chunk_line).
        max: usize,
    },
    /// The peer closed the stream in the middle of a request (400; nobody reads the answer).
    #[error("stream ended inside a request ({buffered} bytes buffered)")]
    UnexpectedEof {
        /// Bytes of the unfinished request still in the buffer.
        buffered: usize,
    },
    /// A `POST` or `PUT` without `Content-Length` or `Transfer-Encoding` (411).
    #[error("POST and PUT need Content-Length or chunked Transfer-Encoding")]
    LengthRequired,
    /// The body is, or is declared to be, larger than the limit (413). Raised from the
    /// declared `Content-Length` or chunk size, before the bytes are buffered.
    #[error("request body larger than {max} bytes")]
    BodyTooLarge {
        /// The limit, [`HttpLimits::max_body`](super::HttpLimits::max_body).
        max: usize,
    },
    /// No end of head within the first `max` bytes (431).
    #[error("request head larger than {max} bytes")]
    HeadTooLarge {
        /// The limit, [`HttpLimits::max_head_size`](super::HttpLimits::max_head_size).
        max: usize,
    },
    /// More header fields than the limit (431).
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit, [`HttpLimits::max_headers`](super::HttpLimits::max_headers).
        max: usize,
    },
    /// The trailer section of a chunked body is larger than the limit (431).
    #[error("trailer section larger than {max} bytes")]
    TrailersTooLarge {
        /// The limit, [`HttpLimits::max_trailer_size`](super::HttpLimits::max_trailer_size).
        max: usize,
    },
    /// A transfer coding other than `chunked` (501,
    /// [RFC 9112 §6.1](https://www.rfc-editor.org/rfc/rfc9112#section-6.1)).
    #[error("unsupported transfer coding")]
    UnsupportedTransferEncoding,
    /// A well-formed `HTTP/x.y` version other than 1.0 and 1.1 (505). A version token that
    /// is not of that shape is [`Malformed`](Self::Malformed) (400).
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// Application: no resource at this path (404).
    #[error("not found")]
    NotFound,
    /// Application: the resource exists but not for this method (405). `allow` becomes the
    /// `Allow` field of the response, as RFC 9110 §15.5.6 requires.
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed {
        /// Comma-separated list of the methods the resource accepts, e.g. `"POST"`.
        allow: Cow<'static, str>,
    },
    /// Application: any other status with a short message for the body.
    #[error("{message}")]
    Status {
        /// The status code, within `400..=599`.
        status: u16,
        /// A short human-readable message.
        message: Cow<'static, str>,
    },
}

impl HttpError {
    /// 404 Not Found, for the application.
    pub fn not_found() -> Self {
        Self::NotFound
    }

    /// 405 Method Not Allowed with the `Allow` list, for the application.
    pub fn method_not_allowed(allow: impl Into<Cow<'static, str>>) -> Self {
        Self::MethodNotAllowed {
            allow: allow.into(),
        }
    }

    /// Any error status with a short message, for the application (400 for a body it cannot
    /// use, 503 when its queue is full, …). A status outside `400..=599` becomes 500.
    pub fn with_status(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            500
        };
        Self::Status {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_)
            | Self::InvalidContentLength
            | Self::MultipleContentLength
            | Self::ContentLengthWithTransferEncoding
            | Self::InvalidTransferEncoding(_)
            | Self::InvalidHost
            | Self::InvalidChunk(_)
            | Self::ChunkLineTooLong { .. }
            | Self::UnexpectedEof { .. } => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::LengthRequired => 411,
            Self::BodyTooLarge { .. } => 413,
            Self::HeadTooLarge { .. }
            | Self::TooManyHeaders { .. }
            | Self::TrailersTooLarge { .. } => 431,
            Self::UnsupportedTransferEncoding => 501,
            Self::UnsupportedVersion => 505,
            Self::Status { status, .. } => *status,
        }
    }

    /// The standard reason phrase of [`status`](Self::status), e.g. `"Payload Too Large"`.
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status())
    }

    /// Whether the connection must be closed after the error response: true for every error
    /// the decoder raises (the request framing is lost), false for application errors.
    pub fn closes_connection(&self) -> bool {
        !matches!(
            self,
            Self::NotFound | Self::MethodNotAllowed { .. } | Self::Status { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons() {
        let cases: [(HttpError, u16, &str); 9] = [
            (HttpError::Malformed("x"), 400, "Bad Request"),
            (HttpError::LengthRequired, 411, "Length Required"),
            (HttpError::BodyTooLarge { max: 1 }, 413, "Payload Too Large"),
            (
                HttpError::TooManyHeaders { max: 1 },
                431,
                "Request Header Fields Too Large",
            ),
            (
                HttpError::UnsupportedTransferEncoding,
                501,
                "Not Implemented",
            ),
            (
                HttpError::UnsupportedVersion,
                505,
                "HTTP Version Not Supported",
            ),
            (HttpError::not_found(), 404, "Not Found"),
            (
                HttpError::method_not_allowed("POST"),
                405,
                "Method Not Allowed",
            ),
            (
                HttpError::with_status(503, "queue full"),
                503,
                "Service Unavailable",
            ),
        ];
        for (err, status, reason) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.reason(), reason, "{err:?}");
        }
    }

    #[test]
    fn app_errors_keep_the_connection_decoder_errors_close_it() {
        assert!(HttpError::InvalidHost.closes_connection());
        assert!(HttpError::HeadTooLarge { max: 8 }.closes_connection());
        assert!(!HttpError::not_found().closes_connection());
        assert!(!HttpError::method_not_allowed("GET").closes_connection());
        assert!(!HttpError::with_status(422, "bad json").closes_connection());
    }

    #[test]
    fn with_status_clamps_non_error_codes_to_500() {
        assert_eq!(HttpError::with_status(200, "x").status(), 500);
        assert_eq!(HttpError::with_status(600, "x").status(), 500);
        assert_eq!(HttpError::with_status(400, "x").status(), 400);
        assert_eq!(HttpError::with_status(599, "x").status(), 599);
    }
}
