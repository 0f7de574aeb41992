use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Bytes waiting to be written to the peer: a FIFO of [`Bytes`] chunks.
///
/// [`io_slices`](Self::io_slices) exposes the front chunks for a vectored write and
/// [`advance`](Self::advance) accounts for however many bytes the write took, including a
/// write that ended in the middle of a chunk.
///
/// Every connection holds one, so it is as small as a `Bytes`: a single queued chunk (a
/// reply written at once, the common case) is held inline and queuing it allocates nothing;
/// a queue of several chunks owns a ring buffer, freed once the queue drains.
#[derive(Debug, Default)]
pub struct SendQueue(Chunks);

/// Two variants, so that the whole fits in a `Bytes` (the `Many` case lives in the niche of
/// `Bytes`' vtable pointer).
#[derive(Debug)]
enum Chunks {
    One(Bytes),
    /// `None`: empty, no heap. `Some`: a ring of at least one chunk (two or more when it was
    /// made, fewer after partial drains).
    Many(Option<Box<Ring>>),
}

impl Default for Chunks {
    fn default() -> Self {
        Self::Many(None)
    }
}

#[derive(Debug)]
struct Ring {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl SendQueue {
    /// Creates an empty queue (no heap until the second chunk).
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `chunk` behind what is already queued. Empty chunks are ignored.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        match &mut self.0 {
            Chunks::Many(None) => self.0 = Chunks::One(chunk),
            Chunks::Many(Some(ring)) => {
                ring.len += chunk.len();
                ring.chunks.push_back(chunk);
            }
            Chunks::One(_) => {
                let mut chunks = VecDeque::with_capacity(FIRST_RING);
                if let Chunks::One(first) = std::mem::take(&mut self.0) {
                    chunks.push_back(first);
                }
                chunks.push_back(chunk);
                let len = chunks.iter().map(Bytes::len).sum();
                self.0 = Chunks::Many(Some(Box::new(Ring { chunks, len })));
            }
        }
    }

    /// Number of queued bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Chunks::Many(None) => 0,
            Chunks::One(chunk) => chunk.len(),
            Chunks::Many(Some(ring)) => ring.len,
        }
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        // `One` never holds an empty chunk and `Many` is dropped once drained.
        matches!(self.0, Chunks::Many(None))
    }

    /// Number of queued chunks.
    pub fn chunk_count(&self) -> usize {
        match &self.0 {
            Chunks::Many(None) => 0,
            Chunks::One(_) => 1,
            Chunks::Many(Some(ring)) => ring.chunks.len(),
        }
    }

    /// Fills `dst` with slices of the front chunks, in order, and returns how many it filled.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        match &self.0 {
            Chunks::Many(None) => 0,
            Chunks::One(chunk) => match dst.first_mut() {
                Some(slot) => {
                    *slot = IoSlice::new(chunk);
                    1
                }
                None => 0,
            },
            Chunks::Many(Some(ring)) => {
                let mut n = 0;
                for (slot, chunk) in dst.iter_mut().zip(ring.chunks.iter()) {
                    *slot = IoSlice::new(chunk);
                    n += 1;
                }
                n
            }
        }
    }

    /// The first queued chunk, for drivers that write one slice at a time.
    pub fn front(&self) -> Option<&[u8]> {
        match &self.0 {
            Chunks::Many(None) => None,
            Chunks::One(chunk) => Some(chunk),
            Chunks::Many(Some(ring)) => ring.chunks.front().map(|c| &c[..]),
        }
    }

    /// Removes the first `n` queued bytes (a write of `n` bytes succeeded). `n` larger than
    /// [`len`](Self::len) empties the queue.
    pub fn advance(&mut self, n: usize) {
        match &mut self.0 {
            Chunks::Many(None) => {}
            Chunks::One(chunk) => {
                if n >= chunk.len() {
                    self.0 = Chunks::default();
                } else {
                    chunk.advance(n);
                }
            }
            Chunks::Many(Some(ring)) => {
                let mut n = n.min(ring.len);
                ring.len -= n;
                while n > 0 {
                    // invariant: n <= ring.len, the sum of chunk lengths, so a front chunk
                    // exists.
                    let front = ring.chunks.front_mut().expect("queue shorter than its len");
                    if n >= front.len() {
                        n -= front.len();
                        ring.chunks.pop_front();
                    } else {
                        front.advance(n);
                        n = 0;
                    }
                }
                if ring.chunks.is_empty() {
                    self.0 = Chunks::default();
                }
            }
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.0 = Chunks::default();
    }
}

/// Slots of the ring buffer allocated when a second chunk is queued.
const FIRST_RING: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &SendQueue) -> Vec<u8> {
        let mut iov = [IoSlice::new(&[]); 64];
        let n = q.io_slices(&mut iov);
        iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn partial_writes_inside_and_across_chunks() {
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::new());
        q.push(Bytes::from_static(b"world"));
        assert_eq!(q.len(), 11);
        assert_eq!(q.chunk_count(), 2);
        q.advance(3);
        assert_eq!(collect(&q), b"lo world");
        q.advance(5);
        assert_eq!(collect(&q), b"rld");
        q.advance(100);
        assert!(q.is_empty());
        assert_eq!(q.chunk_count(), 0);
    }

    #[test]
    fn io_slices_respects_dst_len() {
        let mut q = SendQueue::new();
        for _ in 0..10 {
            q.push(Bytes::from_static(b"x"));
        }
        let mut iov = [IoSlice::new(&[]); 4];
        assert_eq!(q.io_slices(&mut iov), 4);
    }

    fn ring_capacity(q: &SendQueue) -> usize {
        match &q.0 {
            Chunks::Many(None) | Chunks::One(_) => 0,
            Chunks::Many(Some(ring)) => ring.chunks.capacity(),
        }
    }

    #[test]
    fn drained_queue_holds_no_heap() {
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"abc"));
        assert_eq!(ring_capacity(&q), 0);
        q.advance(3);
        assert_eq!(ring_capacity(&q), 0);
        q.push(Bytes::from_static(b"abc"));
        q.push(Bytes::from_static(b"def"));
        assert!(ring_capacity(&q) > 0);
        q.advance(6);
        assert_eq!(ring_capacity(&q), 0);
    }

    #[test]
    fn one_chunk_then_more_keeps_order_through_partial_writes() {
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"ab"));
        q.advance(1);
        q.push(Bytes::from_static(b"cd"));
        q.push(Bytes::from_static(b"ef"));
        assert_eq!(q.front(), Some(&b"b"[..]));
        assert_eq!(collect(&q), b"bcdef");
        q.advance(3);
        assert_eq!(collect(&q), b"ef");
        q.push(Bytes::from_static(b"g"));
        assert_eq!(collect(&q), b"efg");
        assert_eq!(q.chunk_count(), 2);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.io_slices(&mut []), 0);
        assert_eq!(size_of::<SendQueue>(), size_of::<Bytes>());
    }
}
