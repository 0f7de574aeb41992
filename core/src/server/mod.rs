//! What every driver's server shares: the gev-parity [`ServerConfig`], the [`Balance`]
//! strategy that spreads connections over event loops, and the [`Registry`] of live
//! connections used for counting and broadcast.
//!
//! Drivers own sockets and threads; the decisions (which loop gets a connection, whether one
//! more connection is allowed) are made here, once, so all drivers behave the same.

mod balance;
pub mod metric;
mod registry;

pub use balance::{Balance, Balancer};
pub use registry::{Directory, Registry};

use std::time::Duration;

use crate::ConnConfig;

/// Server options shared by gale-mio, gale-tokio and gale-smol (gev's `Option`s).
///
/// ```
/// use std::time::Duration;
/// use gale_core::server::{Balance, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config
///     .set_loops(Some(4))
///     .set_balance(Balance::LeastConnections)
///     .set_max_connections(Some(10_000));
/// config.conn_mut().set_idle_timeout(Some(Duration::from_secs(60)));
/// assert_eq!(config.max_connections(), Some(10_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    loops: Option<usize>,
    reuse_port: bool,
    balance: Balance,
    max_connections: Option<usize>,
    stop_timeout: Duration,
    backlog: u32,
    conn: ConnConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            loops: None,
            reuse_port: false,
            balance: Balance::RoundRobin,
            max_connections: None,
            stop_timeout: Duration::from_secs(5),
            backlog: 1024,
            conn: ConnConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Number of event loops (threads or worker tasks); `None` means the machine's available
    /// parallelism, resolved by the driver.
    pub fn loops(&self) -> Option<usize> {
        self.loops
    }

    /// Sets [`loops`](Self::loops). Default `None`; `Some(0)` is treated as `Some(1)`.
    pub fn set_loops(&mut self, loops: Option<usize>) -> &mut Self {
        self.loops = loops.map(|n| n.max(1));
        self
    }

    /// Whether each loop gets its own listener with `SO_REUSEPORT` (the kernel spreads
    /// connections) instead of one acceptor feeding the loops.
    pub fn reuse_port(&self) -> bool {
        self.reuse_port
    }

    /// Sets [`reuse_port`](Self::reuse_port). Default `false`.
    pub fn set_reuse_port(&mut self, on: bool) -> &mut Self {
        self.reuse_port = on;
        self
    }

    /// How accepted connections are spread over loops.
    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// Sets [`balance`](Self::balance). Default [`Balance::RoundRobin`].
    pub fn set_balance(&mut self, balance: Balance) -> &mut Self {
        self.balance = balance;
        self
    }

    /// Most connections open at once; a connection accepted beyond it is closed at once
    /// without reaching the handler (gev's `MaxConnections`).
    pub fn max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// Sets [`max_connections`](Self::max_connections). Default `None` (unlimited).
    pub fn set_max_connections(&mut self, max: Option<usize>) -> &mut Self {
        self.max_connections = max;
        self
    }

    /// How long a graceful stop may take to flush and close connections before the rest are
    /// dropped.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    /// Sets [`stop_timeout`](Self::stop_timeout). Default 5 s.
    pub fn set_stop_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.stop_timeout = timeout;
        self
    }

    /// The listen backlog.
    pub fn backlog(&self) -> u32 {
        self.backlog
    }

    /// Sets [`backlog`](Self::backlog). Default 1024.
    pub fn set_backlog(&mut self, backlog: u32) -> &mut Self {
        self.backlog = backlog.max(1);
        self
    }

    /// Per-connection limits and timeouts.
    pub fn conn(&self) -> &ConnConfig {
        &self.conn
    }

    /// Per-connection limits and timeouts, to change.
    pub fn conn_mut(&mut self) -> &mut ConnConfig {
        &mut self.conn
    }

    /// Replaces the per-connection configuration.
    pub fn set_conn(&mut self, conn: ConnConfig) -> &mut Self {
        self.conn = conn;
        self
    }

    /// Whether one more connection may be admitted while `open` are open.
    pub fn admits(&self, open: usize) -> bool {
        self.max_connections.is_none_or(|max| open < max)
    }
}
