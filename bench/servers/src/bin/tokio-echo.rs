//! `tokio-echo`: the canonical tokio echo server (tokio's `examples/echo.rs`): a task per
//! connection, each with `vec![0; 1024]`, `read` then `write_all` in a loop.
//!
//! Deviations from the example, none on the hot path: a current-thread runtime by default
//! (`--threads 1`, one core, like the other servers; `--threads N` gives a multi-thread
//! runtime with N workers), `TCP_NODELAY` on accepted sockets (as every compared server, so
//! that Nagle's algorithm is not what gets measured), and an I/O error ends the task quietly
//! instead of panicking (clients reset connections at the end of every run).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "tokio-echo",
    about = "Canonical tokio echo server (benchmark baseline)"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(short, long)]
    port: u16,
    /// Runtime threads: 1 = current-thread runtime, N > 1 = multi-thread with N workers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_io()
            .build()?
    };
    runtime.block_on(serve(SocketAddr::from((Ipv4Addr::LOCALHOST, cli.port))))
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("tokio-echo listening on {addr}");
    loop {
        let (mut socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("tokio-echo: accept: {e}");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0; 1024];
            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if socket.write_all(&buf[0..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
