//! The acceptor thread: accepts on the shared listeners, applies `max_connections`, and hands
//! each admitted connection to the loop core's [`Balancer`] picks, through its mailbox.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use gale_core::server::{Balancer, metric};
use gale_core::{Handler, PeerAddr};
use mio::{Events, Interest, Poll, Token};

use crate::mailbox::Msg;
use crate::net::{Listener, Stream};
use crate::server::ServerShared;

/// The acceptor's state, moved into its thread.
pub(crate) struct Acceptor<H: Handler> {
    poll: Poll,
    listeners: Vec<Listener>,
    server: Arc<ServerShared<H>>,
    balancer: Balancer,
    loads: Vec<usize>,
    refused: metrics::Counter,
}

impl<H: Handler> Acceptor<H> {
    /// An acceptor for `listeners`; its stop waker must use [`WAKER`] on `poll`.
    pub(crate) fn new(
        poll: Poll,
        mut listeners: Vec<Listener>,
        server: Arc<ServerShared<H>>,
    ) -> std::io::Result<Self> {
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(l, Token(i), Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            listeners,
            balancer: Balancer::new(server.config.balance()),
            loads: Vec::with_capacity(server.loops.len()),
            server,
            refused: metrics::counter!(metric::CONNECTIONS_REFUSED),
        })
    }

    /// Accepts until the server stops; dropping the listeners on return closes them.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(64);
        let mut retry: Option<Instant> = None;
        loop {
            let timeout = retry.map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "acceptor poll failed; no longer accepting");
                return;
            }
            if self.server.stopping.load(Ordering::Acquire) {
                return;
            }
            retry = None;
            // Edge-triggered: drain every listener (an idle one costs one `EAGAIN`).
            let Self {
                listeners,
                server,
                balancer,
                loads,
                refused,
                ..
            } = &mut self;
            for listener in listeners.iter() {
                let failed = listener.accept_ready(|stream, peer| {
                    dispatch(server, balancer, loads, refused, stream, peer);
                });
                if let Some(delay) = failed {
                    retry = Some(Instant::now() + delay);
                }
            }
        }
    }
}

/// Admits a connection and queues it on a loop, or closes it at once (by dropping it) when
/// the server is at `max_connections`.
fn dispatch<H: Handler>(
    server: &ServerShared<H>,
    balancer: &mut Balancer,
    loads: &mut Vec<usize>,
    refused: &metrics::Counter,
    stream: Stream,
    peer: PeerAddr,
) {
    if !server.admit() {
        refused.increment(1);
        tracing::debug!(%peer, "connection refused: max_connections reached");
        return;
    }
    loads.clear();
    loads.extend(server.loops.iter().map(|l| l.load.load(Ordering::Relaxed)));
    let index = balancer.pick(&peer, loads) % server.loops.len();
    let target = &server.loops[index];
    target.load.fetch_add(1, Ordering::Relaxed);
    if target.push(Msg::Accept(stream, peer)).is_err() {
        // The loop has exited (the server is stopping): the stream is dropped, so closed.
        target.load.fetch_sub(1, Ordering::Relaxed);
        server.release();
    }
}

/// The acceptor's stop waker.
pub(crate) const WAKER: Token = Token(usize::MAX);
