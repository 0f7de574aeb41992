//! The plain values the task queue takes and hands out: ids, submission results, events,
//! outcomes, states, statistics and errors.

use std::fmt;
use std::time::Instant;

/// Identifies one submitted task for the lifetime of the [`TaskQueue`](super::TaskQueue) that
/// issued it.
///
/// Ids are handed out in submission order and never reused by the same queue, so an older task
/// always has a smaller id. Refused submissions get no id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(super) u64);

impl TaskId {
    /// The id as a number, for logs and metrics labels.
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// What [`TaskQueue::submit`](super::TaskQueue::submit) did with a task.
///
/// Whatever the answer, a task that was not refused reaches the application later through
/// [`TaskQueue::poll_event`](super::TaskQueue::poll_event): as [`TaskEvent::Run`] when it may
/// start, or as [`TaskEvent::Expired`] when its wait deadline passes first.
#[must_use = "a refused task is handed back and must be answered"]
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted<T> {
    /// A slot was free: the task took it at once and its [`TaskEvent::Run`] is ready to poll.
    Started(TaskId),
    /// Every slot is busy: the task waits in line (first in, first out) until a slot frees up
    /// or `deadline` passes, whichever comes first. `None` means it waits without a deadline.
    Waiting {
        /// The id the task carries from now on.
        id: TaskId,
        /// When the task gives up waiting, if ever.
        deadline: Option<Instant>,
    },
    /// Every slot is busy and the waiting line is full: the task is handed back untouched.
    Refused(T),
}

impl<T> Submitted<T> {
    /// The id the task got, or `None` if it was refused.
    #[must_use]
    pub const fn id(&self) -> Option<TaskId> {
        match self {
            Self::Started(id) | Self::Waiting { id, .. } => Some(*id),
            Self::Refused(_) => None,
        }
    }

    /// Whether the task was refused (handed back).
    #[must_use]
    pub const fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Something the driver must act on, from [`TaskQueue::poll_event`](super::TaskQueue::poll_event).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent<T> {
    /// Start this task now (spawn it, hand it to a worker) and report its end with
    /// [`TaskQueue::handle_task_done`](super::TaskQueue::handle_task_done).
    Run {
        /// The task's id, to report back with.
        id: TaskId,
        /// The task itself; the queue keeps no copy.
        task: T,
    },
    /// This task waited past its deadline and will never run: answer "timeout".
    Expired {
        /// The task's id.
        id: TaskId,
        /// The task, handed back.
        task: T,
    },
}

/// How a task that ran came to its end, for [`TaskQueue::handle_task_done`](super::TaskQueue::handle_task_done).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The task did its work.
    Done,
    /// The task ran and failed; it still frees its slot.
    Failed,
}

/// Where a live task is, from [`TaskQueue::state`](super::TaskQueue::state). Ended tasks have no
/// state: the queue forgets them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// In the waiting line.
    Waiting,
    /// Holding a slot, but its [`TaskEvent::Run`] has not been polled yet.
    Starting,
    /// Handed to the driver through [`TaskEvent::Run`]; waits for its report.
    Running,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Waiting => "waiting",
            Self::Starting => "starting (its Run event has not been polled)",
            Self::Running => "running",
        })
    }
}

/// Counters and gauges of a [`TaskQueue`](super::TaskQueue), from
/// [`TaskQueue::stats`](super::TaskQueue::stats).
///
/// Every submission is counted exactly once, so at any time
/// `submitted == refused + running + waiting + done + failed + expired + cancelled`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Tasks holding a slot now (starting or running).
    pub running: usize,
    /// Tasks in the waiting line now.
    pub waiting: usize,
    /// Calls to `submit` and `submit_with_deadline` so far, refused ones included.
    pub submitted: u64,
    /// Tasks that ended with [`Outcome::Done`].
    pub done: u64,
    /// Tasks that ended with [`Outcome::Failed`].
    pub failed: u64,
    /// Waiters that gave up at their deadline ([`TaskEvent::Expired`]).
    pub expired: u64,
    /// Submissions refused because the waiting line was full.
    pub refused: u64,
    /// Waiters taken back with [`TaskQueue::cancel`](super::TaskQueue::cancel).
    pub cancelled: u64,
}

/// Caller misuse of a [`TaskQueue`](super::TaskQueue): an id that does not fit the call. The
/// queue is left unchanged.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The id was never issued by this queue, or its task has already ended.
    #[error("{0} is unknown to this queue or has already ended")]
    Unknown(TaskId),
    /// `handle_task_done` for a task that is not running.
    #[error("{id} is not running: it is {state}")]
    NotRunning {
        /// The id passed in.
        id: TaskId,
        /// Where the task is instead.
        state: TaskState,
    },
    /// `cancel` for a task that is not waiting (it already holds a slot).
    #[error("{id} is not waiting: it is {state}")]
    NotWaiting {
        /// The id passed in.
        id: TaskId,
        /// Where the task is instead.
        state: TaskState,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submitted_accessors() {
        let started: Submitted<&str> = Submitted::Started(TaskId(3));
        assert_eq!(started.id(), Some(TaskId(3)));
        assert!(!started.is_refused());
        let waiting: Submitted<&str> = Submitted::Waiting {
            id: TaskId(4),
            deadline: None,
        };
        assert_eq!(waiting.id(), Some(TaskId(4)));
        let refused = Submitted::Refused("msg");
        assert_eq!(refused.id(), None);
        assert!(refused.is_refused());
    }

    #[test]
    fn error_messages_name_the_task_and_its_state() {
        let e = TaskError::NotRunning {
            id: TaskId(7),
            state: TaskState::Waiting,
        };
        assert_eq!(e.to_string(), "task#7 is not running: it is waiting");
        assert_eq!(
            TaskError::Unknown(TaskId(1)).to_string(),
            "task#1 is unknown to this queue or has already ended"
        );
        assert_eq!(TaskId(9).as_u64(), 9);
    }
}
