//! Edge-triggered readiness for connection sockets: a [`mio::Poll`] nested in async-io's
//! reactor.
//!
//! async-io registers every source in one-shot mode, so each wait for readability re-arms
//! the socket with an `epoll_ctl` call: one extra system call per message in a ping-pong
//! (about 6% of the server's CPU per message, measured in `bench/`). Here connection
//! sockets are registered once, edge-triggered, in a poller of the server's own; async-io
//! watches only that poller's descriptor, which becomes readable when any socket has an
//! event. One task ([`Poller::drive`]) collects the events, records them per socket and
//! wakes the connection tasks: one re-arm per batch of events instead of one per message.
//! Timers, the listener and everything else stay on async-io.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use mio::event::Source;
use mio::{Events, Interest, Registry, Token};
use slab::Slab;
use smol::Async;

/// The server's poller: where connection sockets register.
pub(crate) struct Poller {
    /// The poller's descriptor (a duplicate of the [`mio::Poll`]'s), watched by async-io.
    watched: Async<Registry>,
    slots: Mutex<Slab<Arc<Readiness>>>,
}

/// What the poller saw for one socket since its task last looked, and that task's waker.
struct Readiness {
    /// [`READABLE`] and [`WRITABLE`] events not yet taken.
    events: AtomicU8,
    waker: AtomicWaker,
}

/// A socket registered with a [`Poller`]; deregistered when dropped.
pub(crate) struct Polled<S: Source> {
    io: S,
    readiness: Arc<Readiness>,
    key: usize,
    poller: Arc<Poller>,
}

impl Poller {
    /// A poller and the future that delivers its events: run that future (as a task) for as
    /// long as sockets are registered.
    pub(crate) fn new() -> io::Result<(Arc<Self>, Drive)> {
        let poll = mio::Poll::new()?;
        let poller = Arc::new(Self {
            watched: Async::new(poll.registry().try_clone()?)?,
            slots: Mutex::new(Slab::new()),
        });
        Ok((Arc::clone(&poller), Box::pin(poller.drive(poll))))
    }

    /// Registers `io` for readability and writability, edge-triggered.
    pub(crate) fn register<S: Source>(self: &Arc<Self>, mut io: S) -> io::Result<Polled<S>> {
        let readiness = Arc::new(Readiness {
            events: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        });
        let key = self.lock().insert(Arc::clone(&readiness));
        if let Err(e) = self.watched.get_ref().register(
            &mut io,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.lock().remove(key);
            return Err(e);
        }
        Ok(Polled {
            io,
            readiness,
            key,
            poller: Arc::clone(self),
        })
    }

    /// Waits for the poller's descriptor to be readable, takes every event without blocking
    /// and wakes the tasks concerned; forever.
    async fn drive(self: Arc<Self>, mut poll: mio::Poll) {
        let mut events = Events::with_capacity(EVENTS);
        loop {
            match poll.poll(&mut events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => tracing::error!(error = %e, "polling connection sockets failed"),
            }
            let full = events.iter().count() == EVENTS;
            if !events.is_empty() {
                let slots = self.lock();
                for event in &events {
                    // A stale token (socket gone, key reused) only costs a spurious wake-up.
                    let Some(readiness) = slots.get(event.token().0) else {
                        continue;
                    };
                    let mut seen = 0;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        seen |= READABLE;
                    }
                    if event.is_writable() || event.is_write_closed() || event.is_error() {
                        seen |= WRITABLE;
                    }
                    readiness.events.fetch_or(seen, Ordering::Release);
                    readiness.waker.wake();
                }
            }
            if full {
                // More may be waiting; let the woken tasks run first.
                smol::future::yield_now().await;
            } else if let Err(e) = self.watched.readable().await {
                tracing::error!(error = %e, "waiting for connection events failed");
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Arc<Readiness>>> {
        // Every critical section is one slab operation or a read: nothing is left half-done.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: Source> Polled<S> {
    /// The socket.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    /// Ready once the socket became readable since the last `Ready`; otherwise registers
    /// `cx` to be woken when it does.
    pub(crate) fn poll_readable(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.poll_event(READABLE, cx)
    }

    /// As [`poll_readable`](Self::poll_readable), for writability.
    pub(crate) fn poll_writable(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.poll_event(WRITABLE, cx)
    }

    fn poll_event(&self, which: u8, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let events = &self.readiness.events;
        if events.fetch_and(!which, Ordering::Acquire) & which != 0 {
            return Poll::Ready(Ok(()));
        }
        self.readiness.waker.register(cx.waker());
        // An event may have arrived before the waker was in place.
        if events.fetch_and(!which, Ordering::Acquire) & which != 0 {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl<S: Source> Drop for Polled<S> {
    fn drop(&mut self) {
        let _ = self.poller.watched.get_ref().deregister(&mut self.io);
        self.poller.lock().try_remove(self.key);
    }
}

// Nothing is pinned structurally.
impl<S: Source> Unpin for Polled<S> {}

impl<S: Source> std::fmt::Debug for Polled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Polled")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The future that delivers a [`Poller`]'s events.
pub(crate) type Drive = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Readability (or read side closed, or an error) was reported.
const READABLE: u8 = 1;
/// Writability (or write side closed, or an error) was reported.
const WRITABLE: u8 = 1 << 1;
/// Events taken per poll.
const EVENTS: usize = 1024;

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use smol::Timer;
    use smol::future::{self, FutureExt as _};

    use super::*;

    /// Fails the test if `fut` takes longer than a generous bound.
    async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
        fut.or(async {
            Timer::after(Duration::from_secs(10)).await;
            panic!("timed out waiting for {what}");
        })
        .await
    }

    #[test]
    fn every_new_event_wakes_the_task_once_and_dropping_frees_the_slot() {
        let (poller, drive) = Poller::new().unwrap();
        let test = async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            server.set_nonblocking(true).unwrap();
            let polled = poller
                .register(mio::net::TcpStream::from_std(server))
                .unwrap();
            bounded("writable", poll_fn(|cx| polled.poll_writable(cx)))
                .await
                .unwrap();

            for round in 0..3u8 {
                client.write_all(&[round]).unwrap();
                bounded("readable", poll_fn(|cx| polled.poll_readable(cx)))
                    .await
                    .unwrap();
                let mut buf = [0; 8];
                assert_eq!(polled.get_ref().read(&mut buf).unwrap(), 1);
                assert_eq!(buf[0], round);
                // Taken: nothing new until the peer sends again.
                let again = future::poll_once(poll_fn(|cx| polled.poll_readable(cx))).await;
                assert!(again.is_none(), "round {round}: readable without new data");
            }

            drop(client);
            bounded("end of stream", poll_fn(|cx| polled.poll_readable(cx)))
                .await
                .unwrap();
            assert_eq!(polled.get_ref().read(&mut [0; 8]).unwrap(), 0);

            assert_eq!(poller.lock().len(), 1);
            drop(polled);
            assert!(poller.lock().is_empty());
        };
        smol::block_on(test.or(async {
            drive.await;
            unreachable!("the poller's task runs until dropped")
        }));
    }
}
