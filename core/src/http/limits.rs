//! [`HttpLimits`]: every length a client controls, bounded.

/// Limits on what a client may send, checked before anything is buffered or allocated.
///
/// Setters take `&mut self` and return `&mut Self` so they chain:
///
/// ```
/// use gale_core::http::{HttpLimits, RequestDecoder};
///
/// let mut limits = HttpLimits::default();
/// limits.max_body(64 * 1024).max_headers(32);
/// let decoder = RequestDecoder::with_limits(limits);
/// assert_eq!(decoder.limits().body_limit(), 64 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub(crate) max_head_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body: usize,
    pub(crate) max_chunk_line: usize,
    pub(crate) max_trailer_size: usize,
}

impl HttpLimits {
    /// Default for [`max_head_size`](Self::max_head_size): 8 KiB, what nginx and most
    /// servers accept for a request line plus header fields.
    pub const DEFAULT_MAX_HEAD_SIZE: usize = 8 * 1024;
    /// Default for [`max_headers`](Self::max_headers): 64 fields.
    pub const DEFAULT_MAX_HEADERS: usize = 64;
    /// Default for [`max_body`](Self::max_body): 1 MiB.
    pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
    /// Default for [`max_chunk_line`](Self::max_chunk_line): 1 KiB.
    pub const DEFAULT_MAX_CHUNK_LINE: usize = 1024;
    /// Default for [`max_trailer_size`](Self::max_trailer_size): 4 KiB.
    pub const DEFAULT_MAX_TRAILER_SIZE: usize = 4 * 1024;

    /// The defaults listed on the `DEFAULT_*` constants.
    pub const fn new() -> Self {
        Self {
            max_head_size: Self::DEFAULT_MAX_HEAD_SIZE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_body: Self::DEFAULT_MAX_BODY,
            max_chunk_line: Self::DEFAULT_MAX_CHUNK_LINE,
            max_trailer_size: Self::DEFAULT_MAX_TRAILER_SIZE,
        }
    }

    /// Longest request head (request line, header fields and the empty line that ends them),
    /// in bytes. Beyond it: [`HttpError::HeadTooLarge`](super::HttpError::HeadTooLarge) (431).
    /// The decoder never scans past this many bytes looking for the end of a head.
    pub fn max_head_size(&mut self, bytes: usize) -> &mut Self {
        self.max_head_size = bytes;
        self
    }

    /// Most header fields in one request. Beyond it:
    /// [`HttpError::TooManyHeaders`](super::HttpError::TooManyHeaders) (431). Up to 64 the
    /// parser's field table lives on the stack; above, one table is allocated per head.
    pub fn max_headers(&mut self, count: usize) -> &mut Self {
        self.max_headers = count;
        self
    }

    /// Largest request body, in bytes, after chunked decoding. Beyond it:
    /// [`HttpError::BodyTooLarge`](super::HttpError::BodyTooLarge) (413), raised from the
    /// declared `Content-Length` or chunk size before the body bytes are buffered.
    pub fn max_body(&mut self, bytes: usize) -> &mut Self {
        self.max_body = bytes;
        self
    }

    /// Longest chunk-size line, extensions and CRLF included. Beyond it:
    /// [`HttpError::ChunkLineTooLong`](super::HttpError::ChunkLineTooLong) (400).
    pub fn max_chunk_line(&mut self, bytes: usize) -> &mut Self {
        self.max_chunk_line = bytes;
        self
    }

    /// Largest trailer section of a chunked body (the field lines after the last chunk,
    /// which are then ignored), not counting the final empty line. Beyond it:
    /// [`HttpError::TrailersTooLarge`](super::HttpError::TrailersTooLarge) (431).
    pub fn max_trailer_size(&mut self, bytes: usize) -> &mut Self {
        self.max_trailer_size = bytes;
        self
    }

    /// The current [`max_head_size`](Self::max_head_size).
    pub fn head_size_limit(&self) -> usize {
        self.max_head_size
    }

    /// The current [`max_headers`](Self::max_headers).
    pub fn headers_limit(&self) -> usize {
        self.max_headers
    }

    /// The current [`max_body`](Self::max_body).
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    /// The current [`max_chunk_line`](Self::max_chunk_line).
    pub fn chunk_line_limit(&self) -> usize {
        self.max_chunk_line
    }

    /// The current [`max_trailer_size`](Self::max_trailer_size).
    pub fn trailer_size_limit(&self) -> usize {
        self.max_trailer_size
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let l = HttpLimits::default();
        assert_eq!(l.head_size_limit(), 8 * 1024);
        assert_eq!(l.headers_limit(), 64);
        assert_eq!(l.body_limit(), 1024 * 1024);
        assert_eq!(l.chunk_line_limit(), 1024);
        assert_eq!(l.trailer_size_limit(), 4 * 1024);
    }

    #[test]
    fn setters_chain() {
        let mut l = HttpLimits::new();
        l.max_head_size(1)
            .max_headers(2)
            .max_body(3)
            .max_chunk_line(4)
            .max_trailer_size(5);
        assert_eq!(
            (
                l.head_size_limit(),
                l.headers_limit(),
                l.body_limit(),
                l.chunk_line_limit(),
                l.trailer_size_limit()
            ),
            (1, 2, 3, 4, 5)
        );
    }
}
