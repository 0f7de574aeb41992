//! `tungstenite-echo`: the canonical tokio-tungstenite echo server (as in
//! /work/shared/tools/autobahn/README.md): a task per connection, `accept_async`, then
//! `while let Some(Ok(m)) = ws.next().await { if text or binary: ws.send(m) }`; current-thread
//! tokio runtime.
//!
//! Deviations, none on the hot path: binds 127.0.0.1:`--port`, `TCP_NODELAY` on accepted
//! sockets (as every compared server), accept errors are logged instead of ending the loop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "tungstenite-echo",
    about = "Canonical tokio-tungstenite echo server (benchmark baseline)"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(short, long)]
    port: u16,
}

fn main() -> io::Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(serve(SocketAddr::from((Ipv4Addr::LOCALHOST, cli.port))))
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("tungstenite-echo listening on {addr}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("tungstenite-echo: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
}
