//! The fuzzing entry point behind the cargo-fuzz target `http_request`.

use bytes::BytesMut;

use super::{HttpError, HttpLimits, Request, RequestDecoder, Response};

/// For the cargo-fuzz target; asserts invariants, panics only on a bug.
///
/// The first byte of `data` picks the limits (defaults, small or tiny, so every limit is
/// reachable) and how the rest is cut into reads (1 to 64 bytes each). Then it checks:
///
/// - no panic, whatever the bytes;
/// - bounded buffering: whenever `decode` wants more bytes, the buffer holds no more than
///   the decoder may keep (less than `max_head_size` of head, less than the rest of a
///   `Content-Length` body, at most one chunk-size or trailer line);
/// - every decoded request respects the limits (head size, field count, body size);
/// - decoding read by read gives the same requests as decoding everything at once, and
///   fails if and only if it does;
/// - every error encodes into a response with a 4xx or 5xx status, and every request can
///   be answered.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn fuzz_http_request(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let limits = limits_for(control >> 6);
    let step = usize::from(control & 0x3f) + 1;
    let piecewise = run(input, step, limits);
    let whole = run(input, input.len().max(1), limits);
    assert_eq!(
        piecewise.requests, whole.requests,
        "split into {step}-byte reads"
    );
    assert_eq!(
        piecewise.error.is_some(),
        whole.error.is_some(),
        "split into {step}-byte reads: {:?} vs {:?}",
        piecewise.error,
        whole.error
    );
}

#[derive(Default)]
struct Outcome {
    requests: Vec<Request>,
    error: Option<HttpError>,
}

fn run(input: &[u8], step: usize, limits: HttpLimits) -> Outcome {
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut src = BytesMut::new();
    let mut out = Outcome::default();
    for piece in input.chunks(step) {
        src.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(request)) => accept(&mut out, request, &limits),
                Ok(None) => {
                    assert!(
                        src.len() <= decoder.buffer_bound(),
                        "{} bytes buffered, bound {}",
                        src.len(),
                        decoder.buffer_bound()
                    );
                    let _ = decoder.take_expect_continue();
                    break;
                }
                Err(err) => return refuse(out, err),
            }
        }
    }
    match decoder.decode_eof(&mut src) {
        Ok(Some(request)) => {
            accept(&mut out, request, &limits);
            out
        }
        Ok(None) => out,
        Err(err) => refuse(out, err),
    }
}

fn accept(out: &mut Outcome, request: Request, limits: &HttpLimits) {
    let head = request.head();
    assert!(head.headers.buf.len() <= limits.max_head_size);
    assert!(head.headers().len() <= limits.max_headers);
    assert!(request.body().len() <= limits.max_body);
    assert!(!head.method().is_empty() && !head.target().is_empty());
    let mut sink = BytesMut::new();
    Response::new(200).for_request(head).encode(&mut sink);
    out.requests.push(request);
}

fn refuse(mut out: Outcome, err: HttpError) -> Outcome {
    assert!((400..=599).contains(&err.status()), "{err:?}");
    assert!(err.closes_connection(), "decoder errors close: {err:?}");
    let mut sink = BytesMut::new();
    Response::from_error(&err).encode(&mut sink);
    out.error = Some(err);
    out
}

fn limits_for(choice: u8) -> HttpLimits {
    let mut limits = HttpLimits::default();
    match choice {
        1 => limits
            .max_head_size(256)
            .max_headers(8)
            .max_body(512)
            .max_chunk_line(16)
            .max_trailer_size(32),
        2 => limits
            .max_head_size(64)
            .max_headers(2)
            .max_body(16)
            .max_chunk_line(6)
            .max_trailer_size(4),
        _ => &mut limits,
    };
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the seed corpus of the cargo-fuzz target, and checks what the seeds decode to.
    #[test]
    fn replays_the_fuzz_corpus() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http_request");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            fuzz_http_request(&data);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let (&control, input) = data.split_first().expect("non-empty seed");
            let outcome = run(
                input,
                usize::from(control & 0x3f) + 1,
                limits_for(control >> 6),
            );
            let expected: Option<(usize, Option<u16>)> = match name.as_str() {
                "intake_post" => Some((1, None)),
                "pipelined_gets" => Some((3, None)),
                "chunked_trailer_expect" => Some((2, None)),
                "smuggle_cl_te" => Some((0, Some(400))),
                "tiny_limits_oversize" => Some((0, Some(413))),
                // the WebSocket frame after the head is not HTTP
                "websocket_upgrade" => Some((1, Some(400))),
                _ => None,
            };
            if let Some((requests, status)) = expected {
                assert_eq!(outcome.requests.len(), requests, "{name}");
                assert_eq!(
                    outcome.error.as_ref().map(HttpError::status),
                    status,
                    "{name}"
                );
            }
            seen.push(name);
        }
        assert!(seen.len() >= 6, "corpus seeds found: {seen:?}");
    }

    #[test]
    fn empty_input_is_fine() {
        fuzz_http_request(&[]);
        fuzz_http_request(&[0]);
        fuzz_http_request(&[0xff]);
    }
}
