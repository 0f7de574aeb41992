//! gev's custom-protocol example: length-prefixed frames (4-byte big-endian length, then the
//! payload), each echoed back as a frame. Try it with the `protocol-client` example.
//!
//! `cargo run --release --example protocol -- --port 1833`

use clap::Parser;
use gale_examples::CommonArgs;
use gale_examples::handlers::FrameEcho;

/// Length-prefixed frame echo server (gev's example/protocol).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    args.common
        .run_until_ctrl_c(FrameEcho, args.common.server_config())
}
