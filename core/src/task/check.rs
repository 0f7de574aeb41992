//! A model-checking harness for [`TaskQueue`], shared by the quickcheck properties and the fuzz
//! helper. It drives a queue through a [`Scenario`] of operations on a virtual clock, follows
//! the drain rule, mirrors every task in a model, and checks the invariants after each step:
//!
//! - never more than `max_running` tasks hold a slot, never more than `max_waiting` wait;
//! - no slot is idle while a task waits, and a task starts at once only if nobody waits;
//! - waiters start in FIFO order and never at or after their deadline;
//! - no waiter expires before its deadline, and after any input that takes `now` no waiter past
//!   its deadline is left;
//! - a refusal happens only when every slot is busy and the line is full;
//! - every submitted task ends exactly once (done, failed, expired, refused or cancelled),
//!   with its own payload, and the counters in [`TaskStats`] agree with the model;
//! - `poll_timeout` is the earliest waiter deadline, `oldest_waiting_since` the front waiter's
//!   submission time; misuse is a typed error that changes nothing.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::{
    Outcome, Submitted, TaskConfig, TaskError, TaskEvent, TaskId, TaskQueue, TaskState, TaskStats,
};

/// Replays `data` as a task queue scenario and checks every invariant after every step.
///
/// For the cargo-fuzz target; asserts invariants, panics only on a bug. The first three bytes
/// pick `max_running` (1-4), `max_waiting` (0-6) and the wait timeout (0-40 ms); then each
/// operation is one byte (`byte % 8`: submit, submit with deadline, done, fail, advance the
/// clock, timeout, cancel, misuse) followed by one argument byte for all but submit and timeout.
#[cfg(feature = "fuzzing")]
pub fn fuzz_task_queue(data: &[u8], origin: Instant) {
    if let Err(bug) = Scenario::decode(data).run(origin) {
        panic!("task queue invariant broken: {bug}");
    }
}

/// A queue configuration plus the operations to apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scenario {
    max_running: u8,
    max_waiting: u8,
    wait_timeout_ms: u8,
    ops: Vec<Op>,
}

/// One step of a scenario. Arguments pick a task among the candidates (modulo their count) or
/// give milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `submit` with the configured timeout.
    Submit,
    /// `submit_with_deadline` at `now + arg ms - 20 ms` (so sometimes in the past).
    SubmitWithDeadline(u8),
    /// Report a running task done.
    Done(u8),
    /// Report a running task failed.
    Fail(u8),
    /// Move the clock forward by `arg` ms, without telling the queue.
    Advance(u8),
    /// `handle_timeout(now)`.
    Timeout,
    /// Cancel a waiter (or, if none waits, try a running or unknown id).
    Cancel(u8),
    /// Report an id that is waiting, already ended, or never issued.
    Misuse(u8),
}

impl Scenario {
    /// Reads a scenario from fuzzer bytes; any input is valid.
    pub(super) fn decode(data: &[u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let mut ops = Vec::new();
        let mut rest = data.get(3..).unwrap_or_default().iter().copied();
        while let Some(code) = rest.next() {
            let mut arg = || rest.next().unwrap_or(0);
            ops.push(match code % 8 {
                0 => Op::Submit,
                1 => Op::SubmitWithDeadline(arg()),
                2 => Op::Done(arg()),
                3 => Op::Fail(arg()),
                4 => Op::Advance(arg()),
                5 => Op::Timeout,
                6 => Op::Cancel(arg()),
                _ => Op::Misuse(arg()),
            });
        }
        Self {
            max_running: 1 + byte(0) % 4,
            max_waiting: byte(1) % 7,
            wait_timeout_ms: byte(2) % 41,
            ops,
        }
    }

    /// Runs the scenario, then drains the queue (completing every task, expiring every waiter)
    /// and checks that each task ended exactly once.
    pub(super) fn run(&self, origin: Instant) -> Result<(), String> {
        let mut harness = Harness::new(self, origin);
        for (step, op) in self.ops.iter().enumerate() {
            harness
                .apply(*op)
                .map_err(|bug| format!("step {step} ({op:?}): {bug}"))?;
        }
        harness.finish().map_err(|bug| format!("finish: {bug}"))
    }
}

/// Where a task is in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Refused,
    Waiting,
    /// Started at submission; its Run is due.
    Starting,
    Running,
    Done,
    Failed,
    Expired,
    Cancelled,
}

#[derive(Debug)]
struct ModelWaiter {
    id: TaskId,
    since: Instant,
    deadline: Option<Instant>,
}

struct Harness {
    queue: TaskQueue<usize>,
    t0: Instant,
    now: Instant,
    max_running: usize,
    max_waiting: usize,
    wait_timeout: Duration,
    /// Fate of each task, indexed by its payload (the submission number).
    fates: Vec<Fate>,
    payload_of: HashMap<TaskId, usize>,
    line: VecDeque<ModelWaiter>,
    /// Tasks holding a slot whose Run was polled, oldest first.
    slots: Vec<TaskId>,
    /// Ids that ended, for misuse checks.
    ended: Vec<TaskId>,
    counts: TaskStats,
}

/// Fails the current step with a message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Harness {
    fn new(scenario: &Scenario, t0: Instant) -> Self {
        let max_running = usize::from(scenario.max_running.max(1));
        let max_waiting = usize::from(scenario.max_waiting);
        let wait_timeout = Duration::from_millis(u64::from(scenario.wait_timeout_ms));
        let mut config = TaskConfig::default();
        config
            .max_running(NonZeroUsize::new(max_running).unwrap_or(NonZeroUsize::MIN))
            .max_waiting(max_waiting)
            .wait_timeout(wait_timeout);
        Self {
            queue: TaskQueue::new(config),
            t0,
            now: t0,
            max_running,
            max_waiting,
            wait_timeout,
            fates: Vec::new(),
            payload_of: HashMap::new(),
            line: VecDeque::new(),
            slots: Vec::new(),
            ended: Vec::new(),
            counts: TaskStats::default(),
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), String> {
        let took_now = match op {
            Op::Submit => {
                self.submit(None)?;
                true
            }
            Op::SubmitWithDeadline(ms) => {
                let offset = (self.now - self.t0) + Duration::from_millis(u64::from(ms));
                let deadline = self.t0 + offset.saturating_sub(Duration::from_millis(20));
                self.submit(Some(deadline))?;
                true
            }
            Op::Done(pick) => self.done(pick, Outcome::Done)?,
            Op::Fail(pick) => self.done(pick, Outcome::Failed)?,
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms));
                false
            }
            Op::Timeout => {
                self.queue.handle_timeout(self.now);
                self.drain()?;
                true
            }
            Op::Cancel(pick) => {
                self.cancel(pick)?;
                false
            }
            Op::Misuse(pick) => {
                self.misuse(pick)?;
                false
            }
        };
        self.check(took_now)
    }

    fn submit(&mut self, deadline: Option<Instant>) -> Result<(), String> {
        let payload = self.fates.len();
        self.counts.submitted += 1;
        let submitted = match deadline {
            None => self.queue.submit(payload, self.now),
            Some(deadline) => self.queue.submit_with_deadline(payload, deadline, self.now),
        };
        let mut refused = false;
        match submitted {
            Submitted::Started(id) => {
                self.new_id(id, payload, Fate::Starting)?;
            }
            Submitted::Waiting { id, deadline: got } => {
                let want = deadline.or_else(|| self.now.checked_add(self.wait_timeout));
                ensure!(got == want, "{id} waits until {got:?}, expected {want:?}");
                self.new_id(id, payload, Fate::Waiting)?;
                let since = self.now;
                self.line.push_back(ModelWaiter {
                    id,
                    since,
                    deadline: got,
                });
            }
            Submitted::Refused(task) => {
                ensure!(task == payload, "refusal handed back {task}, not {payload}");
                self.fates.push(Fate::Refused);
                self.counts.refused += 1;
                refused = true;
            }
        }
        self.drain()?;
        if refused {
            ensure!(
                self.slots.len() == self.max_running && self.line.len() == self.max_waiting,
                "refused with {} running and {} waiting",
                self.slots.len(),
                self.line.len()
            );
        }
        if let Some(Fate::Starting) = self.fates.last() {
            return Err(format!("task {payload} started but no Run event came"));
        }
        Ok(())
    }

    fn new_id(&mut self, id: TaskId, payload: usize, fate: Fate) -> Result<(), String> {
        ensure!(
            self.payload_of.insert(id, payload).is_none(),
            "{id} was issued twice"
        );
        self.fates.push(fate);
        Ok(())
    }

    /// Reports a running task, or an unknown id if nothing runs. Returns whether the queue
    /// took the input (and so the current time).
    fn done(&mut self, pick: u8, outcome: Outcome) -> Result<bool, String> {
        if self.slots.is_empty() {
            self.misuse(pick)?;
            return Ok(false);
        }
        let id = self.slots.remove(usize::from(pick) % self.slots.len());
        let result = self.queue.handle_task_done(id, outcome, self.now);
        ensure!(result.is_ok(), "reporting running {id}: {result:?}");
        let fate = match outcome {
            Outcome::Done => {
                self.counts.done += 1;
                Fate::Done
            }
            _ => {
                self.counts.failed += 1;
                Fate::Failed
            }
        };
        self.end(id, Fate::Running, fate)?;
        self.drain()?;
        Ok(true)
    }

    fn cancel(&mut self, pick: u8) -> Result<(), String> {
        if self.line.is_empty() {
            return self.misuse(pick);
        }
        let waiter = self
            .line
            .remove(usize::from(pick) % self.line.len())
            .ok_or("invariant: index is in range")?;
        let result = self.queue.cancel(waiter.id);
        let want = self.payload_of.get(&waiter.id).copied();
        ensure!(
            result.ok() == want,
            "cancel({}) gave back {result:?}, expected {want:?}",
            waiter.id
        );
        self.counts.cancelled += 1;
        self.end(waiter.id, Fate::Waiting, Fate::Cancelled)
    }

    /// Misreports an id and checks the typed error and that nothing changed.
    fn misuse(&mut self, pick: u8) -> Result<(), String> {
        let before = self.queue.stats();
        let pick = usize::from(pick);
        match pick % 4 {
            0 if !self.line.is_empty() => {
                let id = self.line[pick % self.line.len()].id;
                let got = self.queue.handle_task_done(id, Outcome::Done, self.now);
                let state = TaskState::Waiting;
                ensure!(
                    got == Err(TaskError::NotRunning { id, state }),
                    "done({id}) on a waiter: {got:?}"
                );
            }
            1 if !self.slots.is_empty() => {
                let id = self.slots[pick % self.slots.len()];
                let got = self.queue.cancel(id).map(|_| ());
                let state = TaskState::Running;
                ensure!(
                    got == Err(TaskError::NotWaiting { id, state }),
                    "cancel({id}) on a running task: {got:?}"
                );
            }
            2 if !self.ended.is_empty() => {
                let id = self.ended[pick % self.ended.len()];
                let got = self.queue.handle_task_done(id, Outcome::Failed, self.now);
                ensure!(
                    got == Err(TaskError::Unknown(id)),
                    "done({id}) twice: {got:?}"
                );
                let got = self.queue.cancel(id).map(|_| ());
                ensure!(
                    got == Err(TaskError::Unknown(id)),
                    "cancel({id}) after end: {got:?}"
                );
            }
            _ => {
                let id = TaskId(u64::MAX - pick as u64);
                let got = self.queue.handle_task_done(id, Outcome::Done, self.now);
                ensure!(
                    got == Err(TaskError::Unknown(id)),
                    "done({id}) never issued: {got:?}"
                );
            }
        }
        ensure!(self.queue.stats() == before, "a misuse changed the stats");
        let event = self.queue.poll_event();
        ensure!(event.is_none(), "a misuse produced {event:?}");
        Ok(())
    }

    /// Polls every event and applies it to the model, checking order and deadlines.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(event) = self.queue.poll_event() {
            match event {
                TaskEvent::Run { id, task } => self.on_run(id, task)?,
                TaskEvent::Expired { id, task } => self.on_expired(id, task)?,
            }
        }
        Ok(())
    }

    fn on_run(&mut self, id: TaskId, task: usize) -> Result<(), String> {
        let fate = self.fate(id, task)?;
        ensure!(
            self.slots.len() < self.max_running,
            "{id} starts with {} of {} slots busy",
            self.slots.len(),
            self.max_running
        );
        match fate {
            Fate::Starting => ensure!(
                self.line.is_empty(),
                "{id} started at once, jumping {} waiters",
                self.line.len()
            ),
            Fate::Waiting => {
                let front = self
                    .line
                    .pop_front()
                    .ok_or_else(|| format!("{id} waits nowhere"))?;
                ensure!(front.id == id, "{id} started before the older {}", front.id);
                ensure!(
                    front.deadline.is_none_or(|deadline| self.now < deadline),
                    "{id} started at or after its deadline"
                );
            }
            other => return Err(format!("{id} runs, but it is {other:?}")),
        }
        self.fates[task] = Fate::Running;
        self.slots.push(id);
        Ok(())
    }

    fn on_expired(&mut self, id: TaskId, task: usize) -> Result<(), String> {
        self.end(id, Fate::Waiting, Fate::Expired)?;
        let at = self
            .line
            .iter()
            .position(|waiter| waiter.id == id)
            .ok_or_else(|| format!("expired {id} is not in the model's line"))?;
        let waiter = self.line.remove(at).ok_or("invariant: index is in range")?;
        ensure!(
            waiter.deadline.is_some_and(|deadline| deadline <= self.now),
            "{id} expired before its deadline {:?}",
            waiter.deadline.map(|deadline| deadline - self.t0)
        );
        ensure!(
            self.payload_of.get(&id) == Some(&task),
            "{id} expired with a wrong task"
        );
        self.counts.expired += 1;
        Ok(())
    }

    /// Moves a task from `from` to the terminal `to`, so that a second end is caught.
    fn end(&mut self, id: TaskId, from: Fate, to: Fate) -> Result<(), String> {
        let task = *self
            .payload_of
            .get(&id)
            .ok_or_else(|| format!("{id} unknown"))?;
        let fate = self.fate(id, task)?;
        ensure!(fate == from, "{id} ends as {to:?} but it is {fate:?}");
        self.fates[task] = to;
        self.ended.push(id);
        Ok(())
    }

    fn fate(&self, id: TaskId, task: usize) -> Result<Fate, String> {
        ensure!(
            self.payload_of.get(&id) == Some(&task),
            "{id} carries task {task}"
        );
        self.fates
            .get(task)
            .copied()
            .ok_or_else(|| format!("no task {task}"))
    }

    fn check(&self, took_now: bool) -> Result<(), String> {
        let stats = self.queue.stats();
        ensure!(
            stats.running <= self.max_running,
            "{} running",
            stats.running
        );
        ensure!(
            stats.waiting <= self.max_waiting,
            "{} waiting",
            stats.waiting
        );
        ensure!(
            stats.running == self.slots.len() && stats.waiting == self.line.len(),
            "queue has {}/{} running/waiting, model {}/{}",
            stats.running,
            stats.waiting,
            self.slots.len(),
            self.line.len()
        );
        ensure!(
            self.line.is_empty() || self.slots.len() == self.max_running,
            "a slot is idle while {} wait",
            self.line.len()
        );
        let expected = TaskStats {
            running: stats.running,
            waiting: stats.waiting,
            ..self.counts
        };
        ensure!(stats == expected, "stats {stats:?}, model {expected:?}");
        let ended = stats.done + stats.failed + stats.expired + stats.refused + stats.cancelled;
        ensure!(
            stats.submitted == ended + (stats.running + stats.waiting) as u64,
            "stats do not add up: {stats:?}"
        );
        if took_now {
            let overdue = self
                .line
                .iter()
                .find(|w| w.deadline.is_some_and(|d| d <= self.now));
            ensure!(overdue.is_none(), "{overdue:?} is past its deadline");
        }
        let earliest = self.line.iter().filter_map(|w| w.deadline).min();
        ensure!(
            self.queue.poll_timeout() == earliest,
            "poll_timeout is not {earliest:?}"
        );
        let oldest = self.line.front().map(|w| w.since);
        let got = self.queue.oldest_waiting_since();
        ensure!(
            got == oldest,
            "oldest_waiting_since {got:?}, model {oldest:?}"
        );
        for waiter in &self.line {
            let state = self.queue.state(waiter.id);
            ensure!(
                state == Some(TaskState::Waiting),
                "{} is {state:?}",
                waiter.id
            );
        }
        for &id in &self.slots {
            let state = self.queue.state(id);
            ensure!(state == Some(TaskState::Running), "{id} is {state:?}");
        }
        Ok(())
    }

    /// Completes every running task and expires every waiter, then checks that each task
    /// ended exactly once.
    fn finish(mut self) -> Result<(), String> {
        // Each round ends a task, so this many rounds are always enough.
        for _ in 0..=self.fates.len() {
            if !self.slots.is_empty() {
                self.done(0, Outcome::Done)?;
            } else if !self.line.is_empty() {
                self.now += Duration::from_secs(3600);
                self.queue.handle_timeout(self.now);
                self.drain()?;
            } else {
                break;
            }
            self.check(true)?;
        }
        ensure!(self.queue.is_idle(), "the queue is not idle at the end");
        let stuck = self
            .fates
            .iter()
            .position(|fate| matches!(fate, Fate::Waiting | Fate::Starting | Fate::Running));
        ensure!(stuck.is_none(), "task {stuck:?} never ended");
        ensure!(
            self.ended.len() + self.counts.refused as usize == self.fates.len(),
            "{} ended + {} refused != {} submitted",
            self.ended.len(),
            self.counts.refused,
            self.fates.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

    impl Arbitrary for Op {
        fn arbitrary(g: &mut Gen) -> Self {
            let arg = u8::arbitrary(g);
            match u8::arbitrary(g) % 12 {
                0..=2 => Self::Submit,
                3 => Self::SubmitWithDeadline(arg % 64),
                4 | 5 => Self::Done(arg),
                6 => Self::Fail(arg),
                7 | 8 => Self::Advance(arg % 16),
                9 => Self::Timeout,
                10 => Self::Cancel(arg),
                _ => Self::Misuse(arg),
            }
        }
    }

    impl Arbitrary for Scenario {
        fn arbitrary(g: &mut Gen) -> Self {
            Self {
                max_running: 1 + u8::arbitrary(g) % 4,
                max_waiting: u8::arbitrary(g) % 7,
                wait_timeout_ms: u8::arbitrary(g) % 41,
                ops: Vec::arbitrary(g),
            }
        }

        fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
            let base = self.clone();
            Box::new(self.ops.shrink().map(move |ops| Self {
                ops,
                ..base.clone()
            }))
        }
    }

    fn scenario_holds(scenario: Scenario) -> TestResult {
        match scenario.run(crate::t0()) {
            Ok(()) => TestResult::passed(),
            Err(bug) => TestResult::error(bug),
        }
    }

    fn bytes_hold(data: Vec<u8>) -> TestResult {
        scenario_holds(Scenario::decode(&data))
    }

    #[test]
    fn random_operation_sequences_keep_every_invariant() {
        QuickCheck::new()
            .tests(2000)
            .rng(Gen::new(200))
            .quickcheck(scenario_holds as fn(Scenario) -> TestResult);
    }

    #[test]
    fn random_fuzzer_bytes_keep_every_invariant() {
        QuickCheck::new()
            .tests(500)
            .rng(Gen::new(300))
            .quickcheck(bytes_hold as fn(Vec<u8>) -> TestResult);
    }

    #[test]
    fn the_harness_notices_a_queue_that_disagrees_with_the_model() {
        // Report a task behind the harness's back: the Run of the next waiter then seems to
        // take a busy slot, which the checks must reject.
        let scenario = Scenario {
            max_running: 1,
            max_waiting: 2,
            wait_timeout_ms: 40,
            ops: vec![Op::Submit, Op::Submit],
        };
        let mut harness = Harness::new(&scenario, crate::t0());
        for op in &scenario.ops {
            harness.apply(*op).expect("a correct queue passes");
        }
        let id = harness.slots[0];
        harness
            .queue
            .handle_task_done(id, Outcome::Done, harness.now)
            .expect("running");
        assert!(harness.drain().is_err(), "the model still thinks {id} runs");
    }

    #[test]
    fn decode_reads_config_then_ops() {
        let scenario = Scenario::decode(&[5, 9, 45, 0, 1, 30, 4, 7, 5, 2]);
        assert_eq!(
            scenario,
            Scenario {
                max_running: 2,
                max_waiting: 2,
                wait_timeout_ms: 4,
                ops: vec![
                    Op::Submit,
                    Op::SubmitWithDeadline(30),
                    Op::Advance(7),
                    Op::Timeout,
                    Op::Done(0),
                ],
            }
        );
        assert_eq!(Scenario::decode(&[]).ops, []);
    }

    #[test]
    fn fuzz_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/task_queue");
        let entries = std::fs::read_dir(dir).expect("the corpus ships with the repository");
        let mut seeds = 0;
        for entry in entries {
            let path = entry.expect("readable corpus dir").path();
            let data = std::fs::read(&path).expect("readable seed");
            if let Err(bug) = Scenario::decode(&data).run(crate::t0()) {
                panic!("{}: {bug}", path.display());
            }
            seeds += 1;
        }
        assert!(seeds >= 3, "only {seeds} seeds in {dir}");
    }
}
