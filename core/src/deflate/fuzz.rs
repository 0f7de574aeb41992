//! The fuzz helper over [`PerMessageDeflate`] (feature `fuzzing`).

use bytes::BytesMut;

use super::{DeflateConfig, DeflateParams, PerMessageDeflate, WindowBits};

/// For the cargo-fuzz target `inflate`; asserts invariants, panics only on a bug.
///
/// Input: a parameter byte (bit 0 `client_no_context_takeover`, bit 1
/// `server_no_context_takeover`, bits 2-4 and 5-7: client and server window bits minus
/// 8), a byte `m` setting the message limit to `2^(m % 21)` bytes, then fragments, each a
/// byte (bit 7: last of its message; bits 0-6: length) and that many bytes.
///
/// Asserts: no panic on any input; an inflated message never exceeds the limit, nor does
/// the buffer holding it; inflating fragment by fragment gives the same result as
/// inflating the whole message at once; and every message's inflated (or raw) bytes
/// round-trip through compression in both directions under the same parameters.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn fuzz_inflate(data: &[u8]) {
    let [flags, limit, rest @ ..] = data else {
        return;
    };
    let params = params_from(*flags);
    let max = 1usize << (limit % 21);
    let config = DeflateConfig::default();
    let mut split = PerMessageDeflate::new(params, &config);
    let mut whole = PerMessageDeflate::new(params, &config);
    let mut ours = PerMessageDeflate::new(params, &config);
    let mut theirs = PerMessageDeflate::new(params.mirrored(), &config);

    let mut message = Vec::new();
    let mut split_result: Result<Vec<u8>, ()> = Ok(Vec::new());
    let mut input = rest;
    while !input.is_empty() || !message.is_empty() {
        let (fragment, fin) = match input.split_first() {
            Some((&c, tail)) => {
                let n = usize::from(c & 0x7f).min(tail.len());
                input = &tail[n..];
                (&tail[..n], c & 0x80 != 0 || input.is_empty())
            }
            None => (&[][..], true),
        };
        message.extend_from_slice(fragment);
        if let Ok(so_far) = split_result.as_mut() {
            match split.decompress_fragment(fragment, fin, max) {
                Ok(added) => {
                    so_far.extend_from_slice(added);
                    assert!(so_far.len() <= max, "inflated past the limit");
                    assert!(split.inflate_capacity() <= max, "buffered past the limit");
                }
                Err(_) => split_result = Err(()),
            }
        }
        if !fin {
            continue;
        }
        if let Ok(so_far) = &split_result {
            assert_eq!(&split.take_inflated()[..], &so_far[..]);
        }
        let at_once = whole.decompress(&message, max).map(|b| b.to_vec());
        assert_eq!(
            at_once.as_ref().map_err(|_| ()),
            split_result.as_ref().map_err(|_| ()),
            "fragmenting changed the result"
        );
        let plain = at_once.unwrap_or_else(|_| message.clone());
        roundtrip(&mut ours, &mut theirs, &plain);
        roundtrip(&mut theirs, &mut ours, &plain);
        message.clear();
        split_result = Ok(Vec::new());
    }
}

/// Parameters from the fuzz input's first byte.
fn params_from(flags: u8) -> DeflateParams {
    let bits = |n: u8| WindowBits::new(8 + (n & 7)).unwrap_or(WindowBits::MAX);
    DeflateParams::default()
        .with_client_no_context_takeover(flags & 1 != 0)
        .with_server_no_context_takeover(flags & 2 != 0)
        .with_client_max_window_bits(bits(flags >> 2))
        .with_server_max_window_bits(bits(flags >> 5))
}

/// `sender` compresses `plain`, `receiver` (the other side of the same agreement)
/// inflates it back.
fn roundtrip(sender: &mut PerMessageDeflate, receiver: &mut PerMessageDeflate, plain: &[u8]) {
    let mut wire = BytesMut::new();
    // invariant: compression cannot fail on any input.
    sender.compress(plain, &mut wire).expect("compress");
    let back = receiver.decompress(&wire, plain.len());
    assert_eq!(back.as_deref(), Ok(plain), "round trip");
}

#[cfg(test)]
mod tests {
    use super::fuzz_inflate;

    #[test]
    fn inflate_corpus_replays_cleanly() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/inflate");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus ships with the repository") {
            let data = std::fs::read(entry.expect("readable corpus dir").path()).unwrap();
            fuzz_inflate(&data);
            n += 1;
        }
        assert!(n >= 4, "corpus went missing");
    }

    #[test]
    fn inflate_survives_pseudo_random_input() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..400 {
            let data: Vec<u8> = (0..64 + round)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            fuzz_inflate(&data);
        }
    }
}
