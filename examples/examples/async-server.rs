//! gale's port of GSEAsyncServer: an HTTP server that accepts messages at
//! `POST /task/v1/message`, journals each one before answering 200, and processes them in
//! the background with at most `--work-channel-len` workers.
//!
//! ```text
//! cargo run --release --example async-server -- --port 8080
//! curl -d '{"msg":"test message 1"}' http://127.0.0.1:8080/task/v1/message
//! bash examples/scripts/concurrent_test.sh 30 127.0.0.1:8080
//! ```
//!
//! GSEAsyncServer's flags work as they did (`--port`, `--bind-address`,
//! `--config-file-path`, `--work-channel-len`, `--process-max-timeout`); `--help` lists
//! gale's (`--database-url`, `--driver`, `--max-waiting`, `--demo-work-ms`, …). Logs are JSON
//! lines on stderr (`--log-format text` for text). Ctrl-C or SIGTERM stops gracefully.

use std::process::ExitCode;

use clap::Parser;
use gale_examples::intake::{IntakeArgs, serve};

fn main() -> ExitCode {
    let args = IntakeArgs::parse();
    match serve::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async-server: {e}");
            tracing::error!(error = %e, "Generating Server failure");
            ExitCode::FAILURE
        }
    }
}
