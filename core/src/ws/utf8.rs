//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split into fragments, and a fragment into reads, at any byte, even
//! inside a code point. [`Utf8Validator`] checks each piece as it arrives and fails on the
//! first byte that cannot start or continue a valid sequence (Autobahn 6.x "fail fast"),
//! keeping at most 3 bytes of an unfinished code point between pieces. The work per piece is
//! `std::str::from_utf8` (ASCII runs word at a time), plus at most 4 bytes re-checked at a
//! piece boundary.

/// Validates UTF-8 fed in pieces, failing on the first byte that cannot start or continue a
/// valid sequence, and keeping at most 3 bytes of an unfinished code point between pieces.
///
/// ```
/// use gale_core::ws::Utf8Validator;
///
/// let euro = "€".as_bytes(); // e2 82 ac
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&euro[..1]).is_ok());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&[0xe2]).is_ok()); // could still become a valid code point
/// assert!(v.feed(&[0x28]).is_err()); // cannot: fails on this byte
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The bytes of an unfinished code point at the end of the last piece.
    pending: [u8; 4],
    pending_len: u8,
}

/// Invalid UTF-8 in a text message or close reason (close code 1007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8 in text")]
#[non_exhaustive]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Self {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Checks the next piece of the text.
    ///
    /// # Errors
    ///
    /// [`InvalidUtf8`] as soon as the bytes seen so far cannot be the start of valid UTF-8.
    /// The validator is then spent; start a new one for another text.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            piece = self.complete_pending(piece)?;
            if self.pending_len > 0 {
                return Ok(()); // the piece was too short to finish the code point
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                // A valid prefix of a code point (at most 3 bytes) ends the piece.
                let tail = &piece[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the text.
    ///
    /// # Errors
    ///
    /// [`InvalidUtf8`] if it ends inside a code point.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let unfinished = self.pending_len > 0;
        *self = Self::new();
        if unfinished { Err(InvalidUtf8) } else { Ok(()) }
    }

    /// Whether the text so far ends inside a code point.
    pub fn is_mid_code_point(&self) -> bool {
        self.pending_len > 0
    }

    /// Moves bytes from the front of `piece` into the pending code point until it is
    /// complete or `piece` runs out; returns the rest of `piece`.
    fn complete_pending<'p>(&mut self, piece: &'p [u8]) -> Result<&'p [u8], InvalidUtf8> {
        let have = usize::from(self.pending_len);
        let need = sequence_len(self.pending[0]).saturating_sub(have);
        let take = need.min(piece.len());
        let mut buf = self.pending;
        buf[have..have + take].copy_from_slice(&piece[..take]);
        let len = have + take;
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => self.pending_len = 0,
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(_) => {
                self.pending = buf;
                self.pending_len = len as u8;
            }
        }
        Ok(&piece[take..])
    }
}

/// Length of the sequence a valid lead byte starts (pending bytes always start with one).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;

    fn feed_split(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&data[start..cut])?;
            start = cut;
        }
        v.feed(&data[start..])?;
        v.finish()
    }

    #[test]
    fn every_two_way_split_agrees_with_std() {
        let samples: [&[u8]; 10] = [
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "\u{10ffff}\u{fffd}\u{7ff}\u{800}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"ab\xf0\x9f\x98",
            b"\xed\x9f\xbf\xee\x80\x80",
            b"\xff",
        ];
        for s in samples {
            let expect = std::str::from_utf8(s).is_ok();
            for cut in 0..=s.len() {
                assert_eq!(feed_split(s, &[cut]).is_ok(), expect, "{s:x?} cut at {cut}");
            }
        }
    }

    #[test]
    fn fails_on_the_first_impossible_byte() {
        // U+110000 would need f4 90: the second byte already rules it out.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ok \xf4").is_ok());
        assert!(v.feed(b"\x90").is_err());
        // A surrogate (ed a0 ..) fails on a0.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xed").is_ok());
        assert!(v.feed(b"\xa0").is_err());
    }

    #[test]
    fn unfinished_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xe2\x82").is_ok());
        assert!(v.is_mid_code_point());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        assert!(!v.is_mid_code_point(), "finish resets");
    }

    #[test]
    fn prop_any_split_agrees_with_std() {
        fn prop(data: Vec<u8>, cuts: Vec<usize>, mostly_text: bool) -> bool {
            let data = if mostly_text {
                String::from_utf8_lossy(&data).into_owned().into_bytes()
            } else {
                data
            };
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            feed_split(&data, &cuts).is_ok() == std::str::from_utf8(&data).is_ok()
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<u8>, Vec<usize>, bool) -> bool);
    }

    #[test]
    fn prop_byte_at_a_time_fails_exactly_where_std_does() {
        fn prop(data: Vec<u8>) -> bool {
            let mut v = Utf8Validator::new();
            let first_bad = data
                .iter()
                .enumerate()
                .find_map(|(i, b)| v.feed(std::slice::from_ref(b)).is_err().then_some(i));
            // Oracle: the first prefix that std calls invalid (not merely unfinished).
            let expect = (0..data.len()).find(|&i| {
                std::str::from_utf8(&data[..=i]).is_err_and(|e| e.error_len().is_some())
            });
            first_bad == expect
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<u8>) -> bool);
    }
}
