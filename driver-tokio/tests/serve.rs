//! The runtime-native entry point, `serve`, on current-thread and multi-thread runtimes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gale_core::codec::Lines;
use gale_core::server::ServerConfig;
use gale_core::{CloseReason, Context, Handler};
use gale_tokio::gale_core;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Echoes lines; `big` queues 32 MiB of reply (more than loopback socket buffers hold).
/// Records close reasons.
#[derive(Default)]
struct Echo {
    closed: Arc<Mutex<Vec<CloseReason>>>,
}

impl Handler for Echo {
    type Protocol = Lines;
    type State = ();
    fn protocol(&self) -> Lines {
        Lines::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        if line == "big" {
            for _ in 0..512 {
                let _ = cx.send(Bytes::from(vec![b'x'; 64 * 1024 - 1]));
            }
        } else {
            let _ = cx.send(line);
        }
    }
    fn on_close(&self, _cx: &mut Context<'_, Self>, reason: &CloseReason) {
        self.closed.lock().unwrap().push(reason.clone());
    }
}

async fn echo_then_stop() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = gale_tokio::serve(listener, Echo::default(), ServerConfig::default());
    let handle = server.handle();
    let addr = handle.local_addr().unwrap();
    let running = tokio::spawn(server.into_future());

    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"ping\n").await.unwrap();
    let mut buf = [0; 5];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping\n");
    assert_eq!(handle.connection_count(), 1);

    handle.stop();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed by the stop");
    timeout(TIMEOUT, handle.stopped()).await.unwrap();
    timeout(TIMEOUT, running).await.unwrap().unwrap();
    assert!(handle.is_stopped());
    assert_eq!(handle.connection_count(), 0);
}

#[test]
fn serve_on_a_current_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(echo_then_stop());
}

#[test]
fn serve_on_a_multi_thread_runtime() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(echo_then_stop());
}

#[tokio::test]
async fn stop_deadline_closes_connections_that_cannot_flush() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ServerConfig::default();
    config.set_stop_timeout(Duration::from_millis(50));
    config
        .conn_mut()
        .set_close_linger(Duration::from_secs(3600));
    let echo = Echo::default();
    let closed = Arc::clone(&echo.closed);
    let server = gale_tokio::serve(listener, echo, config);
    let handle = server.handle();
    let running = tokio::spawn(server.run());

    let mut c =
        tokio::net::TcpStream::from_std(small_window_client(handle.local_addr().unwrap())).unwrap();
    // A 32 MiB reply the client never reads: the flush cannot finish.
    c.write_all(b"big\n").await.unwrap();
    let mut first = [0; 1];
    c.read_exact(&mut first).await.unwrap();
    handle.stop();
    timeout(TIMEOUT, running).await.unwrap().unwrap();
    assert_eq!(*closed.lock().unwrap(), [CloseReason::Shutdown]);
}

#[cfg(unix)]
#[tokio::test]
async fn serve_a_unix_listener() {
    let path = std::env::temp_dir().join(format!("gale-tokio-serve-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = gale_tokio::serve(listener, Echo::default(), ServerConfig::default());
    let handle = server.handle();
    let running = tokio::spawn(server.run());
    let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
    c.write_all(b"unix\n").await.unwrap();
    let mut buf = [0; 5];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"unix\n");
    handle.stop();
    timeout(TIMEOUT, running).await.unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
}

/// A client whose small receive buffer (no autotuning) cannot absorb a large reply.
fn small_window_client(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket.into()
}

const TIMEOUT: Duration = Duration::from_secs(10);
