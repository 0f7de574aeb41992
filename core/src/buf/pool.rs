use bytes::BytesMut;

/// A read buffer shared by the connections of one thread, so that received bytes are
/// neither copied nor given an allocation of their own.
///
/// A driver reads into [`window`](Self::window), splits what arrived off it with
/// [`split`](Self::split) and hands it to [`Connection::handle_bytes`](crate::Connection::handle_bytes).
/// Each read takes the front of a large chunk (64 KiB by default); messages decoded from it
/// share the chunk, which is freed when the last of them is dropped. A new chunk is
/// allocated when less than a minimum window (an eighth of a chunk) is left.
///
/// Memory: the pool holds one chunk. A message a handler keeps keeps its whole chunk alive;
/// connections never keep it for the start of a frame (that part is copied into their own
/// buffer), nor for replies queued to a peer that falls behind, once the driver reported
/// it ([`Connection::handle_write_blocked`](crate::Connection::handle_write_blocked) copies
/// them out). Handlers that keep many small messages for a long time should copy them
/// ([`Bytes::copy_from_slice`](bytes::Bytes::copy_from_slice)), as with any codec that
/// splits frames off a read buffer (tokio-util, tungstenite).
///
/// Chunks are zero-filled when allocated (gale-core has no `unsafe`), which costs about as
/// much as the copy it saves; the allocation per message is what is saved.
///
/// ```
/// use gale_core::buf::ReadPool;
///
/// let mut pool = ReadPool::new(4096);
/// let window = pool.window();
/// window[..5].copy_from_slice(b"hello"); // a socket read of 5 bytes
/// let data = pool.split(5);
/// assert_eq!(&data[..], b"hello");
/// assert_eq!(pool.window().len(), 4096 - 5);
/// ```
#[derive(Debug)]
pub struct ReadPool {
    buf: BytesMut,
    chunk: usize,
}

impl ReadPool {
    /// A pool that allocates chunks of `chunk` bytes (at least 1 KiB); nothing is allocated
    /// until the first [`window`](Self::window).
    pub fn new(chunk: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk: chunk.max(MIN_CHUNK),
        }
    }

    /// The chunk size.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Where the next read goes: what is left of the current chunk, or a new chunk when less
    /// than an eighth of one is left.
    pub fn window(&mut self) -> &mut [u8] {
        if self.buf.len() < self.chunk / 8 {
            self.buf = BytesMut::zeroed(self.chunk);
        }
        &mut self.buf[..]
    }

    /// Takes the first `n` bytes of the window (a read of `n` bytes went into it); `n` larger
    /// than the window is clamped.
    pub fn split(&mut self, n: usize) -> BytesMut {
        self.buf.split_to(n.min(self.buf.len()))
    }
}

impl Default for ReadPool {
    /// A pool of 64 KiB chunks.
    fn default() -> Self {
        Self::new(DEFAULT_CHUNK)
    }
}

/// Default chunk size of a [`ReadPool`].
pub const DEFAULT_CHUNK: usize = 64 * 1024;

/// Smallest chunk.
const MIN_CHUNK: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_share_a_chunk_until_an_eighth_is_left() {
        let mut pool = ReadPool::new(8192);
        assert_eq!(pool.window().len(), 8192);
        let first = pool.split(7000);
        let second_start = pool.window().as_ptr() as usize;
        assert_eq!(second_start, first.as_ptr() as usize + 7000, "same chunk");
        let second = pool.split(200);
        // 992 bytes left, less than 8192 / 8: the next window is a new chunk.
        assert_eq!(pool.window().len(), 8192);
        assert_ne!(
            pool.window().as_ptr() as usize,
            second.as_ptr() as usize + 200
        );
        assert_eq!(
            pool.split(usize::MAX).len(),
            8192,
            "split is clamped to the window"
        );
        assert_eq!(ReadPool::new(10).chunk(), 1024);
    }
}
