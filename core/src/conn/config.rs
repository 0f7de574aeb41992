use std::time::Duration;

/// Per-connection limits and timeouts, shared by every driver.
///
/// Every limit has a documented default and a setter:
///
/// ```
/// use std::time::Duration;
/// use gale_core::ConnConfig;
///
/// let mut config = ConnConfig::default();
/// config
///     .set_idle_timeout(Some(Duration::from_secs(60)))
///     .set_watermarks(16 * 1024, 128 * 1024);
/// assert_eq!(config.high_watermark(), 128 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnConfig {
    read_chunk: usize,
    max_recv_buffer: usize,
    low_watermark: usize,
    high_watermark: usize,
    max_send_buffer: usize,
    idle_timeout: Option<Duration>,
    close_linger: Duration,
    max_user_timers: usize,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            read_chunk: 4 * 1024,
            max_recv_buffer: 32 * 1024 * 1024,
            low_watermark: 32 * 1024,
            high_watermark: 64 * 1024,
            max_send_buffer: 80 * 1024 * 1024,
            idle_timeout: None,
            close_linger: Duration::from_secs(5),
            max_user_timers: 64,
        }
    }
}

impl ConnConfig {
    /// Size of the first read window, and of each window while no frame size is known.
    pub fn read_chunk(&self) -> usize {
        self.read_chunk
    }

    /// Sets [`read_chunk`](Self::read_chunk). Default 4 KiB; clamped to 64 B..=8 KiB.
    pub fn set_read_chunk(&mut self, bytes: usize) -> &mut Self {
        self.read_chunk = bytes.clamp(64, 8 * 1024);
        self
    }

    /// Most bytes buffered for a frame in progress before the connection is closed with
    /// [`CloseReason::RecvBufferFull`](crate::CloseReason::RecvBufferFull). Codecs enforce
    /// their own (smaller) frame limits first; this bounds protocols that never yield.
    pub fn max_recv_buffer(&self) -> usize {
        self.max_recv_buffer
    }

    /// Sets [`max_recv_buffer`](Self::max_recv_buffer). Default 32 MiB.
    pub fn set_max_recv_buffer(&mut self, bytes: usize) -> &mut Self {
        self.max_recv_buffer = bytes.max(1);
        self
    }

    /// Queued bytes above which the connection stops reading and reports not writable.
    pub fn high_watermark(&self) -> usize {
        self.high_watermark
    }

    /// Queued bytes at or below which a connection that went above the high watermark reads
    /// again and raises [`Handler::on_writable`](crate::Handler::on_writable).
    pub fn low_watermark(&self) -> usize {
        self.low_watermark
    }

    /// Sets both watermarks (Netty's defaults: low 32 KiB, high 64 KiB). `low` is clamped to
    /// at most `high`.
    pub fn set_watermarks(&mut self, low: usize, high: usize) -> &mut Self {
        self.high_watermark = high;
        self.low_watermark = low.min(high);
        self
    }

    /// Queued bytes at which sends are refused ([`SendError::BufferFull`](crate::SendError)
    /// in handlers; a close with [`CloseReason::SendBufferFull`](crate::CloseReason) for
    /// commands from a [`ConnHandle`](crate::ConnHandle)). A single message may take the queue
    /// past it; the next send is refused.
    pub fn max_send_buffer(&self) -> usize {
        self.max_send_buffer
    }

    /// Sets [`max_send_buffer`](Self::max_send_buffer). Default 80 MiB: above the largest
    /// default message size of any gale protocol (64 MiB WebSocket messages) plus headroom.
    pub fn set_max_send_buffer(&mut self, bytes: usize) -> &mut Self {
        self.max_send_buffer = bytes.max(1);
        self
    }

    /// Close connections with no read or write activity for this long (gev's `IdleTime`).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Sets [`idle_timeout`](Self::idle_timeout). Default `None` (never).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a closing connection may take to flush what is queued before it is closed
    /// anyway.
    pub fn close_linger(&self) -> Duration {
        self.close_linger
    }

    /// Sets [`close_linger`](Self::close_linger). Default 5 s.
    pub fn set_close_linger(&mut self, linger: Duration) -> &mut Self {
        self.close_linger = linger;
        self
    }

    /// Most per-connection timers a handler may arm at once.
    pub fn max_user_timers(&self) -> usize {
        self.max_user_timers
    }

    /// Sets [`max_user_timers`](Self::max_user_timers). Default 64.
    pub fn set_max_user_timers(&mut self, n: usize) -> &mut Self {
        self.max_user_timers = n;
        self
    }
}
