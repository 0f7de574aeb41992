//! The connection state that handler callbacks may touch (everything but the protocol and the
//! handler itself), and the bookkeeping shared by `Connection` and `Context`.

use std::collections::VecDeque;
use std::time::Instant;

use super::{ConnConfig, Event, PeerAddr};
use crate::buf::{RecvBuf, SendQueue};
use crate::handler::{ConnHandle, SendError, TimerError};
use crate::protocol::{CloseReason, Protocol, ProtocolCx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    New,
    Open,
    Closing(CloseReason),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteSide {
    Open,
    ShutdownRequested,
    Shutdown,
}

/// One entry per connection-level deadline; `poll_timeout` is a min over this table, the
/// user timers and the protocol's deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timer {
    Idle = 0,
    Linger = 1,
}

pub(crate) const TIMER_COUNT: usize = 2;

pub(crate) struct Core<S, O: 'static> {
    pub(crate) state: S,
    pub(crate) recv: RecvBuf,
    pub(crate) send: SendQueue,
    pub(crate) config: ConnConfig,
    pub(crate) peer: PeerAddr,
    pub(crate) handle: Option<ConnHandle<O>>,
    pub(crate) now: Instant,
    pub(crate) phase: Phase,
    pub(crate) write: WriteSide,
    pub(crate) eof: bool,
    pub(crate) above_high: bool,
    pub(crate) writable_pending: bool,
    pub(crate) pending_close: Option<CloseReason>,
    pub(crate) deadlines: [Option<Instant>; TIMER_COUNT],
    pub(crate) user_timers: Vec<(u64, Instant)>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: ConnStats,
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
    pub(crate) fn new(state: S, config: ConnConfig, peer: PeerAddr, now: Instant) -> Self {
        Self {
            state,
            recv: RecvBuf::new(config.read_chunk()),
            send: SendQueue::new(),
            config,
            peer,
            handle: None,
            now,
            phase: Phase::New,
            write: WriteSide::Open,
            eof: false,
            above_high: false,
            writable_pending: false,
            pending_close: None,
            deadlines: [None; TIMER_COUNT],
            user_timers: Vec::new(),
            events: VecDeque::new(),
            stats: ConnStats::default(),
        }
    }

    /// Moves the clock forward (never back: a driver's clock may jitter).
    pub(crate) fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Open)
    }

    pub(crate) fn can_send(&self) -> bool {
        self.is_open() && self.pending_close.is_none() && self.write == WriteSide::Open
    }

    /// Read or write activity: pushes the idle deadline back.
    pub(crate) fn activity(&mut self) {
        if self.is_open() {
            self.deadlines[Timer::Idle as usize] = self.config.idle_timeout().map(|d| self.now + d);
        }
    }

    pub(crate) fn send_message<P: Protocol<Outgoing = O>>(
        &mut self,
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
        let result = protocol.encode(
            &mut ProtocolCx::new(self.now, &mut self.send, &mut close),
            msg,
        );
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
        if self.is_open() && self.pending_close.is_none() {
            self.pending_close = Some(reason);
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
        if let Some(slot) = self.user_timers.iter_mut().find(|(t, _)| *t == timer) {
            slot.1 = at;
            return Ok(());
        }
        let limit = self.config.max_user_timers();
        if self.user_timers.len() >= limit {
            return Err(TimerError::TooMany { limit });
        }
        self.user_timers.push((timer, at));
        Ok(())
    }

    pub(crate) fn cancel_user_timer(&mut self, timer: u64) -> bool {
        let before = self.user_timers.len();
        self.user_timers.retain(|(t, _)| *t != timer);
        self.user_timers.len() != before
    }

    /// Removes and returns the user timer with the earliest deadline at or before `now`.
    pub(crate) fn pop_due_user_timer(&mut self, now: Instant) -> Option<u64> {
        let (i, _) = self
            .user_timers
            .iter()
            .enumerate()
            .filter(|(_, (_, at))| *at <= now)
            .min_by_key(|(_, (_, at))| *at)?;
        Some(self.user_timers.swap_remove(i).0)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let table = self.deadlines.iter().flatten().copied();
        let user = self.user_timers.iter().map(|(_, at)| *at);
        table.chain(user).min()
    }
}
