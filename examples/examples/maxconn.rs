//! gev's maximum-connections example: an echo server that accepts at most `--max`
//! connections at once; extra connections are accepted and closed at once, without reaching
//! the handler.
//!
//! `cargo run --release --example maxconn -- --max 1`

use clap::Parser;
use gale_examples::CommonArgs;
use gale_examples::handlers::Echo;

/// Echo server with a connection limit.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Most connections open at once.
    #[arg(long, default_value_t = 1)]
    max: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    let mut config = args.common.server_config();
    config.set_max_connections(Some(args.max));
    args.common.run_until_ctrl_c(Echo, config)
}
