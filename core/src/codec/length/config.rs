//! The configuration of [`LengthDelimited`]: builder, field width, byte order, config errors.

use super::LengthDelimited;

/// The configuration of a [`LengthDelimited`] codec, validated by [`build`](Self::build).
///
/// Every setter takes and returns `&mut Self`; the defaults are listed in
/// [`LengthDelimited`]'s docs.
///
/// ```
/// use gale_core::codec::{LengthConfigError, LengthDelimited, LengthWidth};
///
/// // Netty's HDR1 | LEN | HDR2 example: keep HDR2, drop HDR1 and LEN.
/// let codec = LengthDelimited::builder()
///     .length_field_offset(1)
///     .length_field_width(LengthWidth::U16)
///     .length_adjustment(1)
///     .num_skip(3)
///     .build()
///     .unwrap();
/// assert_eq!(codec.header_len(), 3);
///
/// let err = LengthDelimited::builder().max_frame_length(2).build().unwrap_err();
/// assert_eq!(err, LengthConfigError::HeaderTooLong { header_len: 4, max: 2 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthDelimitedBuilder {
    pub(super) width: LengthWidth,
    pub(super) endian: Endian,
    pub(super) offset: usize,
    pub(super) adjustment: i64,
    pub(super) num_skip: Option<usize>,
    pub(super) max_frame_length: usize,
}

/// The width of the length field: 1, 2, 3, 4 or 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LengthWidth {
    /// One byte (lengths up to 255).
    U8,
    /// Two bytes.
    U16,
    /// Three bytes (lengths up to 16 MiB - 1).
    U24,
    /// Four bytes.
    U32,
    /// Eight bytes, read unsigned.
    U64,
}

/// Byte order of the length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Endian {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// Why a [`LengthDelimitedBuilder`] describes no usable codec (a caller mistake, not the peer's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LengthConfigError {
    /// A length field width other than 1, 2, 3, 4 or 8 bytes.
    #[error("length field width must be 1, 2, 3, 4 or 8 bytes, not {0}")]
    InvalidWidth(usize),
    /// The header (offset plus length field) alone is longer than the maximum frame.
    #[error("header of {header_len} bytes exceeds max_frame_length {max}")]
    HeaderTooLong {
        /// `length_field_offset + width`, saturated at `u64::MAX`.
        header_len: u64,
        /// The configured maximum frame length.
        max: usize,
    },
    /// `num_skip` is longer than any frame may be, so no frame could ever be decoded.
    #[error("num_skip of {num_skip} bytes exceeds max_frame_length {max}")]
    SkipTooLong {
        /// The configured `num_skip`.
        num_skip: usize,
        /// The configured maximum frame length.
        max: usize,
    },
}

impl LengthDelimitedBuilder {
    /// The defaults: 4-byte big-endian field at offset 0, no adjustment, header stripped,
    /// 8 MiB maximum.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            width: LengthWidth::U32,
            endian: Endian::Big,
            offset: 0,
            adjustment: 0,
            num_skip: None,
            max_frame_length: LengthDelimited::DEFAULT_MAX_FRAME_LENGTH,
        }
    }

    /// Sets the width of the length field (default [`LengthWidth::U32`]).
    pub fn length_field_width(&mut self, width: LengthWidth) -> &mut Self {
        self.width = width;
        self
    }

    /// Sets the byte order of the length field (default [`Endian::Big`]).
    pub fn endian(&mut self, endian: Endian) -> &mut Self {
        self.endian = endian;
        self
    }

    /// Sets how many bytes precede the length field (default 0).
    pub fn length_field_offset(&mut self, offset: usize) -> &mut Self {
        self.offset = offset;
        self
    }

    /// Sets what is added to the length field's value to get the number of bytes that follow
    /// the field (default 0). Negative when the field counts the header too.
    pub fn length_adjustment(&mut self, adjustment: i64) -> &mut Self {
        self.adjustment = adjustment;
        self
    }

    /// Sets how many bytes to drop from the front of each decoded frame (default: the header,
    /// `length_field_offset + width`, whatever those are at [`build`](Self::build) time).
    pub fn num_skip(&mut self, num_skip: usize) -> &mut Self {
        self.num_skip = Some(num_skip);
        self
    }

    /// Sets the longest frame, header included, that is decoded or encoded (default 8 MiB).
    pub fn max_frame_length(&mut self, max: usize) -> &mut Self {
        self.max_frame_length = max;
        self
    }

    /// Checks the configuration and returns the codec.
    ///
    /// # Errors
    ///
    /// [`LengthConfigError::HeaderTooLong`] when the header alone exceeds `max_frame_length`;
    /// [`LengthConfigError::SkipTooLong`] when `num_skip` does.
    pub fn build(&self) -> Result<LengthDelimited, LengthConfigError> {
        let max = self.max_frame_length;
        let header_len = match self.offset.checked_add(self.width.bytes()) {
            Some(len) if len <= max => len,
            _ => {
                let offset = u64::try_from(self.offset).unwrap_or(u64::MAX);
                let header_len = offset.saturating_add(self.width.bytes() as u64);
                return Err(LengthConfigError::HeaderTooLong { header_len, max });
            }
        };
        let num_skip = self.num_skip.unwrap_or(header_len);
        if num_skip > max {
            return Err(LengthConfigError::SkipTooLong { num_skip, max });
        }
        Ok(LengthDelimited {
            config: self.clone(),
            header_len,
            num_skip,
        })
    }
}

impl Default for LengthDelimitedBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LengthWidth {
    /// The field's width in bytes.
    #[must_use]
    pub const fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
            Self::U24 => 3,
            Self::U32 => 4,
            Self::U64 => 8,
        }
    }

    /// The largest value the field holds.
    #[must_use]
    pub const fn max_value(self) -> u64 {
        match self {
            Self::U64 => u64::MAX,
            _ => (1 << (8 * self.bytes())) - 1,
        }
    }
}

impl TryFrom<usize> for LengthWidth {
    type Error = LengthConfigError;

    /// The width of `bytes` bytes; only 1, 2, 3, 4 and 8 exist.
    fn try_from(bytes: usize) -> Result<Self, LengthConfigError> {
        match bytes {
            1 => Ok(Self::U8),
            2 => Ok(Self::U16),
            3 => Ok(Self::U24),
            4 => Ok(Self::U32),
            8 => Ok(Self::U64),
            _ => Err(LengthConfigError::InvalidWidth(bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::{Endian, LengthConfigError, LengthDelimitedBuilder, LengthWidth};
    use crate::codec::{CodecError, Decoder, LengthDelimited};

    fn build(
        f: impl FnOnce(&mut LengthDelimitedBuilder) -> &mut LengthDelimitedBuilder,
    ) -> LengthDelimited {
        f(&mut LengthDelimited::builder()).build().unwrap()
    }

    #[test]
    fn width_limits_and_invalid_widths() {
        assert_eq!(LengthWidth::U8.max_value(), 0xFF);
        assert_eq!(LengthWidth::U24.max_value(), 0xFF_FFFF);
        assert_eq!(LengthWidth::U32.max_value(), 0xFFFF_FFFF);
        assert_eq!(LengthWidth::U64.max_value(), u64::MAX);
        for bad in [0, 5, 6, 7, 9, 16] {
            assert_eq!(
                LengthWidth::try_from(bad),
                Err(LengthConfigError::InvalidWidth(bad))
            );
        }
    }

    #[test]
    fn defaults() {
        let codec = LengthDelimited::default();
        assert_eq!(codec, LengthDelimited::new());
        assert_eq!(codec.length_field_width(), LengthWidth::U32);
        assert_eq!(codec.endian(), Endian::Big);
        assert_eq!(codec.length_field_offset(), 0);
        assert_eq!(codec.length_adjustment(), 0);
        assert_eq!((codec.header_len(), codec.num_skip()), (4, 4));
        assert_eq!(codec.max_frame_length(), 8 * 1024 * 1024);
        // num_skip follows the header when left unset, also through to_builder().
        let wider = codec.to_builder().length_field_offset(2).build().unwrap();
        assert_eq!((wider.header_len(), wider.num_skip()), (6, 6));
    }

    #[test]
    fn config_validation() {
        let err = |b: &mut LengthDelimitedBuilder| b.build().unwrap_err();
        assert_eq!(
            err(LengthDelimited::builder()
                .length_field_offset(3)
                .max_frame_length(6)),
            LengthConfigError::HeaderTooLong {
                header_len: 7,
                max: 6
            }
        );
        assert_eq!(
            err(LengthDelimited::builder().length_field_offset(usize::MAX)),
            LengthConfigError::HeaderTooLong {
                header_len: u64::MAX,
                max: 8 << 20
            }
        );
        assert_eq!(
            err(LengthDelimited::builder().num_skip(9).max_frame_length(8)),
            LengthConfigError::SkipTooLong {
                num_skip: 9,
                max: 8
            }
        );
        // The header alone may use the whole maximum: then only empty frames fit.
        let mut tight = build(|b| b.max_frame_length(4));
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x00\x00\x00\x00\x01"[..]);
        assert_eq!(tight.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(
            tight.decode(&mut buf),
            Err(CodecError::FrameTooLong { len: 5, max: 4 })
        );
    }
}
