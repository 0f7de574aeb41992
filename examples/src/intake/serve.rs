//! Running the intake server: `async-server`'s command line ([`IntakeArgs`], GSEAsyncServer's
//! flags and gale's), [`serve`] (used by the example's `main` and by the end-to-end tests)
//! and [`run`] (serve until Ctrl-C or SIGTERM, then stop gracefully).
//!
//! ```text
//!   serve(args)
//!     ├─ tokio runtime (sqlx, workers, timers)
//!     ├─ SqlStore::open(--database-url)           journal: SQLite file, MySQL, PostgreSQL
//!     ├─ action: --config-file-path → TableAction on GSE's MySQL table
//!     │          otherwise          → TableAction on --table in the journal's database
//!     │          --action demo      → DemoAction (only --demo-work-ms of waiting)
//!     ├─ Intake::start                            recovers this worker's old claims
//!     └─ IntakeApi on --driver (mio, tokio, smol) listening on --bind-address:--port
//!
//!   RunningIntake::stop: new messages get 503 (the intake stops accepting), running and
//!   waiting ones get --shutdown-grace to finish and are answered; requests still waiting
//!   for a worker after it are answered 503; then the server flushes and closes every
//!   connection. Journaled messages that did not finish are recovered on the next start.
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use gale_core::http::Reply;
use gale_core::server::ServerConfig;

use super::action::{Action, Delayed, DemoAction, TableAction};
use super::api::IntakeApi;
use super::config::{ConfigError, GseConfig};
use super::sql::{SqlStore, SqlStoreConfig, SqliteSync};
use super::store::{RetryPolicy, Store, StoreError};
use super::worker::{Intake, IntakeConfig};
use crate::{Driver, RunningServer};

/// `async-server`'s command line: GSEAsyncServer's flags (`--port`, `--bind-address`,
/// `--config-file-path`, `--work-channel-len`, `--process-max-timeout`), then gale's.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "async-server",
    args_override_self = true,
    about = "gale's GSEAsyncServer: accepts messages over HTTP, journals them, processes them in the background"
)]
#[non_exhaustive]
pub struct IntakeArgs {
    /// The port to listen to for incoming HTTP requests (0: any free port; GSEAsyncServer
    /// defaults to 80).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The IP address on which to serve the --port (0.0.0.0 for all interfaces).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind_address: IpAddr,
    /// GSEAsyncServer's YAML configuration: the MySQL database and table messages are
    /// stored in.
    #[arg(long, value_name = "PATH")]
    pub config_file_path: Option<PathBuf>,
    /// The maximum number of messages processed at once.
    #[arg(long, default_value_t = NonZeroUsize::new(10).expect("invariant: 10 > 0"))]
    pub work_channel_len: NonZeroUsize,
    /// Seconds a request may wait for a free worker before it is answered 503.
    #[arg(long, default_value_t = 30)]
    pub process_max_timeout: u64,
    /// Requests that may wait for a free worker; beyond, 503 at once.
    #[arg(long, default_value_t = 1024)]
    pub max_waiting: usize,
    /// The journal: sqlite://FILE, mysql://USER:PASSWORD@HOST:PORT/DB or
    /// postgres://USER:PASSWORD@HOST:PORT/DB.
    #[arg(long, default_value = "sqlite://gale-intake.db", value_name = "URL")]
    pub database_url: String,
    /// The journal's table.
    #[arg(long, default_value = "intake_messages")]
    pub journal_table: String,
    /// The table the table action stores messages in, in the journal's database (the YAML
    /// configuration's table replaces it).
    #[arg(long, default_value = "messages")]
    pub table: String,
    /// What a worker does with a message.
    #[arg(long, value_enum, default_value_t = ActionArg::Table)]
    pub action: ActionArg,
    /// Simulated work per message, in milliseconds, before the action (GSEAsyncServer's
    /// worker slept a minute).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub demo_work_ms: u64,
    /// With `--action demo`: messages containing this text fail (to watch retries).
    #[arg(long, value_name = "TEXT")]
    pub demo_fail_marker: Option<String>,
    /// Attempts per message before it is failed for good.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// How long a claim on a message lasts without renewal (renewed while it is processed);
    /// another server takes over a crashed one's messages after it.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub lease_ms: u64,
    /// How often idle workers look for retries and expired claims.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub poll_ms: u64,
    /// This server's name in the journal; unique among live servers sharing it, the same
    /// across restarts (default: HOST:PORT).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// SQLite durability: full (fsync every commit: survives power loss) or normal (fsync
    /// at checkpoints: survives a process crash).
    #[arg(long, value_enum, default_value_t = SqliteSyncArg::Full)]
    pub sqlite_synchronous: SqliteSyncArg,
    /// Database connections (default: 4 for SQLite, 8 otherwise).
    #[arg(long)]
    pub db_connections: Option<u32>,
    /// The largest request body accepted (larger: 413).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Seconds a graceful stop waits for accepted messages to finish.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Which gale driver serves HTTP.
    #[arg(long, value_enum, default_value_t = Driver::Mio)]
    pub driver: Driver,
    /// Event loops (default: available parallelism).
    #[arg(long)]
    pub loops: Option<usize>,
    /// Serve Prometheus metrics on this address (for example 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Log format on stderr: JSON lines (like GSEAsyncServer's logrus) or text.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// What a worker does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ActionArg {
    /// Store the message in a table, once per message ([`TableAction`]).
    Table,
    /// Wait `--demo-work-ms` and do nothing else ([`DemoAction`]).
    Demo,
}

/// [`SqliteSync`] as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum SqliteSyncArg {
    /// fsync every commit.
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

impl IntakeArgs {
    /// Parses `args` (the first is the program name), as the example's `main` does with
    /// the process's arguments.
    pub fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        <Self as clap::Parser>::try_parse_from(args)
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.port)
    }

    /// This server's worker id: `--worker-id`, else `HOST:PORT`; with `--port 0`,
    /// `HOST:pid-PID` (a restart gets another id, so the claims of a crashed run are taken
    /// over when their lease expires instead of at once).
    pub fn worker_id(&self) -> String {
        if let Some(id) = &self.worker_id {
            return id.clone();
        }
        let host = hostname();
        if self.port == 0 {
            format!("{host}:pid-{}", std::process::id())
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The YAML configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The journal or the action's database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime or the listener could not start.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A running intake server: HTTP front, intake and journal.
pub struct RunningIntake {
    server: Box<dyn RunningServer<Reply>>,
    intake: Intake,
    store: Arc<SqlStore>,
    runtime: Option<tokio::runtime::Runtime>,
    worker_id: String,
    grace: Duration,
}

/// Opens the journal, builds the action, starts the intake and serves its HTTP API.
///
/// Blocks while connecting to the databases; call it outside any async runtime.
pub fn serve(args: &IntakeArgs) -> Result<RunningIntake, ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("intake")
        .enable_all()
        .build()?;
    let worker_id = args.worker_id();
    let lease = Duration::from_millis(args.lease_ms.max(30));
    let store_config = SqlStoreConfig {
        table: args.journal_table.clone(),
        lease,
        retry: RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            ..RetryPolicy::default()
        },
        sqlite_synchronous: match args.sqlite_synchronous {
            SqliteSyncArg::Full => SqliteSync::Full,
            SqliteSyncArg::Normal => SqliteSync::Normal,
        },
        max_connections: args.db_connections,
    };
    let intake_config = IntakeConfig {
        max_running: args.work_channel_len,
        max_waiting: args.max_waiting,
        wait_timeout: Duration::from_secs(args.process_max_timeout),
        worker_id: worker_id.clone(),
        poll_interval: Duration::from_millis(args.poll_ms.max(1)),
        lease,
        ..IntakeConfig::default()
    };
    let (store, intake) = runtime.block_on(async {
        let store = Arc::new(SqlStore::open(&args.database_url, &store_config).await?);
        let action = action(args, &store).await?;
        let intake = Intake::start(
            runtime.handle().clone(),
            Arc::clone(&store) as Arc<dyn Store>,
            action,
            intake_config,
        )
        .await?;
        Ok::<_, ServeError>((store, intake))
    })?;
    let mut api = IntakeApi::new(intake.clone());
    api.limits_mut().max_body(args.max_body_bytes);
    let mut config = ServerConfig::default();
    config.set_loops(args.loops);
    let server = match crate::start(args.driver, api, config, args.addr()) {
        Ok(server) => server,
        Err(e) => {
            runtime.block_on(intake.shutdown(Duration::ZERO));
            return Err(e.into());
        }
    };
    tracing::info!(
        addr = %server.local_addr().map_or_else(|| args.addr().to_string(), |a| a.to_string()),
        driver = ?args.driver,
        worker = %worker_id,
        journal = %redact(&args.database_url),
        "intake server started"
    );
    Ok(RunningIntake {
        server,
        intake,
        store,
        runtime: Some(runtime),
        worker_id,
        grace: Duration::from_secs(args.shutdown_grace),
    })
}

/// Sets up logging and metrics, serves, prints `listening on ADDR` on stdout, and stops
/// gracefully on Ctrl-C or SIGTERM. What `async-server`'s `main` does.
pub fn run(args: &IntakeArgs) -> Result<(), ServeError> {
    crate::init(args.log_format == LogFormat::Json, args.metrics)?;
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(io::Error::other)?;
    let running = serve(args)?;
    println!("listening on {}", running.local_addr());
    let _ = rx.recv();
    tracing::info!(grace_s = running.grace.as_secs(), "stopping");
    if running.stop() {
        tracing::info!("stopped; every accepted message finished");
    } else {
        tracing::warn!("stopped; unfinished messages will be recovered on the next start");
    }
    Ok(())
}

impl RunningIntake {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .local_addr()
            .expect("invariant: the intake listens on TCP")
    }

    /// This server's worker id in the journal.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The intake.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The journal.
    pub fn store(&self) -> &Arc<SqlStore> {
        &self.store
    }

    /// Open HTTP connections.
    pub fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    /// Stops gracefully within `--shutdown-grace`; see [`stop_within`](Self::stop_within).
    pub fn stop(self) -> bool {
        let grace = self.grace;
        self.stop_within(grace)
    }

    /// Stops gracefully: new messages are refused (503) at once, running and waiting ones
    /// get up to `grace` to finish (their answers are sent), requests still waiting for a
    /// worker after `grace` are answered 503, then every connection is
    /// flushed and closed and the journal is closed. Returns whether every accepted message
    /// finished; those that did not are recovered on the next start (or taken over by
    /// another server when their lease expires).
    pub fn stop_within(mut self, grace: Duration) -> bool {
        let Some(runtime) = self.runtime.take() else {
            return false;
        };
        let finished = runtime.block_on(self.intake.shutdown(grace));
        self.server.stop();
        runtime.block_on(async {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.store.close()).await;
        });
        runtime.shutdown_timeout(CLOSE_TIMEOUT);
        finished
    }

    /// Stops as a crash would, for tests: work in progress is dropped where it stands
    /// (claims stay in the journal until their lease expires or this worker restarts),
    /// answers not yet sent are never sent, connections are closed.
    pub fn abort(mut self) {
        self.abort_now();
    }

    fn abort_now(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
            self.server.stop();
        }
    }
}

impl Drop for RunningIntake {
    fn drop(&mut self) {
        self.abort_now();
    }
}

impl fmt::Debug for RunningIntake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningIntake")
            .field("addr", &self.server.local_addr())
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// The action `args` ask for.
async fn action(args: &IntakeArgs, store: &SqlStore) -> Result<Arc<dyn Action>, ServeError> {
    let work = Duration::from_millis(args.demo_work_ms);
    if args.action == ActionArg::Demo {
        return Ok(Arc::new(DemoAction {
            work,
            fail_marker: args.demo_fail_marker.clone(),
        }));
    }
    let table = match &args.config_file_path {
        Some(path) => {
            let config = GseConfig::load(path)?;
            let task = config
                .task
                .ok_or_else(|| ConfigError::Invalid("task section is required".into()))?;
            TableAction::open(&task.url(), &task.table, task.max_open_conns).await?
        }
        None => TableAction::with_pool(store.pool().clone(), store.dialect(), &args.table).await?,
    };
    Ok(Arc::new(Delayed { work, inner: table }))
}

/// The machine's host name, for worker ids.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A database URL without its password, for logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// How long stopping waits for the journal's connections and the runtime's threads.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gse_flags_and_defaults() {
        let args = IntakeArgs::parse_from_args([
            "async-server",
            "--port",
            "9000",
            "--config-file-path",
            "./Configuration/config.yml",
            "--work-channel-len",
            "4",
            "--process-max-timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(args.addr(), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(args.work_channel_len.get(), 4);
        assert_eq!(args.process_max_timeout, 5);
        assert_eq!(
            args.config_file_path.as_deref(),
            Some(std::path::Path::new("./Configuration/config.yml"))
        );
        assert_eq!(args.database_url, "sqlite://gale-intake.db");
        assert_eq!(args.log_format, LogFormat::Json);
        assert!(args.worker_id().ends_with(":9000"));
        assert!(IntakeArgs::parse_from_args(["async-server", "--work-channel-len", "0"]).is_err());
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("mysql://gale:secret@127.0.0.1:3307/db"),
            "mysql://gale:***@127.0.0.1:3307/db"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
