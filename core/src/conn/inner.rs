//! The connection state that handler callbacks may touch (everything but the protocol and the
//! handler itself), and the bookkeeping shared by `Connection` and `Context`.

use std::sync::Arc;
use std::time::Instant;

use super::{ConnConfig, PeerAddr};
use crate::buf::{RecvBuf, SendQueue};
use crate::handler::{ConnHandle, SendError, TimerError};
use crate::protocol::{CloseReason, Protocol, ProtocolCx};

/// Where the connection is in its life. The close reason lives in [`Core::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    New,
    Open,
    Closing,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteSide {
    Open,
    ShutdownRequested,
    Shutdown,
}

/// The state of one connection that handler callbacks may touch.
///
/// Kept small: an idle connection's footprint is this struct and nothing on the heap.
/// State that only some connections need (user timers, a close reason) lives in [`Cold`],
/// boxed and absent until used; the one deadline slot is the idle deadline while open and
/// the close linger deadline while closing. The time is not stored: every input brings it.
pub(crate) struct Core<S, O: 'static> {
    pub(crate) state: S,
    pub(crate) recv: RecvBuf,
    pub(crate) send: SendQueue,
    pub(crate) config: Arc<ConnConfig>,
    pub(crate) peer: PeerAddr,
    pub(crate) handle: Option<ConnHandle<O>>,
    /// `Open`: the idle deadline; `Closing`: the close linger deadline.
    pub(crate) deadline: Option<Instant>,
    pub(crate) stats: ConnStats,
    pub(crate) cold: Option<Box<Cold>>,
    pub(crate) phase: Phase,
    pub(crate) write: WriteSide,
    pub(crate) eof: bool,
    pub(crate) above_high: bool,
    pub(crate) writable_pending: bool,
    /// `Event::ShutdownWrite` waits to be polled.
    pub(crate) shutdown_event: bool,
    /// `Event::Closed` waits to be polled (with the reason in `cold`); always the last event.
    pub(crate) closed_event: bool,
}

/// What few connections need; allocated on first use and freed when empty.
#[derive(Debug, Default)]
pub(crate) struct Cold {
    /// `New`/`Open`: a close requested by a callback, applied by `settle` (the first reason
    /// wins); `Closing`: why it is closing; `Closed`: the reason until `Event::Closed` is
    /// polled.
    pub(crate) reason: Option<CloseReason>,
    pub(crate) user_timers: Vec<(u64, Instant)>,
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes read from the peer.
    pub bytes_read: u64,
    /// Bytes written to the peer.
    pub bytes_written: u64,
    /// Messages decoded and handed to the handler.
    pub messages_in: u64,
    /// Messages the handler queued.
    pub messages_out: u64,
}

impl<S, O: 'static> Core<S, O> {
    pub(crate) fn new(state: S, config: Arc<ConnConfig>, peer: PeerAddr) -> Self {
        Self {
            state,
            recv: RecvBuf::new(config.read_chunk()),
            send: SendQueue::new(),
            config,
            peer,
            handle: None,
            deadline: None,
            stats: ConnStats::default(),
            cold: None,
            phase: Phase::New,
            write: WriteSide::Open,
            eof: false,
            above_high: false,
            writable_pending: false,
            shutdown_event: false,
            closed_event: false,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Open)
    }

    /// Whether a close reason is recorded (see [`Cold::reason`]).
    pub(crate) fn has_reason(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.reason.is_some())
    }

    /// Takes the close reason (`Closing`: why; `Closed`: for the event). Falls back to
    /// `Local`, which cannot happen while the phase invariants hold.
    pub(crate) fn take_reason(&mut self) -> CloseReason {
        let reason = self.cold.as_mut().and_then(|c| c.reason.take());
        self.free_cold_if_empty();
        reason.unwrap_or(CloseReason::Local)
    }

    /// A callback asked to close and `settle` has not applied it yet.
    pub(crate) fn close_pending(&self) -> bool {
        self.is_open() && self.has_reason()
    }

    pub(crate) fn can_send(&self) -> bool {
        self.is_open() && !self.has_reason() && self.write == WriteSide::Open
    }

    /// Read or write activity: pushes the idle deadline back.
    pub(crate) fn activity(&mut self, now: Instant) {
        if self.is_open() {
            self.deadline = self.config.idle_timeout().map(|d| now + d);
        }
    }

    pub(crate) fn send_message<P: Protocol<Outgoing = O>>(
        &mut self,
        now: Instant,
        protocol: &mut P,
        msg: O,
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        let limit = self.config.max_send_buffer();
        if self.send.len() >= limit {
            return Err(SendError::BufferFull {
                queued: self.send.len(),
                limit,
            });
        }
        let mut close = false;
        let result = protocol.encode(&mut ProtocolCx::new(now, &mut self.send, &mut close), msg);
        if close {
            self.request_close(CloseReason::Local);
        }
        result.map_err(SendError::Encode)?;
        self.stats.messages_out += 1;
        self.check_high_watermark();
        Ok(())
    }

    pub(crate) fn check_high_watermark(&mut self) {
        if self.send.len() > self.config.high_watermark() {
            self.above_high = true;
        }
    }

    /// Records a close request; the connection applies it after the current callback.
    /// The first reason wins.
    pub(crate) fn request_close(&mut self, reason: CloseReason) {
        if self.is_open() && !self.has_reason() {
            self.cold.get_or_insert_default().reason = Some(reason);
        }
    }

    pub(crate) fn request_shutdown_write(&mut self) {
        if self.write == WriteSide::Open {
            self.write = WriteSide::ShutdownRequested;
        }
    }

    pub(crate) fn set_user_timer(&mut self, timer: u64, at: Instant) -> Result<(), TimerError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(TimerError::Closed);
        }
        if let Some(slot) = self.user_timers_mut().find(|(t, _)| *t == timer) {
            slot.1 = at;
            return Ok(());
        }
        let limit = self.config.max_user_timers();
        if self.cold.as_ref().map_or(0, |c| c.user_timers.len()) >= limit {
            return Err(TimerError::TooMany { limit });
        }
        self.cold
            .get_or_insert_default()
            .user_timers
            .push((timer, at));
        Ok(())
    }

    pub(crate) fn cancel_user_timer(&mut self, timer: u64) -> bool {
        let Some(cold) = self.cold.as_mut() else {
            return false;
        };
        let before = cold.user_timers.len();
        cold.user_timers.retain(|(t, _)| *t != timer);
        let cancelled = cold.user_timers.len() != before;
        self.free_cold_if_empty();
        cancelled
    }

    /// Removes and returns the user timer with the earliest deadline at or before `now`.
    pub(crate) fn pop_due_user_timer(&mut self, now: Instant) -> Option<u64> {
        let timers = &mut self.cold.as_mut()?.user_timers;
        let (i, _) = timers
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(_, (_, at))| *at)?;
        let timer = timers.swap_remove(i).0;
        self.free_cold_if_empty();
        Some(timer)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let user = self
            .cold
            .iter()
            .flat_map(|c| c.user_timers.iter().map(|(_, at)| *at));
        self.deadline.into_iter().chain(user).min()
    }

    fn user_timers_mut(&mut self) -> impl Iterator<Item = &mut (u64, Instant)> {
        self.cold.iter_mut().flat_map(|c| c.user_timers.iter_mut())
    }

    fn free_cold_if_empty(&mut self) {
        if self
            .cold
            .as_ref()
            .is_some_and(|c| c.reason.is_none() && c.user_timers.is_empty())
        {
            self.cold = None;
        }
    }
}
