//! Long work off the event loops: every line a client sends is handed to the driver's task
//! pool as `--work-ms` of simulated work; the answer comes later through the connection's
//! handle. `done <line>` when the work is done, `busy <line>` at once when `--max-running`
//! tasks run and `--max-waiting` wait, `timeout <line>` when a line waited `--wait-ms`
//! without getting a slot.
//!
//! `cargo run --example tasks -- --driver tokio --max-running 2 --max-waiting 2`, then
//! `nc 127.0.0.1 1833` and type a few lines quickly.

use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;
use gale_core::task::TaskConfig;
use gale_examples::handlers::TaskLines;
use gale_examples::{CommonArgs, run_until_ctrl_c, task_pool};

/// A line server whose work runs on a task pool.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Simulated work per line, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    work_ms: u64,
    /// Lines worked on at once.
    #[arg(long, default_value_t = TaskConfig::DEFAULT_MAX_RUNNING)]
    max_running: NonZeroUsize,
    /// Lines waiting for a slot; beyond that, "busy".
    #[arg(long, default_value_t = TaskConfig::DEFAULT_MAX_WAITING)]
    max_waiting: usize,
    /// How long a line may wait for a slot before "timeout", in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    wait_ms: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    let mut config = TaskConfig::default();
    config
        .max_running(args.max_running)
        .max_waiting(args.max_waiting)
        .wait_timeout(Duration::from_millis(args.wait_ms));
    let pool = task_pool(args.common.driver, config)?;
    let handler = TaskLines {
        pool,
        work: Duration::from_millis(args.work_ms),
    };
    let server = args.common.start(handler, args.common.server_config())?;
    run_until_ctrl_c(&*server)
}
