//! The runtime-native entry point, `serve`, on smol's global executor and on an executor
//! run by the test.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gale_core::codec::Lines;
use gale_core::server::ServerConfig;
use gale_core::{CloseReason, Context, Handler};
use gale_smol::gale_core;
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Executor, Timer};

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

/// Fails the test instead of hanging.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    fut.or(async {
        Timer::after(TIMEOUT).await;
        panic!("timed out")
    })
    .await
}

async fn echo_then_stop(executor: Option<Arc<Executor<'static>>>) {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let mut server = gale_smol::serve(listener, Echo::default(), ServerConfig::default());
    if let Some(ex) = executor {
        server = server.executor(ex);
    }
    let handle = server.handle();
    let running = smol::spawn(server.run());

    let mut c = Async::<TcpStream>::connect(handle.local_addr().unwrap())
        .await
        .unwrap();
    c.write_all(b"ping\n").await.unwrap();
    let mut buf = [0; 5];
    bounded(c.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping\n");
    assert_eq!(handle.connection_count(), 1);

    handle.stop();
    let mut rest = Vec::new();
    match bounded(c.read_to_end(&mut rest)).await {
        Ok(_) => assert!(rest.is_empty(), "closed by the stop"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    bounded(handle.stopped()).await;
    bounded(running).await;
    assert!(handle.is_stopped());
    assert_eq!(handle.connection_count(), 0);
}

#[test]
fn serve_on_the_global_executor() {
    smol::block_on(echo_then_stop(None));
}

#[test]
fn serve_on_an_executor_of_ours_with_two_threads() {
    let ex = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (ex, stopped) = (Arc::clone(&ex), stopped.clone());
            std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())))
        })
        .collect();
    smol::block_on(echo_then_stop(Some(ex)));
    drop(stop);
    for t in threads {
        t.join().unwrap().unwrap_err();
    }
}

#[test]
fn stop_deadline_closes_connections_that_cannot_flush() {
    smol::block_on(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let mut config = ServerConfig::default();
        config.set_stop_timeout(Duration::from_millis(50));
        config
            .conn_mut()
            .set_close_linger(Duration::from_secs(3600));
        let echo = Echo::default();
        let closed = Arc::clone(&echo.closed);
        let server = gale_smol::serve(listener, echo, config);
        let handle = server.handle();
        let running = smol::spawn(server.run());

        let mut c = Async::new(small_window_client(handle.local_addr().unwrap())).unwrap();
        // A 32 MiB reply the client never reads: the flush cannot finish.
        c.write_all(b"big\n").await.unwrap();
        let mut first = [0; 1];
        bounded(c.read_exact(&mut first)).await.unwrap();
        handle.stop();
        bounded(running).await;
        assert_eq!(*closed.lock().unwrap(), [CloseReason::Shutdown]);
    });
}

#[cfg(unix)]
#[test]
fn serve_a_unix_listener() {
    use std::os::unix::net::{UnixListener, UnixStream};
    smol::block_on(async {
        let path =
            std::env::temp_dir().join(format!("gale-smol-serve-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = Async::<UnixListener>::bind(&path).unwrap();
        let server = gale_smol::serve(listener, Echo::default(), ServerConfig::default());
        let handle = server.handle();
        let running = smol::spawn(server.run());
        let mut c = Async::<UnixStream>::connect(&path).await.unwrap();
        c.write_all(b"unix\n").await.unwrap();
        let mut buf = [0; 5];
        bounded(c.read_exact(&mut buf)).await.unwrap();
        assert_eq!(&buf, b"unix\n");
        handle.stop();
        bounded(running).await;
        let _ = std::fs::remove_file(&path);
    });
}

/// A client whose small receive buffer (no autotuning) cannot absorb a large reply.
fn small_window_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket.into()
}

const TIMEOUT: Duration = Duration::from_secs(10);
