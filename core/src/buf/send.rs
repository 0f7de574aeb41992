use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Bytes waiting to be written to the peer: a FIFO of [`Bytes`] chunks.
///
/// [`io_slices`](Self::io_slices) exposes the front chunks for a vectored write and
/// [`advance`](Self::advance) accounts for however many bytes the write took, including a
/// write that ended in the middle of a chunk.
///
/// Every connection holds one, so it is small (40 bytes): a single queued chunk (a reply
/// written at once, the common case) is held inline and queuing it allocates nothing, and
/// so is a chunk with a small header in front of it ([`push_with_head`](Self::push_with_head):
/// a frame header and its payload, with neither an allocation nor a copy). A queue of several
/// chunks owns a ring buffer, freed once the queue drains.
#[derive(Debug, Default)]
pub struct SendQueue(Chunks);

/// Two variants, so that the `Many` case lives in the niche of `Bytes`' vtable pointer.
#[derive(Debug)]
enum Chunks {
    /// One chunk, after a header of up to [`MAX_HEAD`] bytes (none for a plain chunk).
    One(Headed),
    /// `None`: empty, no heap. `Some`: a ring of at least one chunk (two or more when it was
    /// made, fewer after partial drains).
    Many(Option<Box<Ring>>),
}

/// A chunk and the small header that goes out before it, held inline.
#[derive(Debug)]
struct Headed {
    payload: Bytes,
    head: [u8; MAX_HEAD],
    /// `head[start..end]` is still to be written.
    start: u8,
    end: u8,
}

impl Headed {
    fn plain(payload: Bytes) -> Self {
        Self {
            payload,
            head: [0; MAX_HEAD],
            start: 0,
            end: 0,
        }
    }

    fn head(&self) -> &[u8] {
        &self.head[usize::from(self.start)..usize::from(self.end)]
    }

    fn len(&self) -> usize {
        usize::from(self.end - self.start) + self.payload.len()
    }
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
    /// Set by [`SendQueue::detach`]: chunks are copied as they are queued, until the queue
    /// drains (and the ring with it).
    detached: bool,
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
            Chunks::Many(None) => self.0 = Chunks::One(Headed::plain(chunk)),
            Chunks::Many(Some(ring)) => {
                let chunk = if ring.detached { own(chunk) } else { chunk };
                ring.len += chunk.len();
                ring.chunks.push_back(chunk);
            }
            Chunks::One(_) => {
                let mut chunks = VecDeque::with_capacity(FIRST_RING);
                if let Chunks::One(first) = std::mem::take(&mut self.0) {
                    let head = first.head();
                    if !head.is_empty() {
                        chunks.push_back(Bytes::copy_from_slice(head));
                    }
                    if !first.payload.is_empty() {
                        chunks.push_back(first.payload);
                    }
                }
                chunks.push_back(chunk);
                let len = chunks.iter().map(Bytes::len).sum();
                self.0 = Chunks::Many(Some(Box::new(Ring {
                    chunks,
                    len,
                    detached: false,
                })));
            }
        }
    }

    /// The peer is not taking bytes as fast as they are queued (a write would block with
    /// bytes left): copies every queued chunk of up to [`DETACH_UP_TO`] bytes into a buffer
    /// of its own, and copies such chunks as they are queued from now on, until the queue
    /// drains.
    ///
    /// Queued chunks are usually slices of bigger buffers: a reply that echoes a received
    /// message is a slice of the [`ReadPool`](super::ReadPool) chunk it was read into, and
    /// keeps that whole chunk (64 KiB) alive while it waits. For replies written at once
    /// that costs nothing; for a peer that stops reading it would let a few bytes queued
    /// per connection hold a chunk each. After `detach` a connection's queue holds only
    /// what it queued (bounded by the high watermark). Each byte is copied at most once,
    /// and only for peers that fall behind. Chunks larger than [`DETACH_UP_TO`] are kept as
    /// they are: they are not slices of a pool chunk, and copying them would cost more than
    /// it frees. Calling it again while detached does nothing.
    pub fn detach(&mut self) {
        let ring = match std::mem::take(&mut self.0) {
            Chunks::Many(None) => return,
            Chunks::Many(Some(mut ring)) => {
                if !ring.detached {
                    for chunk in &mut ring.chunks {
                        *chunk = own(std::mem::take(chunk));
                    }
                    ring.detached = true;
                }
                ring
            }
            Chunks::One(one) => {
                let mut chunks = VecDeque::with_capacity(FIRST_RING);
                let head = one.head();
                if one.payload.len() <= DETACH_UP_TO {
                    let mut both = BytesMut::with_capacity(head.len() + one.payload.len());
                    both.extend_from_slice(head);
                    both.extend_from_slice(&one.payload);
                    chunks.push_back(both.freeze());
                } else {
                    if !head.is_empty() {
                        chunks.push_back(Bytes::copy_from_slice(head));
                    }
                    chunks.push_back(one.payload);
                }
                let len = chunks.iter().map(Bytes::len).sum();
                Box::new(Ring {
                    chunks,
                    len,
                    detached: true,
                })
            }
        };
        self.0 = Chunks::Many(Some(ring));
    }

    /// Whether [`detach`](Self::detach) is in effect (until the queue drains).
    pub fn is_detached(&self) -> bool {
        matches!(&self.0, Chunks::Many(Some(ring)) if ring.detached)
    }

    /// Queues a small header (a frame header, a length prefix) followed by `payload`.
    ///
    /// Into an empty queue (the common case: the previous reply was written at once) this
    /// allocates nothing and copies only the header: both are held inline and go out as two
    /// slices of one vectored write. Behind queued bytes, or for a header longer than
    /// [`MAX_HEAD`] bytes, the header is copied into a chunk of its own.
    pub fn push_with_head(&mut self, head: &[u8], payload: Bytes) {
        if head.len() > MAX_HEAD || !self.is_empty() {
            self.push(Bytes::copy_from_slice(head));
            self.push(payload);
            return;
        }
        if head.is_empty() && payload.is_empty() {
            return;
        }
        let mut headed = Headed::plain(payload);
        headed.head[..head.len()].copy_from_slice(head);
        // Cannot truncate: head.len() <= MAX_HEAD.
        headed.end = head.len() as u8;
        self.0 = Chunks::One(headed);
    }

    /// Number of queued bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Chunks::Many(None) => 0,
            Chunks::One(one) => one.len(),
            Chunks::Many(Some(ring)) => ring.len,
        }
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        // `One` is never empty and `Many` is dropped once drained.
        matches!(self.0, Chunks::Many(None))
    }

    /// Number of queued chunks (a header and its payload count as one).
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
            Chunks::One(one) => {
                let mut n = 0;
                let parts = [one.head(), &one.payload[..]];
                let parts = parts.iter().filter(|p| !p.is_empty());
                for (slot, part) in dst.iter_mut().zip(parts) {
                    *slot = IoSlice::new(part);
                    n += 1;
                }
                n
            }
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

    /// The first queued slice (a header, or a chunk), for drivers that write one slice at a
    /// time.
    pub fn front(&self) -> Option<&[u8]> {
        match &self.0 {
            Chunks::Many(None) => None,
            Chunks::One(one) if one.start < one.end => Some(one.head()),
            Chunks::One(one) => Some(&one.payload),
            Chunks::Many(Some(ring)) => ring.chunks.front().map(|c| &c[..]),
        }
    }

    /// Removes the first `n` queued bytes (a write of `n` bytes succeeded). `n` larger than
    /// [`len`](Self::len) empties the queue.
    pub fn advance(&mut self, n: usize) {
        match &mut self.0 {
            Chunks::Many(None) => {}
            Chunks::One(one) => {
                if n >= one.len() {
                    self.0 = Chunks::default();
                } else {
                    let head = usize::from(one.end - one.start);
                    // Cannot truncate: the min is at most head <= MAX_HEAD.
                    let from_head = n.min(head) as u8;
                    one.start += from_head;
                    one.payload.advance(n - usize::from(from_head));
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

/// A chunk of its own for `chunk` if it is small enough to be a slice of a shared buffer.
fn own(chunk: Bytes) -> Bytes {
    if chunk.len() <= DETACH_UP_TO {
        Bytes::copy_from_slice(&chunk)
    } else {
        chunk
    }
}

/// Largest chunk [`SendQueue::detach`] copies: a [`ReadPool`](super::ReadPool) chunk of
/// the default size ([`DEFAULT_CHUNK`](super::DEFAULT_CHUNK)).
pub const DETACH_UP_TO: usize = super::DEFAULT_CHUNK;

/// Slots of the ring buffer allocated when a second chunk is queued.
const FIRST_RING: usize = 4;

/// Longest header [`SendQueue::push_with_head`] holds inline: a server's WebSocket frame
/// header up to 64 KiB of payload (4 bytes), a gev protobuf header (6), a `u32` length
/// prefix. Longer headers are copied into a chunk of their own.
pub const MAX_HEAD: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &SendQueue) -> Vec<u8> {
        let mut iov = [IoSlice::new(&[]); 64];
        let n = q.io_slices(&mut iov);
        iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    /// Whether `rest`, the remainder of a buffer messages were split off, is the only owner
    /// of that buffer again (no queued slice keeps it alive).
    fn sole_owner(rest: &Bytes) -> bool {
        rest.is_unique()
    }

    #[test]
    fn detach_copies_small_chunks_so_they_stop_pinning_their_buffer() {
        let mut pool_chunk = Bytes::from(vec![0u8; 4096]);
        let reply = pool_chunk.split_to(5);
        let mut q = SendQueue::new();
        q.push_with_head(&[0x82, 5], reply.clone());
        drop(reply);
        assert!(!sole_owner(&pool_chunk), "the queued reply pins the chunk");
        assert!(!q.is_detached());

        q.detach();
        assert!(q.is_detached());
        assert!(sole_owner(&pool_chunk), "the reply was copied out");
        assert_eq!((q.len(), collect(&q)), (7, vec![0x82, 5, 0, 0, 0, 0, 0]));

        // Queued while detached: copied as well; a big chunk is kept as it is.
        q.push(pool_chunk.split_to(100));
        assert!(sole_owner(&pool_chunk));
        let big = Bytes::from(vec![7u8; DETACH_UP_TO + 1]);
        q.push(big.clone());
        q.push_with_head(&[1, 2], pool_chunk.split_to(10));
        assert!(sole_owner(&pool_chunk));
        let third = |q: &SendQueue| {
            let mut iov = [IoSlice::new(&[]); 8];
            let n = q.io_slices(&mut iov);
            (n, iov[2].as_ptr())
        };
        assert_eq!(third(&q), (5, big.as_ptr()), "the big chunk is not copied");
        assert_eq!(q.len(), 7 + 100 + big.len() + 2 + 10);
        q.detach(); // again: nothing changes
        assert_eq!(third(&q), (5, big.as_ptr()));

        // Drained: back to zero-copy.
        q.advance(q.len());
        assert!(!q.is_detached() && q.is_empty());
        q.push(pool_chunk.split_to(10));
        assert!(!sole_owner(&pool_chunk));
    }

    #[test]
    fn detach_keeps_a_partly_written_reply_in_order() {
        let payload = Bytes::from(vec![9u8; 300]);
        for written in [0, 1, 2, 3, 150, 301] {
            let mut q = SendQueue::new();
            q.push_with_head(&[0x82, 126, 1, 44], payload.clone());
            q.advance(written);
            let before = collect(&q);
            q.detach();
            assert_eq!(collect(&q), before, "after writing {written}");
            q.push(Bytes::from_static(b"next"));
            let mut want = before;
            want.extend_from_slice(b"next");
            assert_eq!(collect(&q), want);
        }
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
        assert_eq!(size_of::<SendQueue>(), 40);
    }

    /// Writes the queue out `step` bytes at a time, as a driver whose socket takes that much.
    fn drain_by(q: &mut SendQueue, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !q.is_empty() {
            let mut iov = [IoSlice::new(&[]); 4];
            let n = q.io_slices(&mut iov);
            let bytes: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
            let took = step.min(bytes.len());
            out.extend_from_slice(&bytes[..took]);
            q.advance(took);
        }
        out
    }

    #[test]
    fn head_and_payload_survive_every_partial_write() {
        for step in 1..=12 {
            let mut q = SendQueue::new();
            q.push_with_head(&[0x82, 5], Bytes::from_static(b"hello"));
            assert_eq!((q.len(), q.chunk_count()), (7, 1));
            assert_eq!(ring_capacity(&q), 0, "inline: no heap");
            assert_eq!(drain_by(&mut q, step), b"\x82\x05hello", "step {step}");
        }
    }

    #[test]
    fn head_behind_queued_bytes_keeps_order() {
        let mut q = SendQueue::new();
        q.push_with_head(b"ab", Bytes::from_static(b"cd"));
        q.advance(1);
        q.push_with_head(b"ef", Bytes::from_static(b"gh"));
        q.push(Bytes::from_static(b"i"));
        assert_eq!(q.front(), Some(&b"b"[..]));
        assert_eq!(q.len(), 8);
        assert_eq!(drain_by(&mut q, 3), b"bcdefghi");
    }

    #[test]
    fn head_alone_long_head_and_empty_parts() {
        let mut q = SendQueue::new();
        q.push_with_head(&[], Bytes::new());
        assert!(q.is_empty());
        q.push_with_head(&[0x88, 0], Bytes::new());
        assert_eq!(collect(&q), [0x88, 0]);
        assert_eq!(drain_by(&mut q, 1), [0x88, 0]);
        let long = [7u8; MAX_HEAD + 1];
        q.push_with_head(&long, Bytes::from_static(b"x"));
        assert_eq!(q.len(), MAX_HEAD + 2);
        assert_eq!(drain_by(&mut q, 5).len(), MAX_HEAD + 2);
        q.push_with_head(&[], Bytes::from_static(b"y"));
        assert_eq!(q.front(), Some(&b"y"[..]));
    }
}
