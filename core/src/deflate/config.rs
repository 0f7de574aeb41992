//! [`DeflateConfig`], the server-wide permessage-deflate settings, and [`WindowBits`].

use std::fmt;

/// The base-2 logarithm of an LZ77 sliding window, 8 to 15: the value of
/// `server_max_window_bits` and `client_max_window_bits` (RFC 7692 §7.1.2).
///
/// ```
/// use gale_core::deflate::WindowBits;
///
/// assert_eq!(WindowBits::new(10).map(WindowBits::window_size), Some(1024));
/// assert_eq!(WindowBits::new(16), None);
/// assert_eq!(WindowBits::default(), WindowBits::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

impl WindowBits {
    /// The smallest window RFC 7692 allows: 2^8 = 256 bytes.
    pub const MIN: Self = Self(8);
    /// The largest window, DEFLATE's own: 2^15 = 32 KiB. Also what a peer may use when no
    /// `*_max_window_bits` parameter limits it.
    pub const MAX: Self = Self(15);

    /// `bits` if it is in 8..=15.
    pub const fn new(bits: u8) -> Option<Self> {
        if bits >= Self::MIN.0 && bits <= Self::MAX.0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// The number of bits.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The window size in bytes, `1 << bits`.
    pub const fn window_size(self) -> usize {
        1 << self.0
    }

    /// The window bits handed to zlib-rs. 8 becomes 9, as in zlib itself ("until 256-byte
    /// window bug fixed", zlib's `deflateInit2`), because raw DEFLATE refuses 8: with 9 bits
    /// the compressor's matches reach back at most `512 - 262 = 250` bytes (zlib's
    /// `MAX_DIST`), so its output is valid for a peer with a 256-byte window; and an
    /// inflater with a larger window decodes anything a smaller one does.
    pub(crate) fn zlib(self) -> u8 {
        self.0.max(9)
    }
}

impl Default for WindowBits {
    fn default() -> Self {
        Self::MAX
    }
}

impl fmt::Display for WindowBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Server-wide permessage-deflate settings: whether to accept the extension and, when a
/// client offers it, what to agree to.
///
/// | setting | default | effect |
/// |---|---|---|
/// | [`enabled`](Self::is_enabled) | `false` | accept offers at all |
/// | [`server_max_window_bits`](Self::server_max_window_bits) | 15 | cap on the window this server compresses with |
/// | [`server_no_context_takeover`](Self::server_no_context_takeover) | `false` | compress every message on its own, even if the client did not ask |
/// | [`client_no_context_takeover`](Self::client_no_context_takeover) | `false` | ask the client to compress every message on its own |
/// | [`level`](Self::level) | 1 | zlib compression level, 0 (store) to 9 |
/// | [`threshold`](Self::threshold) | 256 bytes | smaller messages are sent uncompressed |
///
/// Off by default because of what it costs: a connection that negotiated the extension
/// holds about 371 KiB of compressor state (zlib-rs at 15 window bits; 245 KiB at 9) and
/// 46 KiB of decompressor state from its first compressed message on, unless no context
/// takeover was agreed for that direction, in which case the state lives only while a
/// message is being (de)compressed. See [the module docs](super#memory).
///
/// ```
/// use gale_core::deflate::{DeflateConfig, WindowBits};
///
/// let mut config = DeflateConfig::default();
/// config
///     .set_enabled(true)
///     .set_server_no_context_takeover(true)
///     .set_level(6)
///     .set_threshold(512);
/// let params = config
///     .negotiate([&b"permessage-deflate; client_max_window_bits"[..]])
///     .expect("offer accepted");
/// assert_eq!(
///     params.to_string(),
///     "permessage-deflate; server_no_context_takeover"
/// );
/// assert_eq!(params.client_max_window_bits(), WindowBits::MAX);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    enabled: bool,
    server_max_window_bits: WindowBits,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    level: u32,
    threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            server_max_window_bits: WindowBits::MAX,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            level: DEFAULT_LEVEL,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl DeflateConfig {
    /// Whether offers of permessage-deflate are accepted.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Sets [`is_enabled`](Self::is_enabled). Default `false`.
    pub fn set_enabled(&mut self, enabled: bool) -> &mut Self {
        self.enabled = enabled;
        self
    }

    /// The largest window this server compresses with. A client's `server_max_window_bits`
    /// can lower it further; a value below 15 is announced in the response. Smaller windows
    /// compress repetitive traffic less well and save little memory with zlib-rs (its hash
    /// table is 128 KiB whatever the window).
    pub fn server_max_window_bits(&self) -> WindowBits {
        self.server_max_window_bits
    }

    /// Sets [`server_max_window_bits`](Self::server_max_window_bits). Default 15.
    pub fn set_server_max_window_bits(&mut self, bits: WindowBits) -> &mut Self {
        self.server_max_window_bits = bits;
        self
    }

    /// Whether the server compresses every message on its own (answers
    /// `server_no_context_takeover` even when the client did not offer it), so that its
    /// compressor can be freed between messages. Costs compression ratio on repetitive
    /// traffic and, on a few connections, some CPU per message (setting up the compressor);
    /// saves ~371 KiB per idle connection, and CPU with many busy connections, whose kept
    /// compressors would no longer fit in the CPU caches (see the [module docs](crate::deflate)).
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// Sets [`server_no_context_takeover`](Self::server_no_context_takeover). Default `false`.
    pub fn set_server_no_context_takeover(&mut self, on: bool) -> &mut Self {
        self.server_no_context_takeover = on;
        self
    }

    /// Whether the server asks clients to compress every message on its own (answers
    /// `client_no_context_takeover` even when the client did not offer it, which RFC 7692
    /// §7.1.1.2 allows), so that the decompressor can be freed between messages: saves
    /// ~46 KiB per idle connection.
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// Sets [`client_no_context_takeover`](Self::client_no_context_takeover). Default `false`.
    pub fn set_client_no_context_takeover(&mut self, on: bool) -> &mut Self {
        self.client_no_context_takeover = on;
        self
    }

    /// The zlib compression level: 0 stores, 1 is fastest, 9 compresses best.
    ///
    /// On 2-16 KiB JSON-like messages (`core/benches/deflate.rs`, context takeover),
    /// level 1 compresses at 370-630 MB/s to 27% of the size, level 6 (zlib's default) at
    /// 55-100 MB/s to 17-19%: six to eight times the CPU for a third fewer bytes. A server
    /// compresses every message for every connection, so the default is 1 (as in gorilla's
    /// websocket).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Sets [`level`](Self::level); values above 9 mean 9. Default 1.
    pub fn set_level(&mut self, level: u32) -> &mut Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear), which
    /// RFC 7692 allows message by message: they would hardly shrink, and a message that is
    /// never compressed never allocates the compressor.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Sets [`threshold`](Self::threshold). Default 256 bytes; 0 compresses everything.
    pub fn set_threshold(&mut self, bytes: usize) -> &mut Self {
        self.threshold = bytes;
        self
    }
}

const DEFAULT_LEVEL: u32 = 1;
const DEFAULT_THRESHOLD: usize = 256;

#[cfg(test)]
mod tests {
    use super::{DeflateConfig, WindowBits};

    #[test]
    fn window_bits_bounds() {
        assert_eq!(WindowBits::new(7), None);
        assert_eq!(WindowBits::new(0), None);
        assert_eq!(WindowBits::new(8), Some(WindowBits::MIN));
        assert_eq!(WindowBits::new(15), Some(WindowBits::MAX));
        assert_eq!(WindowBits::new(16), None);
        assert_eq!(WindowBits::MIN.zlib(), 9, "raw deflate cannot do 8");
        assert_eq!(WindowBits::new(12).map(WindowBits::zlib), Some(12));
        assert_eq!(WindowBits::MIN.window_size(), 256);
        assert_eq!(WindowBits::MAX.to_string(), "15");
    }

    #[test]
    fn defaults_and_setters() {
        let mut c = DeflateConfig::default();
        assert!(!c.is_enabled());
        assert_eq!(c.server_max_window_bits(), WindowBits::MAX);
        assert!(!c.server_no_context_takeover());
        assert!(!c.client_no_context_takeover());
        assert_eq!(c.level(), 1);
        assert_eq!(c.threshold(), 256);
        c.set_enabled(true)
            .set_server_max_window_bits(WindowBits::MIN)
            .set_server_no_context_takeover(true)
            .set_client_no_context_takeover(true)
            .set_level(42)
            .set_threshold(0);
        assert!(c.is_enabled());
        assert_eq!(c.server_max_window_bits(), WindowBits::MIN);
        assert!(c.server_no_context_takeover() && c.client_no_context_takeover());
        assert_eq!(c.level(), 9, "clamped");
        assert_eq!(c.threshold(), 0);
    }
}
