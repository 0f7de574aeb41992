use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

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
                self.0 = Chunks::Many(Some(Box::new(Ring { chunks, len })));
            }
        }
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
