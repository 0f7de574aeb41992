//! gev's idle-connection example: an echo server that closes connections with no traffic
//! for `--idle-ms`.
//!
//! `cargo run --release --example idle -- --idle-ms 5000`

use std::time::Duration;

use clap::Parser;
use gale_examples::handlers::Echo;
use gale_examples::{CommonArgs, run_until_ctrl_c};

/// Echo server that closes idle connections (gev's `IdleTime` option).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Close connections with no read or write activity for this many milliseconds.
    #[arg(long, default_value_t = 5000)]
    idle_ms: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    let mut config = args.common.server_config();
    config
        .conn_mut()
        .set_idle_timeout(Some(Duration::from_millis(args.idle_ms)));
    let server = args.common.start(Echo, config)?;
    run_until_ctrl_c(&*server)
}
