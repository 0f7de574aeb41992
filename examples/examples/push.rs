//! gev's server-push example: every `--every-ms`, a server timer sends "hello\n" to every
//! connected client through the connection registry; what clients send is echoed.
//!
//! `cargo run --release --example push -- --every-ms 1000`, then `nc 127.0.0.1 1833`.

use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use gale_examples::handlers::Echo;
use gale_examples::{CommonArgs, run_until_ctrl_c};

/// Echo server that pushes "hello\n" to every client periodically (gev's `RunEvery`).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Push period in milliseconds.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    let server = args.common.start(Echo, args.common.server_config())?;
    let connections = server.connections();
    server.run_every(
        Duration::from_millis(args.every_ms),
        Box::new(move || {
            let reached = connections.broadcast(&Bytes::from_static(b"hello\n"));
            tracing::debug!(reached, "pushed");
        }),
    );
    run_until_ctrl_c(&*server)
}
