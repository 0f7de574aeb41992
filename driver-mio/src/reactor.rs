//! One reactor thread: a `mio::Poll`, a slab of connections, a timer queue keyed by slab
//! key, and the loop's mailbox.
//!
//! Each iteration: poll (timeout = the earliest connection deadline, server timer, stop
//! deadline or accept retry; zero while connections that yielded wait), handle readiness
//! and mailbox messages, serve the connections that yielded, fire due deadlines, flush
//! metrics. After serving a connection the loop schedules its deadline from `poll_timeout`
//! when it is earlier than the one queued (a later one waits until the queued one fires:
//! `handle_timeout` is harmless early, and a busy connection does not touch the timer queue
//! on every message), cancels the queued one when the connection has no deadline left (so
//! idle connections hold no timer entries), and re-registers its socket only when the wanted
//! interest changed.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gale_core::timer::{Expired, ServerTimers, TimerQueue};
use gale_core::{CloseReason, ConnHandle, Connection, Handler, Mailbox, Outgoing, PeerAddr};
use mio::event::Event;
use mio::{Events, Poll, Token};
use slab::Slab;

use crate::entry::{Entry, Flags, Step};
use crate::mailbox::{LoopShared, MAX_CONNS_PER_LOOP, Msg, conn_id, next_generation, split_id};
use crate::net::{Listener, MAX_LISTENERS, Stream};
use crate::server::ServerShared;
use crate::stats::{LoopMetrics, Snapshot};

/// A server timer's task (`run_after` tasks are wrapped to run once).
pub(crate) type Job = Box<dyn FnMut() + Send>;

/// A reactor thread's state. Built on the starting thread, then moved into its thread.
pub(crate) struct Reactor<H: Handler> {
    index: usize,
    poll: Poll,
    server: Arc<ServerShared<H>>,
    shared: Arc<LoopShared<H>>,
    conns: Slab<Entry<H>>,
    timers: TimerQueue<usize>,
    /// `run_after` / `run_every` tasks; only loop 0 gets any.
    pub(crate) server_timers: ServerTimers<Job>,
    /// This loop's own listeners (SO_REUSEPORT mode).
    listeners: Vec<Listener>,
    /// Connections that stopped at the work bound or can progress without an event.
    ready: VecDeque<usize>,
    stop_deadline: Option<Instant>,
    accept_retry: Option<Instant>,
    generation: u32,
    metrics: LoopMetrics,
    inbox: Vec<Msg<H>>,
    due: Vec<usize>,
    /// Bytes one connection may move per turn before the others are served.
    budget: usize,
}

impl<H: Handler> Reactor<H> {
    /// A loop for `server.loops[index]`, whose waker was created on `poll`.
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        server: Arc<ServerShared<H>>,
        mut listeners: Vec<Listener>,
    ) -> std::io::Result<Self> {
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l, listener_token(i), mio::Interest::READABLE)?;
        }
        let budget = server.work_budget;
        Ok(Self {
            index,
            poll,
            shared: Arc::clone(&server.loops[index]),
            server,
            conns: Slab::new(),
            timers: TimerQueue::new(),
            server_timers: ServerTimers::new(),
            listeners,
            ready: VecDeque::new(),
            stop_deadline: None,
            accept_retry: None,
            generation: 0,
            metrics: LoopMetrics::new(),
            inbox: Vec::new(),
            due: Vec::new(),
            budget,
        })
    }

    /// Runs until stopped: every connection closed, or the stop deadline passed.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let timeout = self.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(loop_index = self.index, error = %e, "poll failed; loop exits");
                break;
            }
            let now = Instant::now();
            for event in &events {
                match event.token() {
                    WAKER => self.handle_inbox(now),
                    token if token.0 > LISTENER_TOKEN_MIN => {
                        self.accept(usize::MAX - 1 - token.0, now);
                    }
                    Token(key) => self.handle_event(key, event, now),
                }
            }
            self.serve_ready(now);
            self.fire_timers(now);
            self.metrics.flush();
            if self
                .stop_deadline
                .is_some_and(|deadline| self.conns.is_empty() || now >= deadline)
            {
                break;
            }
        }
        let now = Instant::now();
        if !self.conns.is_empty() {
            tracing::warn!(
                loop_index = self.index,
                connections = self.conns.len(),
                "stop timeout reached: dropping connections"
            );
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let budget = self.budget;
        for key in keys {
            self.serve(key, now, |e| {
                e.apply(now, budget, |c| c.handle_abort(now, CloseReason::Shutdown))
            });
        }
        self.metrics.flush();
    }

    fn next_timeout(&mut self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        [
            self.timers.poll_timeout(),
            self.server_timers.poll_timeout(),
            self.stop_deadline,
            self.accept_retry,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now))
    }

    fn handle_inbox(&mut self, now: Instant) {
        let mut msgs = std::mem::take(&mut self.inbox);
        self.shared.take(&mut msgs);
        for msg in msgs.drain(..) {
            match msg {
                Msg::Command(id, cmd) => {
                    let (key, _) = split_id(id);
                    if self.conns.get(key).is_some_and(|e| e.conn.id() == Some(id)) {
                        let budget = self.budget;
                        self.serve(key, now, |e| {
                            e.apply(now, budget, |c| c.handle_command(now, cmd))
                        });
                    }
                }
                Msg::Accept(stream, peer) => self.install(stream, peer, now),
                Msg::Run(f) => f(self),
                Msg::Stop(deadline) => self.begin_stop(deadline, now),
            }
        }
        self.inbox = msgs;
    }

    fn handle_event(&mut self, key: usize, event: &Event, now: Instant) {
        let budget = self.budget;
        self.serve(key, now, |e| {
            let closed = event.is_read_closed() || event.is_error();
            if event.is_readable() || closed {
                e.flags.set(Flags::READABLE, true);
                e.flags.set(Flags::READ_CLOSED, closed);
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                e.flags.set(Flags::WRITABLE, true);
            }
            e.serve(now, budget)
        });
    }

    fn serve_ready(&mut self, now: Instant) {
        let budget = self.budget;
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            if !self
                .conns
                .get(key)
                .is_some_and(|e| e.flags.has(Flags::QUEUED))
            {
                continue;
            }
            self.serve(key, now, |e| {
                e.flags.set(Flags::QUEUED, false);
                e.serve(now, budget)
            });
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            for i in 0..self.listeners.len() {
                self.accept(i, now);
            }
        }
        let mut due = std::mem::take(&mut self.due);
        while let Some(key) = self.timers.poll_expired(now) {
            if let Some(e) = self.conns.get_mut(key) {
                e.flags.set(Flags::TIMER, false);
            }
            due.push(key);
        }
        let budget = self.budget;
        for key in due.drain(..) {
            self.serve(key, now, |e| {
                e.apply(now, budget, |c| c.handle_timeout(now))
            });
        }
        self.due = due;
        while let Some(expired) = self.server_timers.poll_expired(now) {
            match expired {
                Expired::Once { task: mut job, .. } => job(),
                Expired::Every { task: job, .. } => job(),
            }
        }
    }

    /// Serves connection `key` (if it is open) with `f`, then does the bookkeeping.
    fn serve(&mut self, key: usize, now: Instant, f: impl FnOnce(&mut Entry<H>) -> Step) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        let before = Snapshot::of(&e.conn);
        let step = f(e);
        self.after(key, &before, step, now);
    }

    /// Bookkeeping after a connection was served: count what it did since `before`; close
    /// it, or schedule an earlier deadline, update its interest and queue it if it has work
    /// left.
    fn after(&mut self, key: usize, before: &Snapshot, step: Step, now: Instant) {
        let e = match step {
            Step::Closed(reason) => return self.remove(key, before, &reason),
            // invariant: only `remove` frees a slot, and it runs for `Step::Closed` only.
            Step::Idle | Step::Yield => &mut self.conns[key],
        };
        self.metrics.observe(before, &e.conn);
        match e.conn.poll_timeout() {
            Some(next)
                if !e.flags.has(Flags::TIMER)
                    || self.timers.deadline(key).is_none_or(|queued| next < queued) =>
            {
                self.timers.schedule(key, next);
                e.flags.set(Flags::TIMER, true);
            }
            Some(_) => {}
            // No deadline any more (a WebSocket past its handshake timeout, say): an idle
            // connection should not keep an entry in the timer queue.
            None if e.flags.has(Flags::TIMER) => {
                self.timers.cancel(key);
                e.flags.set(Flags::TIMER, false);
            }
            None => {}
        }
        let want = e.wanted_interest();
        let have = e.flags.interest();
        if want != have {
            let registry = self.poll.registry();
            let result = match (have, want) {
                (None, Some(i)) => registry.register(&mut e.stream, Token(key), i),
                (Some(_), Some(i)) => registry.reregister(&mut e.stream, Token(key), i),
                (Some(_), None) => registry.deregister(&mut e.stream),
                (None, None) => Ok(()),
            };
            if let Err(err) = result {
                tracing::warn!(id = %e.id(), error = %err, "cannot register socket");
                let before = Snapshot::of(&e.conn);
                let step = e.apply(now, self.budget, |c| c.handle_io_error(now, err.kind()));
                if let Step::Closed(reason) = step {
                    self.remove(key, &before, &reason);
                }
                return;
            }
            e.flags.set_interest(want);
        }
        if (matches!(step, Step::Yield) || e.has_work()) && !e.flags.has(Flags::QUEUED) {
            e.flags.set(Flags::QUEUED, true);
            self.ready.push_back(key);
        }
    }

    /// Accepts from this loop's own listener `i` (SO_REUSEPORT mode).
    fn accept(&mut self, i: usize, now: Instant) {
        let listeners = std::mem::take(&mut self.listeners);
        if let Some(listener) = listeners.get(i)
            && let Some(delay) = listener.accept_ready(|stream, peer| {
                if self.server.admit() {
                    self.shared.load.fetch_add(1, Ordering::Relaxed);
                    self.install(stream, peer, now);
                } else {
                    self.metrics.refused();
                    tracing::debug!(%peer, "connection refused: max_connections reached");
                }
            })
        {
            self.accept_retry = Some(now + delay);
        }
        self.listeners = listeners;
    }

    /// Starts an admitted connection (counted in `open` and this loop's load).
    fn install(&mut self, stream: Stream, peer: PeerAddr, now: Instant) {
        let key = self.conns.vacant_key();
        if self.stop_deadline.is_some() || key >= MAX_CONNS_PER_LOOP {
            self.release();
            return;
        }
        self.generation = next_generation(self.generation);
        let id = conn_id(self.generation, self.index, key);
        let mailbox: Arc<dyn Mailbox<Outgoing<H>>> = self.shared.clone();
        let config = Arc::clone(&self.server.conn_config);
        let mut conn = Connection::new(Arc::clone(&self.server.handler), config, peer, now);
        conn.set_handle(ConnHandle::new(id, mailbox));
        tracing::debug!(loop_index = self.index, %id, peer = %conn.peer_addr(), "connection open");
        self.shared.set_live(key, self.generation);
        self.metrics.accepted();
        self.conns.insert(Entry::new(conn, stream));
        let budget = self.budget;
        self.serve(key, now, |e| {
            e.apply(now, budget, |c| c.handle_connect(now))
        });
    }

    fn remove(&mut self, key: usize, before: &Snapshot, reason: &CloseReason) {
        let mut e = self.conns.remove(key);
        if e.flags.interest().is_some()
            && let Err(err) = self.poll.registry().deregister(&mut e.stream)
        {
            tracing::debug!(id = %e.id(), error = %err, "deregister failed");
        }
        self.timers.cancel(key);
        self.shared.clear_live(key);
        self.release();
        self.metrics.observe(before, &e.conn);
        self.metrics.forget(&e.conn);
        self.metrics.closed();
        tracing::debug!(loop_index = self.index, id = %e.id(), %reason, "connection closed");
    }

    fn begin_stop(&mut self, deadline: Instant, now: Instant) {
        if self.stop_deadline.is_some() {
            return;
        }
        self.stop_deadline = Some(deadline);
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.accept_retry = None;
        self.server_timers = ServerTimers::new();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let budget = self.budget;
        for key in keys {
            self.serve(key, now, |e| {
                e.apply(now, budget, |c| c.handle_shutdown(now))
            });
        }
    }

    /// A connection admitted for this loop is gone (or never started).
    fn release(&self) {
        self.server.release();
        self.shared.load.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<H: Handler> Drop for Reactor<H> {
    /// Closes the mailbox and forgets what is left, without running handler code (this also
    /// runs when a handler panicked).
    fn drop(&mut self) {
        for msg in self.shared.close() {
            if let Msg::Accept(..) = msg {
                self.release();
            }
        }
        for _ in self.conns.drain() {
            self.server.release();
            self.shared.load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn listener_token(i: usize) -> Token {
    Token(usize::MAX - 1 - i)
}

const WAKER_TOKEN: usize = usize::MAX;
/// The mailbox's waker.
pub(crate) const WAKER: Token = Token(WAKER_TOKEN);
/// Tokens above this are listeners (counted down from `usize::MAX - 1`); slab keys stay far
/// below (at most `MAX_CONNS_PER_LOOP`).
const LISTENER_TOKEN_MIN: usize = usize::MAX - 1 - MAX_LISTENERS;
const EVENTS_CAPACITY: usize = 1024;
