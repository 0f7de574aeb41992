//! Payload masking ([RFC 6455 §5.3](https://www.rfc-editor.org/rfc/rfc6455#section-5.3)).
//!
//! Every byte of a client frame's payload is XORed with the 4-byte masking key, byte `i` with
//! `key[i % 4]`. Without `unsafe` the fast path is plain safe Rust the compiler vectorizes:
//! the key is widened to a `u64` and the payload processed 8 bytes at a time over
//! `chunks_exact_mut`, with the (at most 7) trailing bytes done one by one.

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the payload (so a payload
/// unmasked in pieces gives the same bytes as one call over the whole). Masking twice with
/// the same key and offset restores the input.
///
/// ```
/// use gale_core::ws::apply_mask;
///
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut whole = *b"Hello, WebSocket!";
/// apply_mask(&mut whole, key, 0);
/// let mut pieces = *b"Hello, WebSocket!";
/// let (a, b) = pieces.split_at_mut(5);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 5);
/// assert_eq!(whole, pieces);
/// assert_eq!(&whole[..5], &[0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    if buf.len() < WIDE_BELOW {
        mask_bytes(buf, key);
        return;
    }
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        // invariant: chunks_exact_mut yields slices of exactly 8 bytes.
        let word: [u8; 8] = (&*chunk).try_into().unwrap_or([0; 8]);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Whole 8-byte words keep the key's phase, so the tail starts at key[0] again.
    mask_bytes(chunks.into_remainder(), key);
}

/// The key as seen by a payload that starts `offset` bytes in.
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset % 4;
    [key[s], key[(s + 1) % 4], key[(s + 2) % 4], key[(s + 3) % 4]]
}

fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Payloads shorter than this are masked byte by byte (no setup cost).
const WIDE_BELOW: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example() {
        // RFC 6455 §5.7: a masked "Hello".
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn matches_reference_for_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..80 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let (mut fast, mut slow) = (data.clone(), data);
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn prop_split_anywhere_equals_whole() {
        fn prop(data: Vec<u8>, key: u32, cut: usize) -> bool {
            let key = key.to_be_bytes();
            let cut = if data.is_empty() { 0 } else { cut % data.len() };
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            let mut back = whole.clone();
            apply_mask(&mut back, key, 0);
            whole == pieces && back == data
        }
        QuickCheck::new().quickcheck(prop as fn(Vec<u8>, u32, usize) -> bool);
    }
}
