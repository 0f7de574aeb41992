//! Limits of a task queue.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Limits of a [`TaskQueue`](super::TaskQueue): how many tasks run at once, how many may wait,
/// and for how long.
///
/// | limit          | default | GSEAsyncServer flag     |
/// |----------------|---------|-------------------------|
/// | `max_running`  | 10      | `--work-channel-len`    |
/// | `max_waiting`  | 1024    | (none: Go's blocked senders were unbounded) |
/// | `wait_timeout` | 30 s    | `--process-max-timeout` |
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use gale_core::task::TaskConfig;
///
/// let mut config = TaskConfig::default();
/// config
///     .max_running(NonZeroUsize::new(4).expect("4 is not zero"))
///     .max_waiting(100)
///     .wait_timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConfig {
    pub(super) max_running: NonZeroUsize,
    pub(super) max_waiting: usize,
    pub(super) wait_timeout: Duration,
}

impl TaskConfig {
    /// Default of [`max_running`](Self::max_running): 10, GSEAsyncServer's `--work-channel-len`.
    pub const DEFAULT_MAX_RUNNING: NonZeroUsize = match NonZeroUsize::new(10) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    };
    /// Default of [`max_waiting`](Self::max_waiting): 1024.
    pub const DEFAULT_MAX_WAITING: usize = 1024;
    /// Default of [`wait_timeout`](Self::wait_timeout): 30 s, GSEAsyncServer's
    /// `--process-max-timeout`.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

    /// How many tasks may hold a slot (run) at once. Default
    /// [`DEFAULT_MAX_RUNNING`](Self::DEFAULT_MAX_RUNNING).
    ///
    /// Zero would refuse or time out every task, so the type rules it out; a count read from a
    /// command line goes through `NonZeroUsize::new`, which is where a zero is reported.
    pub fn max_running(&mut self, n: NonZeroUsize) -> &mut Self {
        self.max_running = n;
        self
    }

    /// How many tasks may wait for a slot. A submission beyond that is refused
    /// ([`Submitted::Refused`](super::Submitted::Refused)) before the queue stores anything.
    /// Zero means no waiting line: a task either starts at once or is refused. Default
    /// [`DEFAULT_MAX_WAITING`](Self::DEFAULT_MAX_WAITING).
    pub fn max_waiting(&mut self, n: usize) -> &mut Self {
        self.max_waiting = n;
        self
    }

    /// How long [`TaskQueue::submit`](super::TaskQueue::submit) lets a task wait for a slot
    /// before it expires. `Duration::ZERO` expires a task that cannot start at once; a duration
    /// too large to add to the submission time (such as `Duration::MAX`) means waiters never
    /// expire. Default [`DEFAULT_WAIT_TIMEOUT`](Self::DEFAULT_WAIT_TIMEOUT).
    pub fn wait_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.wait_timeout = timeout;
        self
    }
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            max_running: Self::DEFAULT_MAX_RUNNING,
            max_waiting: Self::DEFAULT_MAX_WAITING,
            wait_timeout: Self::DEFAULT_WAIT_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_gse_async_server() {
        let config = TaskConfig::default();
        assert_eq!(config.max_running.get(), 10);
        assert_eq!(config.max_waiting, 1024);
        assert_eq!(config.wait_timeout, Duration::from_secs(30));
    }

    #[test]
    fn setters_chain() {
        let mut config = TaskConfig::default();
        config
            .max_running(NonZeroUsize::MIN)
            .max_waiting(0)
            .wait_timeout(Duration::ZERO);
        assert_eq!(config.max_running.get(), 1);
        assert_eq!(config.max_waiting, 0);
        assert_eq!(config.wait_timeout, Duration::ZERO);
    }
}
