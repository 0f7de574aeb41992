//! gev's echo server: every byte comes back.
//!
//! `cargo run --release --example echo -- --port 1833`, then `nc 127.0.0.1 1833`.

use clap::Parser;
use gale_examples::CommonArgs;
use gale_examples::handlers::Echo;

/// Echo server (gev's example/echo).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    args.common
        .run_until_ctrl_c(Echo, args.common.server_config())
}
