use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Bytes waiting to be written to the peer: a FIFO of [`Bytes`] chunks.
///
/// [`io_slices`](Self::io_slices) exposes the front chunks for a vectored write and
/// [`advance`](Self::advance) accounts for however many bytes the write took, including a
/// write that ended in the middle of a chunk.
#[derive(Debug, Default)]
pub struct SendQueue {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl SendQueue {
    /// Creates an empty queue (no heap until the first chunk).
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `chunk` behind what is already queued. Empty chunks are ignored.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Number of queued bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of queued chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Fills `dst` with slices of the front chunks, in order, and returns how many it filled.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.chunks.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// The first queued chunk, for drivers that write one slice at a time.
    pub fn front(&self) -> Option<&[u8]> {
        self.chunks.front().map(|c| &c[..])
    }

    /// Removes the first `n` queued bytes (a write of `n` bytes succeeded). `n` larger than
    /// [`len`](Self::len) empties the queue.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            // invariant: n <= sum of chunk lengths, so a front chunk exists.
            let front = self.chunks.front_mut().expect("queue shorter than its len");
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        if self.chunks.is_empty() && self.chunks.capacity() > RETAINED_SLOTS {
            self.chunks = VecDeque::new();
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.len = 0;
    }
}

/// Chunk slots kept allocated once the queue drains.
const RETAINED_SLOTS: usize = 0;

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

    #[test]
    fn drained_queue_holds_no_heap() {
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"abc"));
        q.advance(3);
        assert_eq!(q.chunks.capacity(), 0);
    }
}
