//! The per-message cost of the connection engine, with no I/O: read into the receive
//! buffer, decode, call the handler, encode, expose slices, account the write.

use std::hint::black_box;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gale_core::codec::{LengthDelimited, Raw};
use gale_core::{ConnConfig, Connection, Context, Handler, PeerAddr, Protocol};

struct Echo<P>(fn() -> P);

impl<P> Handler for Echo<P>
where
    P: Protocol<Message = Bytes, Outgoing = Bytes> + Sync,
{
    type Protocol = P;
    type State = ();

    fn protocol(&self) -> P {
        (self.0)()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        let _ = cx.send(msg);
    }
}

/// One ping-pong round: `input` arrives in one read, the reply leaves in one vectored write.
/// `scratch`: the driver reads into a buffer of its own and passes a slice
/// (`handle_input`); otherwise it reads into the connection's window (`read_buf`).
fn round<H: Handler>(conn: &mut Connection<H>, now: Instant, input: &[u8], scratch: bool) -> usize {
    if scratch {
        conn.handle_input(now, input);
    } else {
        let window = conn.read_buf();
        window[..input.len()].copy_from_slice(input);
        conn.handle_read(now, input.len());
    }
    let mut iov = [IoSlice::new(&[]); 8];
    let n = conn.poll_transmit(&mut iov);
    let written: usize = iov[..n].iter().map(|s| s.len()).sum();
    conn.handle_written(now, written);
    written
}

fn bench_echo(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // benches are drivers: they own the clock
    let now = Instant::now();
    let mut group = c.benchmark_group("connection_echo");
    for size in [6usize, 512, 4096] {
        group.throughput(Throughput::Elements(1));
        let raw = vec![7u8; size];
        for (name, scratch) in [("raw/read_buf", false), ("raw/handle_input", true)] {
            group.bench_with_input(BenchmarkId::new(name, size), &raw, |b, input| {
                let handler = Arc::new(Echo(Raw::new));
                let mut conn =
                    Connection::new(handler, ConnConfig::default(), PeerAddr::Unknown, now);
                conn.handle_connect(now);
                b.iter(|| black_box(round(&mut conn, now, input, scratch)));
            });
        }
        let mut framed = (size as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&raw);
        group.bench_with_input(
            BenchmarkId::new("length_delimited", size),
            &framed,
            |b, input| {
                let handler = Arc::new(Echo(LengthDelimited::new));
                let mut conn =
                    Connection::new(handler, ConnConfig::default(), PeerAddr::Unknown, now);
                conn.handle_connect(now);
                b.iter(|| black_box(round(&mut conn, now, input, true)));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_echo);
criterion_main!(benches);
