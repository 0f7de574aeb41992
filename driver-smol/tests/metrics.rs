//! The shared metric names are reported (one test: the recorder is process-global).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gale_core::codec::Lines;
use gale_core::server::{ServerConfig, metric};
use gale_core::{Context, Handler};
use gale_smol as driver;
use gale_smol::gale_core;
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata};
use metrics::{SharedString, Unit};

struct Echo;

impl Handler for Echo {
    type Protocol = Lines;
    type State = ();
    fn protocol(&self) -> Lines {
        Lines::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        let _ = cx.send(line);
    }
}

/// Every counter and gauge as one `f64`, by name.
#[derive(Default)]
struct Recorder(Mutex<HashMap<String, Arc<Value>>>);

#[derive(Default)]
struct Value(Mutex<f64>);

impl CounterFn for Value {
    fn increment(&self, n: u64) {
        *self.0.lock().unwrap() += n as f64;
    }
    fn absolute(&self, n: u64) {
        *self.0.lock().unwrap() = n as f64;
    }
}

impl GaugeFn for Value {
    fn increment(&self, d: f64) {
        *self.0.lock().unwrap() += d;
    }
    fn decrement(&self, d: f64) {
        *self.0.lock().unwrap() -= d;
    }
    fn set(&self, v: f64) {
        *self.0.lock().unwrap() = v;
    }
}

impl Recorder {
    fn value(&self, name: &str) -> Arc<Value> {
        let mut map = self.0.lock().unwrap();
        Arc::clone(map.entry(name.to_owned()).or_default())
    }
}

impl metrics::Recorder for &'static Recorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.value(key.name()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.value(key.name()))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn connection_metrics_use_the_shared_names() {
    let recorder: &'static Recorder = Box::leak(Box::default());
    metrics::set_global_recorder(recorder).unwrap();
    let read = |name: &str| *recorder.value(name).0.lock().unwrap();

    let mut config = ServerConfig::default();
    config.set_loops(Some(1)).set_max_connections(Some(1));
    let server = driver::Server::new(Echo)
        .config(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .start()
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(b"hello\n").unwrap();
    let mut buf = [0; 6];
    c.read_exact(&mut buf).unwrap();
    let mut refused = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    refused.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(refused.read(&mut buf).unwrap_or(0), 0);
    drop(c);
    wait_until(|| read(metric::CONNECTIONS_CLOSED) == 1.0);

    for (name, want) in [
        (metric::CONNECTIONS_ACCEPTED, 1.0),
        (metric::CONNECTIONS_REFUSED, 1.0),
        (metric::CONNECTIONS_OPEN, 0.0),
        (metric::BYTES_READ, 6.0),
        (metric::BYTES_WRITTEN, 6.0),
        (metric::MESSAGES_IN, 1.0),
        (metric::MESSAGES_OUT, 1.0),
        (metric::SEND_BUFFERED_BYTES, 0.0),
        (metric::RECV_BUFFERED_BYTES, 0.0),
    ] {
        assert_eq!(read(name), want, "{name}");
    }
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);
