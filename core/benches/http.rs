//! HTTP/1.1 request decoding and response encoding, in memory.
//!
//! Run: `cargo bench -p gale-core --bench http`; CI runs it in quick test mode
//! (`cargo test -p gale-core --benches`).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gale_core::http::{HttpError, RequestDecoder, Response};

/// What curl sends to the intake server.
const POST_JSON: &[u8] = b"POST /task/v1/message HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Type: application/json\r\n\
Content-Length: 26\r\n\
\r\n\
{\"Msg\":\"test message 12\"}\n";

/// A browser-like GET, repeated to make a pipelined batch.
const GET: &[u8] = b"GET /static/app.js?v=42 HTTP/1.1\r\n\
Host: gale.example\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
\r\n";

const PIPELINED: usize = 32;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_decode");

    group.throughput(Throughput::Bytes(POST_JSON.len() as u64));
    group.bench_function("post_json", |b| {
        let mut decoder = RequestDecoder::new();
        b.iter(|| {
            let mut src = BytesMut::from(POST_JSON);
            let req = decoder.decode(&mut src).expect("valid").expect("complete");
            black_box(req.body().len())
        });
    });

    let chunked =
        b"POST /task/v1/message HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                    8\r\n{\"Msg\":\"\r\n12\r\ntest message 12\"}\n\r\n0\r\n\r\n";
    group.throughput(Throughput::Bytes(chunked.len() as u64));
    group.bench_function("post_json_chunked", |b| {
        let mut decoder = RequestDecoder::new();
        b.iter(|| {
            let mut src = BytesMut::from(&chunked[..]);
            let req = decoder.decode(&mut src).expect("valid").expect("complete");
            black_box(req.body().len())
        });
    });

    let batch = GET.repeat(PIPELINED);
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("pipelined_gets_x32", |b| {
        let mut decoder = RequestDecoder::new();
        b.iter(|| {
            let mut src = BytesMut::from(&batch[..]);
            let mut n = 0;
            while let Some(req) = decoder.decode(&mut src).expect("valid") {
                n += req.headers().len();
            }
            black_box(n)
        });
    });

    // The same batch arriving in 100-byte reads: the head search resumes instead of rescanning.
    group.bench_function("pipelined_gets_x32_100b_reads", |b| {
        let mut decoder = RequestDecoder::new();
        b.iter(|| {
            let mut src = BytesMut::with_capacity(1024);
            let mut n = 0;
            for read in batch.chunks(100) {
                src.extend_from_slice(read);
                while let Some(req) = decoder.decode(&mut src).expect("valid") {
                    n += req.headers().len();
                }
            }
            black_box(n)
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_encode");
    group.bench_function("response_200_json", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            Response::new(200)
                .with_header("Content-Type", "application/json")
                .with_body(&b"{\"status\":\"accepted\"}"[..])
                .encode(&mut out);
            black_box(out.len())
        });
    });
    group.bench_function("response_from_error_413", |b| {
        let err = HttpError::BodyTooLarge { max: 1 << 20 };
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            Response::from_error(black_box(&err)).encode(&mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
