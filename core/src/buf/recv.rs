use bytes::BytesMut;

/// The receive buffer of one connection.
///
/// A driver asks for a window with [`read_buf`](Self::read_buf), reads from its socket into
/// it, and reports how many bytes arrived with [`handle_read`](Self::handle_read). Decoders
/// consume complete frames from the front of [`bytes_mut`](Self::bytes_mut).
///
/// Memory policy:
/// - no allocation until the first read; the first window is `read_chunk` bytes (4 KiB by
///   default, [`ConnConfig::set_read_chunk`](crate::ConnConfig::set_read_chunk));
/// - when the frame in progress declares its size, capacity for the whole frame is reserved
///   once (without zeroing it), and windows of at most 64 KiB are handed out;
/// - without a size hint, capacity doubles when a window is full;
/// - after decoding, an empty buffer frees its allocation (frames split off it keep only the
///   bytes they use alive), and a mostly empty large buffer is shrunk.
///
/// Windows are zero-filled before being handed out (gale-core has no `unsafe`); zeroing is
/// bounded by the window size, not by the buffered length.
#[derive(Debug)]
pub struct RecvBuf {
    buf: BytesMut,
    /// The first window's size (at most `u32::MAX`; every connection holds one of these, so
    /// the fields are kept small).
    read_chunk: u32,
    /// Length of the outstanding window at the end of `buf`, 0 when none is out (a window
    /// is never empty).
    window: u32,
}

impl RecvBuf {
    /// Creates an empty buffer that will hand out windows of `read_chunk` bytes (at least 64).
    pub fn new(read_chunk: usize) -> Self {
        let read_chunk = read_chunk.clamp(MIN_CHUNK, u32::MAX as usize);
        Self {
            buf: BytesMut::new(),
            // Cannot truncate: clamped above.
            read_chunk: read_chunk as u32,
            window: 0,
        }
    }

    /// Returns a zeroed window at the end of the buffer to read into.
    ///
    /// `frame_hint` is the total size of the frame in progress when known (from
    /// [`Protocol::frame_size_hint`](crate::Protocol::frame_size_hint)); capacity for it is
    /// reserved once. Call [`handle_read`](Self::handle_read) with the number of bytes read
    /// (0 if none) before touching the buffer again.
    pub fn read_buf(&mut self, frame_hint: Option<usize>) -> &mut [u8] {
        self.cancel_window();
        let len = self.buf.len();
        let chunk = self.read_chunk();
        let want = match frame_hint {
            Some(total) if total > len => (total - len).max(chunk),
            _ if self.buf.capacity() - len >= chunk => self.buf.capacity() - len,
            // Double, starting at read_chunk.
            _ => len.max(chunk),
        };
        self.buf.reserve(want);
        // At most max(MAX_WINDOW, read_chunk), which fits in a u32.
        let window = (self.buf.capacity() - len).min(MAX_WINDOW.max(chunk));
        self.buf.resize(len + window, 0);
        self.window = u32::try_from(window).unwrap_or(u32::MAX);
        &mut self.buf[len..]
    }

    /// Records that `n` bytes were read into the window returned by
    /// [`read_buf`](Self::read_buf). `n` larger than the window is clamped.
    pub fn handle_read(&mut self, n: usize) {
        let window = std::mem::take(&mut self.window) as usize;
        let base = self.buf.len() - window;
        self.buf.truncate(base + n.min(window));
    }

    /// Reserves room for `incoming` more bytes, or for the whole frame in progress when
    /// `frame_hint` (its total size) says it is larger, so the buffer grows once per frame.
    pub fn reserve_for(&mut self, frame_hint: Option<usize>, incoming: usize) {
        self.cancel_window();
        let len = self.buf.len();
        let want = match frame_hint {
            Some(total) if total > len + incoming => total - len,
            _ => incoming,
        };
        self.buf.reserve(want);
    }

    /// Appends bytes by copying them (for embedders that already hold the input in a slice).
    ///
    /// Into an empty buffer with no capacity, the bytes go into an allocation of exactly
    /// their size, so a decoder that takes them all (raw bytes) hands them on without
    /// another allocation.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.cancel_window();
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::from(data);
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// Appends `data` as [`extend_from_slice`](Self::extend_from_slice) does, reserving
    /// first for the whole frame in progress when `frame_hint` (its total size) says it is
    /// larger, so the buffer grows once per frame.
    pub(crate) fn append(&mut self, frame_hint: Option<usize>, data: &[u8]) {
        self.cancel_window();
        let len = self.buf.len();
        if let Some(total) = frame_hint
            && total > len + data.len()
        {
            self.buf.reserve(total - len);
        }
        self.extend_from_slice(data);
    }

    /// Takes bytes that arrived in a buffer handed over by the caller. An empty buffer adopts
    /// them as they are, without copying (decoded messages then share the caller's
    /// allocation); otherwise they are appended. Returns whether they were adopted: call
    /// [`unshare`](Self::unshare) after decoding.
    pub(crate) fn adopt(&mut self, frame_hint: Option<usize>, data: BytesMut) -> bool {
        self.cancel_window();
        if self.buf.is_empty() {
            self.buf = data;
            true
        } else {
            self.append(frame_hint, &data);
            false
        }
    }

    /// After decoding adopted bytes: what is left of them (the start of a frame) is copied
    /// into an allocation of the connection's own, sized for the whole frame when
    /// `frame_hint` knows it, so that a waiting connection never keeps the caller's buffer
    /// alive.
    pub(crate) fn unshare(&mut self, frame_hint: Option<usize>) {
        self.cancel_window();
        let len = self.buf.len();
        if len == 0 {
            self.buf = BytesMut::new();
            return;
        }
        let mut own = BytesMut::with_capacity(frame_hint.unwrap_or(0).max(len));
        own.extend_from_slice(&self.buf);
        self.buf = own;
    }

    /// The buffered bytes, for decoders to consume from the front.
    pub fn bytes_mut(&mut self) -> &mut BytesMut {
        self.cancel_window();
        &mut self.buf
    }

    /// Number of buffered, not yet consumed bytes.
    pub fn len(&self) -> usize {
        self.buf.len() - self.window as usize
    }

    /// Whether no bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of heap the buffer holds (its capacity).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives memory back after decoding: frees an empty buffer and shrinks a large buffer that
    /// is mostly empty.
    ///
    /// An empty buffer is replaced even when it reports no capacity: after a decoder split
    /// everything off, it may still share (and keep alive) the allocation those bytes live in.
    pub fn release(&mut self) {
        self.cancel_window();
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let chunk = self.read_chunk();
        if len == 0 {
            self.buf = BytesMut::new();
        } else if cap > SHRINK_ABOVE && cap / 4 > len.max(chunk) {
            let mut smaller = BytesMut::with_capacity(len.max(chunk));
            smaller.extend_from_slice(&self.buf);
            self.buf = smaller;
        }
    }

    fn read_chunk(&self) -> usize {
        self.read_chunk as usize
    }

    fn cancel_window(&mut self) {
        let window = std::mem::take(&mut self.window) as usize;
        if window > 0 {
            self.buf.truncate(self.buf.len() - window);
        }
    }
}

/// Smallest read window.
const MIN_CHUNK: usize = 64;
/// Largest window handed out by one `read_buf` call (bounds zeroing work per read).
const MAX_WINDOW: usize = 64 * 1024;
/// Buffers above this capacity are shrunk when mostly empty.
const SHRINK_ABOVE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_heap_until_first_read() {
        let b = RecvBuf::new(4096);
        assert_eq!(b.capacity(), 0);
        assert!(b.is_empty());
    }

    #[test]
    fn first_window_is_read_chunk() {
        let mut b = RecvBuf::new(4096);
        assert_eq!(b.read_buf(None).len(), 4096);
        b.handle_read(10);
        assert_eq!(b.len(), 10);
    }

    #[test]
    fn partial_read_then_drain_frees_memory() {
        let mut b = RecvBuf::new(4096);
        b.read_buf(None)[..3].copy_from_slice(b"abc");
        b.handle_read(3);
        assert_eq!(&b.bytes_mut()[..], b"abc");
        let _ = b.bytes_mut().split();
        b.release();
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn grows_by_doubling_without_hint() {
        let mut b = RecvBuf::new(1024);
        for _ in 0..5 {
            let n = b.read_buf(None).len();
            b.handle_read(n);
        }
        assert_eq!(b.len(), b.capacity().min(b.len()));
        assert!(b.len() >= 5 * 1024);
    }

    #[test]
    fn hint_reserves_whole_frame_once_but_windows_are_bounded() {
        let mut b = RecvBuf::new(4096);
        let w = b.read_buf(Some(1 << 20)).len();
        assert!(w <= MAX_WINDOW);
        assert!(b.capacity() >= 1 << 20);
        b.handle_read(w);
        assert!(b.capacity() >= 1 << 20);
    }

    #[test]
    fn unreported_window_is_not_data() {
        let mut b = RecvBuf::new(4096);
        let _ = b.read_buf(None);
        assert_eq!(b.len(), 0);
        assert!(b.bytes_mut().is_empty());
    }

    #[test]
    fn large_mostly_empty_buffer_shrinks() {
        let mut b = RecvBuf::new(4096);
        b.extend_from_slice(&vec![1u8; 1 << 20]);
        let _ = b.bytes_mut().split_to((1 << 20) - 10);
        b.release();
        assert_eq!(b.len(), 10);
        assert!(b.capacity() <= 64 * 1024);
    }

    #[test]
    fn handle_read_clamps_to_window() {
        let mut b = RecvBuf::new(128);
        let w = b.read_buf(None).len();
        b.handle_read(w + 1000);
        assert_eq!(b.len(), w);
    }
}
