//! `fastws-echo`: fastwebsockets' canonical echo server (its `examples/echo_server.rs`): hyper
//! HTTP/1.1 serves the upgrade (`fastwebsockets::upgrade`), then a task per connection reads
//! frames through a `FragmentCollector` and writes text/binary frames back; current-thread
//! tokio runtime.
//!
//! Deviations from the example, none on the hot path: binds 127.0.0.1:`--port`,
//! `TCP_NODELAY` on accepted sockets (as every compared server), no per-connection print, and
//! errors end the connection quietly (clients reset connections at the end of every run).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use fastwebsockets::{OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "fastws-echo",
    about = "Canonical fastwebsockets echo server (benchmark baseline)"
)]
struct Cli {
    /// Port to listen on (127.0.0.1).
    #[arg(short, long)]
    port: u16,
}

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fastwebsockets::FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn(async move {
        let _ = tokio::task::unconstrained(handle_client(fut)).await;
    });
    Ok(response)
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
    eprintln!("fastws-echo listening on {addr}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("fastws-echo: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn_fut = http1::Builder::new()
                .serve_connection(io, service_fn(server_upgrade))
                .with_upgrades();
            let _ = conn_fut.await;
        });
    }
}
