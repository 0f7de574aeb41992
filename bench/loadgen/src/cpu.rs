//! CPU accounting from `/proc/<pid>/task/*/schedstat` (Linux): time on a CPU and time spent
//! runnable but waiting for one, summed over a process's threads, in nanoseconds.
//!
//! CPU time per message is the figure least disturbed by other load on a shared machine, and
//! run-queue wait shows how much other load there was. Threads that exited during the window
//! are not counted (none do, in the servers measured here).

use std::fs;
use std::io;

/// A snapshot of a process's scheduler counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTimes {
    /// Nanoseconds spent running.
    pub(crate) on_cpu_ns: u64,
    /// Nanoseconds spent runnable, waiting on a run queue.
    pub(crate) wait_ns: u64,
}

impl CpuTimes {
    /// Counters of process `pid` (`None`: this process).
    pub(crate) fn of(pid: Option<u32>) -> io::Result<Self> {
        let dir = match pid {
            Some(p) => format!("/proc/{p}/task"),
            None => "/proc/self/task".to_owned(),
        };
        let mut sum = Self::default();
        for entry in fs::read_dir(dir)? {
            // A thread may exit between listing and reading: skip it.
            let Ok(text) = fs::read_to_string(entry?.path().join("schedstat")) else {
                continue;
            };
            let t = parse(&text)?;
            sum.on_cpu_ns += t.on_cpu_ns;
            sum.wait_ns += t.wait_ns;
        }
        Ok(sum)
    }

    /// The counters accumulated since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(earlier.on_cpu_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
        }
    }
}

/// Parses one `schedstat` line: `<on-cpu ns> <wait ns> <timeslices>`.
fn parse(text: &str) -> io::Result<CpuTimes> {
    let mut it = text.split_ascii_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(on_cpu_ns)), Some(Ok(wait_ns))) => Ok(CpuTimes { on_cpu_ns, wait_ns }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad schedstat: {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuTimes, parse};

    #[test]
    fn parses_schedstat_and_reads_self() {
        let t = parse("169102123 240985089 544\n").expect("valid line");
        assert_eq!((t.on_cpu_ns, t.wait_ns), (169_102_123, 240_985_089));
        assert!(parse("12\n").is_err());
        assert!(parse("x 1 2").is_err());
        let me = CpuTimes::of(None).expect("own schedstat");
        assert!(me.on_cpu_ns > 0);
    }
}
