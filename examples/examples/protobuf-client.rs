//! Client for the `protobuf` example: sends `--count` random `msg1` / `msg2` frames on each of
//! `--conns` connections (gev's framing), checks that every reply is the `response` the
//! server owes, byte for byte and field by field, and that nothing follows the last one.
//! Exits with status 1 on a mismatch, 2 on an I/O error.
//!
//! `cargo run --release --example protobuf-client -- --addr 127.0.0.1:1833 --count 10000 --conns 8`
//!
//! The logic lives in `gale_examples::protobuf::client`, which the end-to-end test
//! (`examples/tests/protobuf.rs`) runs against every driver.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use gale_examples::protobuf::client::{self, ClientConfig, ClientError};

/// Sends random gev protobuf messages and verifies the replies.
#[derive(Parser)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:1833")]
    addr: SocketAddr,
    /// Messages per connection.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Connections, run in parallel.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Longest generated name or alias, in characters.
    #[arg(long, default_value_t = 200)]
    max_name: usize,
    /// Seed of the message generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = ClientConfig::new(args.addr);
    config.conns = args.conns;
    config.count = args.count;
    config.max_name_chars = args.max_name;
    config.seed = args.seed;
    match client::run(&config) {
        Ok(report) => {
            println!(
                "ok: {} replies verified ({} msg1, {} msg2) on {} connections; {} bytes sent, {} received",
                report.messages(),
                report.msg1,
                report.msg2,
                args.conns,
                report.bytes_sent,
                report.bytes_received
            );
            ExitCode::SUCCESS
        }
        Err(e @ ClientError::Mismatch { .. }) => {
            eprintln!("mismatch: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("i/o error: {e}");
            ExitCode::from(2)
        }
    }
}
