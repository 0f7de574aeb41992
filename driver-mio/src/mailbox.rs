//! The per-loop mailbox: how other threads reach a reactor thread (gev's `QueueInLoop`).
//!
//! One `Mutex<Vec<Msg>>` plus a `mio::Waker` per loop. Senders push and wake the loop only
//! when the queue was empty (one wake-up per batch); the loop swaps the whole vector out under
//! the lock and handles the messages without holding it.
//!
//! The same lock guards a table of live connections (slab key → generation), so a
//! [`ConnHandle`] to a closed connection gets [`MailboxClosed`] at once instead of queueing
//! into the void. These tables are also the server's [`Registry`](gale_core::server::Registry)
//! (through [`Loops`], a [`Directory`]): four bytes per connection, nothing else.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gale_core::server::Directory;
use gale_core::{Command, ConnHandle, ConnId, Handler, Mailbox, MailboxClosed, Outgoing, PeerAddr};

use crate::net::Stream;
use crate::reactor::Reactor;

/// Work for a loop, from any thread.
pub(crate) enum Msg<H: Handler> {
    /// A command from a `ConnHandle`.
    Command(ConnId, Command<Outgoing<H>>),
    /// A connection the acceptor admitted and assigned to this loop.
    Accept(Stream, PeerAddr),
    /// A closure to run on the loop with access to it (gev's `QueueInLoop`).
    Run(LoopTask<H>),
    /// Stop gracefully; drop what is left at the deadline.
    Stop(Instant),
}

/// A closure run on a loop with access to it.
pub(crate) type LoopTask<H> = Box<dyn FnOnce(&mut Reactor<H>) + Send>;

/// The part of a loop that other threads share.
pub(crate) struct LoopShared<H: Handler> {
    inbox: Mutex<Inbox<H>>,
    waker: mio::Waker,
    /// Connections assigned to this loop (for `Balance::LeastConnections`).
    pub(crate) load: AtomicUsize,
}

struct Inbox<H: Handler> {
    msgs: Vec<Msg<H>>,
    /// Generation of the connection in each slab slot; 0 for a free slot.
    live: Vec<u32>,
    /// Non-zero entries of `live`.
    live_count: usize,
    closed: bool,
}

impl<H: Handler> LoopShared<H> {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        Self {
            inbox: Mutex::new(Inbox {
                msgs: Vec::new(),
                live: Vec::new(),
                live_count: 0,
                closed: false,
            }),
            waker,
            load: AtomicUsize::new(0),
        }
    }

    /// Queues `msg` and wakes the loop; gives the message back once the loop has exited.
    pub(crate) fn push(&self, msg: Msg<H>) -> Result<(), Msg<H>> {
        let mut inbox = self.lock();
        if inbox.closed {
            return Err(msg);
        }
        self.push_locked(&mut inbox, msg);
        Ok(())
    }

    /// Moves every queued message into `into` (which the caller has emptied).
    pub(crate) fn take(&self, into: &mut Vec<Msg<H>>) {
        std::mem::swap(&mut self.lock().msgs, into);
    }

    /// Marks slab slot `key` as holding the connection of generation `generation`.
    pub(crate) fn set_live(&self, key: usize, generation: u32) {
        let mut inbox = self.lock();
        if inbox.live.len() <= key {
            inbox.live.resize(key + 1, 0);
        }
        if inbox.live[key] == 0 {
            inbox.live_count += 1;
        }
        inbox.live[key] = generation;
    }

    /// Marks slab slot `key` as free: commands for its old connection now fail.
    pub(crate) fn clear_live(&self, key: usize) {
        let mut inbox = self.lock();
        if let Some(slot) = inbox.live.get_mut(key)
            && *slot != 0
        {
            *slot = 0;
            inbox.live_count -= 1;
        }
    }

    /// Refuses further messages (the loop exits) and returns the ones not handled.
    pub(crate) fn close(&self) -> Vec<Msg<H>> {
        let mut inbox = self.lock();
        inbox.closed = true;
        inbox.live = Vec::new();
        inbox.live_count = 0;
        std::mem::take(&mut inbox.msgs)
    }

    fn push_locked(&self, inbox: &mut Inbox<H>, msg: Msg<H>) {
        let was_empty = inbox.msgs.is_empty();
        inbox.msgs.push(msg);
        if was_empty && let Err(e) = self.waker.wake() {
            tracing::error!(error = %e, "cannot wake a gale-mio loop");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox<H>> {
        // Every critical section is a push, a swap or a table write: a panic cannot leave the
        // inbox half-updated.
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<H: Handler> Mailbox<Outgoing<H>> for LoopShared<H> {
    fn deliver(&self, id: ConnId, cmd: Command<Outgoing<H>>) -> Result<(), MailboxClosed> {
        let (key, generation) = split_id(id);
        let mut inbox = self.lock();
        if inbox.closed || inbox.live.get(key) != Some(&generation) {
            return Err(MailboxClosed);
        }
        self.push_locked(&mut inbox, Msg::Command(id, cmd));
        Ok(())
    }
}

/// Every loop's live table, as the server's [`Registry`](gale_core::server::Registry).
pub(crate) struct Loops<H: Handler>(pub(crate) Vec<Arc<LoopShared<H>>>);

impl<H: Handler> Directory<Outgoing<H>> for Loops<H> {
    fn len(&self) -> usize {
        self.0.iter().map(|l| l.lock().live_count).sum()
    }

    fn get(&self, id: ConnId) -> Option<ConnHandle<Outgoing<H>>> {
        let (key, generation) = split_id(id);
        let shared = self.0.get(loop_of(id))?;
        let live = shared.lock().live.get(key) == Some(&generation);
        live.then(|| ConnHandle::new(id, Arc::clone(shared) as Arc<dyn Mailbox<_>>))
    }

    fn for_each(&self, f: &mut dyn FnMut(ConnHandle<Outgoing<H>>)) {
        let mut ids = Vec::new();
        for (index, shared) in self.0.iter().enumerate() {
            ids.clear();
            ids.extend(
                shared
                    .lock()
                    .live
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| **g != 0)
                    .map(|(key, g)| conn_id(*g, index, key)),
            );
            // Not under the lock: `f` may send to the handle.
            for id in &ids {
                f(ConnHandle::new(
                    *id,
                    Arc::clone(shared) as Arc<dyn Mailbox<_>>,
                ));
            }
        }
    }
}

/// A server-wide id: generation (28 bits) | loop index (12 bits) | slab key (24 bits).
pub(crate) fn conn_id(generation: u32, loop_index: usize, key: usize) -> ConnId {
    ConnId(
        (u64::from(generation) << (LOOP_BITS + KEY_BITS))
            | ((loop_index as u64) << KEY_BITS)
            | key as u64,
    )
}

/// The slab key and generation of an id made by [`conn_id`].
pub(crate) fn split_id(id: ConnId) -> (usize, u32) {
    let key = (id.0 & ((1 << KEY_BITS) - 1)) as usize;
    // Cannot truncate: the shift leaves GEN_BITS (28) bits.
    let generation = (id.0 >> (LOOP_BITS + KEY_BITS)) as u32;
    (key, generation)
}

/// The loop index of an id made by [`conn_id`].
pub(crate) fn loop_of(id: ConnId) -> usize {
    ((id.0 >> KEY_BITS) & ((1 << LOOP_BITS) - 1)) as usize
}

/// The generation after `generation`: 1..2^28, never 0 (0 marks a free slot).
pub(crate) fn next_generation(generation: u32) -> u32 {
    generation % ((1 << GEN_BITS) - 1) + 1
}

/// Most loops a server runs (the loop index has 12 bits in a [`ConnId`]).
pub(crate) const MAX_LOOPS: usize = 1 << LOOP_BITS;
/// Most connections one loop holds at once (the slab key has 24 bits in a [`ConnId`]).
pub(crate) const MAX_CONNS_PER_LOOP: usize = 1 << KEY_BITS;

const KEY_BITS: u32 = 24;
const LOOP_BITS: u32 = 12;
const GEN_BITS: u32 = 64 - KEY_BITS - LOOP_BITS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_generations_skip_zero() {
        let id = conn_id(0x0fff_ffff, MAX_LOOPS - 1, MAX_CONNS_PER_LOOP - 1);
        assert_eq!(split_id(id), (MAX_CONNS_PER_LOOP - 1, 0x0fff_ffff));
        assert_eq!(split_id(conn_id(7, 3, 42)), (42, 7));
        assert_eq!(loop_of(conn_id(7, 3, 42)), 3);
        assert_eq!(loop_of(id), MAX_LOOPS - 1);
        assert_ne!(conn_id(1, 0, 5), conn_id(1, 1, 5));
        assert_eq!(next_generation(0), 1);
        assert_eq!(next_generation(1), 2);
        assert_eq!(next_generation((1 << GEN_BITS) - 1), 1);
    }
}
