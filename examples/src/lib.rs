//! Shared helpers for the gale examples and the driver conformance suite.
//!
//! - [`Driver`], [`start`] and [`task_pool`]: the one place that knows every driver crate.
//!   Adding a driver is a variant here and an arm in [`start`] and [`task_pool`].
//! - [`RunningServer`]: what a started server offers, whatever its driver (the driver API
//!   convention of `docs/architecture.md`, as a trait object).
//! - [`TaskPool`] and [`task_pool`]: a driver's pool for long work, whatever its driver.
//! - [`CommonArgs`]: the command-line options every example takes (`--driver`, `--bind`,
//!   `--port`, `--loops`, `--metrics`, `--log-json`, …), logging and metrics setup, and
//!   [`run_until_ctrl_c`].
//! - [`handlers`]: the handlers the examples and the tests share.
//! - [`protobuf`]: gev's protobuf example with replies: the server handler and the checking
//!   client.

pub mod handlers;
pub mod intake;
pub mod protobuf;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use gale_core::server::{Balance, Registry, ServerConfig};
use gale_core::task::{OnExpired, Submitted, TaskConfig, TaskStats, Work};
use gale_core::{Handler, Outgoing};

/// The gale drivers the examples can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Driver {
    /// gale-mio: an acceptor thread and N reactor threads.
    Mio,
    /// gale-tokio: a task per connection on a tokio runtime.
    Tokio,
    /// gale-smol: a task per connection on smol executors.
    Smol,
}

impl Driver {
    /// Every driver, for tests that run against all of them.
    pub const ALL: &'static [Self] = &[Self::Mio, Self::Tokio, Self::Smol];
}

/// A running server, whatever its driver: the control half of the driver API convention.
pub trait RunningServer<O>: Send + Sync {
    /// The TCP address the server listens on.
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Open connections.
    fn connection_count(&self) -> usize;
    /// The live connections (count, broadcast, handles).
    fn connections(&self) -> Registry<O>;
    /// Runs `f` once after `delay`.
    fn run_after(&self, delay: Duration, f: Box<dyn FnOnce() + Send>);
    /// Runs `f` every `period`.
    fn run_every(&self, period: Duration, f: Box<dyn FnMut() + Send>);
    /// Stops gracefully and waits for the server's threads; idempotent.
    fn stop(&self);
    /// Blocks until the server has stopped.
    fn wait(&self);
}

/// Starts `handler` on `driver`, listening on `addr`. With [`task_pool`], the only function
/// that names driver crates.
pub fn start<H: Handler>(
    driver: Driver,
    handler: H,
    config: ServerConfig,
    addr: SocketAddr,
) -> io::Result<Box<dyn RunningServer<Outgoing<H>>>> {
    // The one line a user changes to switch drivers is the crate name below.
    match driver {
        Driver::Mio => Ok(Box::new(
            gale_mio::Server::new(handler)
                .config(config)
                .bind(addr)?
                .start()?,
        )),
        Driver::Tokio => Ok(Box::new(
            gale_tokio::Server::new(handler)
                .config(config)
                .bind(addr)?
                .start()?,
        )),
        Driver::Smol => Ok(Box::new(
            gale_smol::Server::new(handler)
                .config(config)
                .bind(addr)?
                .start()?,
        )),
    }
}

/// Runs `handler` on `driver` on the calling thread until the server stops
/// (`gale_X::Server::run`): with one loop, the server needs no other thread. `on_start`
/// gets the server's handle first, to arm timers or hand it to whatever stops it.
pub fn run<H: Handler>(
    driver: Driver,
    handler: H,
    config: ServerConfig,
    addr: SocketAddr,
    on_start: impl FnOnce(Arc<dyn RunningServer<Outgoing<H>>>),
) -> io::Result<()> {
    match driver {
        Driver::Mio => gale_mio::Server::new(handler)
            .config(config)
            .bind(addr)?
            .run(|server| on_start(server.clone())),
        Driver::Tokio => gale_tokio::Server::new(handler)
            .config(config)
            .bind(addr)?
            .run(|server| on_start(server.clone())),
        Driver::Smol => gale_smol::Server::new(handler)
            .config(config)
            .bind(addr)?
            .run(|server| on_start(server.clone())),
    }
}

/// A driver's task pool (`gale_X::TaskPool`), whatever its driver: long work off the event
/// loops, admitted by gale-core's task queue.
pub trait TaskPool: Send + Sync {
    /// Offers `work`; `on_expired` is called instead if it waits past its deadline. A
    /// refused task runs neither: answer "busy" at once.
    fn submit(&self, work: Work, on_expired: OnExpired) -> Submitted<()>;
    /// Running and waiting tasks, and counters.
    fn stats(&self) -> TaskStats;
}

/// Starts a task pool on `driver`. Create it before the server, so that the handler can own
/// a clone.
pub fn task_pool(driver: Driver, config: TaskConfig) -> io::Result<Arc<dyn TaskPool>> {
    Ok(match driver {
        Driver::Mio => Arc::new(gale_mio::TaskPool::new(config)?),
        Driver::Tokio => Arc::new(gale_tokio::TaskPool::new(config)?),
        Driver::Smol => Arc::new(gale_smol::TaskPool::new(config)?),
    })
}

/// Implements [`TaskPool`] for a driver's `TaskPool`: every driver has the same inherent
/// methods.
macro_rules! task_pool {
    ($driver:ident) => {
        impl TaskPool for $driver::TaskPool {
            fn submit(&self, work: Work, on_expired: OnExpired) -> Submitted<()> {
                Self::submit(self, work, on_expired)
            }

            fn stats(&self) -> TaskStats {
                Self::stats(self)
            }
        }
    };
}

task_pool!(gale_mio);
task_pool!(gale_tokio);
task_pool!(gale_smol);

/// Implements [`RunningServer`] for a driver's `ServerHandle`: every driver has the same
/// inherent methods (the driver API convention).
macro_rules! running_server {
    ($handle:ident) => {
        impl<H: Handler> RunningServer<Outgoing<H>> for $handle::ServerHandle<H> {
            fn local_addr(&self) -> Option<SocketAddr> {
                Self::local_addr(self)
            }

            fn connection_count(&self) -> usize {
                Self::connection_count(self)
            }

            fn connections(&self) -> Registry<Outgoing<H>> {
                Self::connections(self)
            }

            fn run_after(&self, delay: Duration, f: Box<dyn FnOnce() + Send>) {
                Self::run_after(self, delay, f);
            }

            fn run_every(&self, period: Duration, f: Box<dyn FnMut() + Send>) {
                Self::run_every(self, period, f);
            }

            fn stop(&self) {
                Self::stop(self);
            }

            fn wait(&self) {
                Self::wait(self);
            }
        }
    };
}

running_server!(gale_mio);
running_server!(gale_tokio);
running_server!(gale_smol);

/// Command-line options shared by every example server.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Which gale driver runs the server.
    #[arg(long, value_enum, default_value_t = Driver::Mio)]
    pub driver: Driver,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 1833)]
    pub port: u16,
    /// Event loops (default: available parallelism).
    #[arg(long)]
    pub loops: Option<usize>,
    /// One listener per loop with SO_REUSEPORT instead of one acceptor.
    #[arg(long)]
    pub reuse_port: bool,
    /// How the acceptor spreads connections over loops.
    #[arg(long, value_enum, default_value_t = BalanceArg::RoundRobin)]
    pub balance: BalanceArg,
    /// Serve Prometheus metrics on this address (for example 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Log as JSON lines instead of text (the filter comes from RUST_LOG, default "info").
    #[arg(long)]
    pub log_json: bool,
}

/// [`Balance`] as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BalanceArg {
    /// Each loop in turn.
    RoundRobin,
    /// The loop with the fewest connections.
    LeastConnections,
    /// A hash of the peer's address.
    SourceHash,
}

impl CommonArgs {
    /// Sets up logging (to stderr) and, with `--metrics`, the Prometheus endpoint. Call it
    /// once, before starting the server.
    pub fn init(&self) -> io::Result<()> {
        init(self.log_json, self.metrics)
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// A [`ServerConfig`] with the loop, SO_REUSEPORT and balancing options applied.
    pub fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig::default();
        config
            .set_loops(self.loops)
            .set_reuse_port(self.reuse_port)
            .set_balance(match self.balance {
                BalanceArg::RoundRobin => Balance::RoundRobin,
                BalanceArg::LeastConnections => Balance::LeastConnections,
                BalanceArg::SourceHash => Balance::SourceHash,
            });
        config
    }

    /// Runs `handler` with `config` on the chosen driver and address until Ctrl-C (or
    /// SIGTERM), then stops it gracefully; prints `listening on ADDR` first (see
    /// [`run_until_ctrl_c`]).
    ///
    /// With one loop, on Linux, the server runs on this thread ([`run`]: `gale_X::Server::run`)
    /// and gale-mio and gale-tokio start no other thread (async-io keeps one of its own;
    /// `--metrics` serves metrics from another): the signals are blocked and read from a
    /// signalfd by a timer on the server every 100 ms, instead of by a signal-handling
    /// thread. A single-threaded process spends a few percent less CPU per message on
    /// socket calls.
    pub fn run_until_ctrl_c<H: Handler>(&self, handler: H, config: ServerConfig) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if config.loops() == Some(1) {
            return single_thread::run(self.driver, handler, config, self.addr());
        }
        let server = self.start(handler, config)?;
        run_until_ctrl_c(&*server)
    }

    /// Starts `handler` with `config` on the chosen driver and address.
    pub fn start<H: Handler>(
        &self,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Box<dyn RunningServer<Outgoing<H>>>> {
        start(self.driver, handler, config, self.addr())
    }
}

/// Sets up logging to stderr, as JSON lines (one object per event, its fields at the top
/// level, like logrus' JSON formatter) or as text, with the filter from `RUST_LOG` (default
/// "info"); with `metrics`, serves Prometheus metrics there. Call it once per process,
/// before starting a server.
pub fn init(log_json: bool, metrics: Option<SocketAddr>) -> io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    if log_json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    if let Some(addr) = metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(io::Error::other)?;
        tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    }
    Ok(())
}

/// A one-loop server on the calling thread, stopped by Ctrl-C or SIGTERM without a signal
/// thread.
#[cfg(target_os = "linux")]
mod single_thread {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use gale_core::Handler;
    use gale_core::server::ServerConfig;
    use nix::sys::signal::{SigSet, Signal};

    use crate::Driver;
    use nix::sys::signalfd::{SfdFlags, SignalFd};

    /// Runs until one of the signals `ctrlc` would catch arrives, then stops gracefully.
    pub(super) fn run<H: Handler>(
        driver: Driver,
        handler: H,
        config: ServerConfig,
        addr: SocketAddr,
    ) -> io::Result<()> {
        let mut signals = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            signals.add(signal);
        }
        // Blocked, the signals wait for the signalfd (threads started later inherit the mask).
        signals.thread_block().map_err(io::Error::from)?;
        let signalfd =
            SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(io::Error::from)?;
        super::run(driver, handler, config, addr, |server| {
            match server.local_addr() {
                Some(addr) => println!("listening on {addr}"),
                None => println!("listening"),
            }
            let handle = Arc::clone(&server);
            let mut signalfd = Some(signalfd);
            server.run_every(
                SIGNAL_POLL,
                Box::new(move || {
                    if let Some(fd) = &signalfd
                        && let Ok(Some(_)) = fd.read_signal()
                    {
                        signalfd = None;
                        tracing::info!("stopping");
                        handle.stop();
                    }
                }),
            );
        })
    }

    /// How often the loop looks for a signal.
    const SIGNAL_POLL: Duration = Duration::from_millis(100);
}

/// Prints `listening on ADDR` on stdout, waits for Ctrl-C (or SIGTERM), then stops the
/// server gracefully.
pub fn run_until_ctrl_c<O>(server: &dyn RunningServer<O>) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(io::Error::other)?;
    match server.local_addr() {
        Some(addr) => println!("listening on {addr}"),
        None => println!("listening"),
    }
    let _ = rx.recv();
    tracing::info!("stopping");
    server.stop();
    Ok(())
}
