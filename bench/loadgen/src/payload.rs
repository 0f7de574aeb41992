//! Message payloads: random bytes (incompressible), or JSON text that looks like an API's
//! (records of ids, names, numbers, flags and tags), which compresses like real traffic.
//!
//! Both are deterministic: every byte comes from the connection's seeded [`WyRand`], so a run
//! is reproducible and every message differs from the others.

use std::fmt::Write;

use crate::rng::WyRand;

/// What messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Payload {
    /// Random bytes (binary frames).
    Random,
    /// JSON text of exactly the message size (text frames).
    Json,
}

/// Fills `buf` (already `size` long) with the payload of one message.
pub(crate) fn fill(kind: Payload, rng: &mut WyRand, buf: &mut Vec<u8>) {
    match kind {
        Payload::Random => rng.fill(buf),
        Payload::Json => json(rng, buf),
    }
}

/// Overwrites `buf` with a JSON document of exactly `buf.len()` bytes (ASCII): an object
/// with a list of records and, to hit the size, a padding string. Below 64 bytes, letters.
fn json(rng: &mut WyRand, buf: &mut Vec<u8>) {
    let size = buf.len();
    let mut pick = |n: u64| rng.next_u64() % n;
    if size < 64 {
        buf.iter_mut().for_each(|b| *b = b'a' + pick(26) as u8);
        return;
    }
    let mut s = String::with_capacity(size + 256);
    let _ = write!(
        s,
        "{{\"kind\":\"batch\",\"seq\":{},\"items\":[",
        pick(1_000_000)
    );
    // Close with `],"pad":"…"}` (10 bytes + padding); a record is at most ~220 bytes.
    let mut first = true;
    while s.len() + 240 < size {
        if !first {
            s.push(',');
        }
        first = false;
        let _ = write!(
            s,
            "{{\"id\":{},\"user\":\"{}.{}{}\",\"email\":\"{}@{}.example\",\"score\":{}.{:02},\
             \"active\":{},\"tags\":[\"{}\",\"{}\"],\"ts\":{},\"note\":\"{} {} {}\"}}",
            100_000 + pick(900_000),
            WORDS[pick(32) as usize],
            WORDS[pick(32) as usize],
            pick(1000),
            WORDS[pick(32) as usize],
            WORDS[pick(32) as usize],
            pick(10_000),
            pick(100),
            pick(2) == 1,
            WORDS[pick(32) as usize],
            WORDS[pick(32) as usize],
            1_732_000_000_000 + pick(100_000_000),
            WORDS[pick(32) as usize],
            WORDS[pick(32) as usize],
            WORDS[pick(32) as usize],
        );
    }
    s.push_str("],\"pad\":\"");
    while s.len() + 2 < size {
        s.push((b'a' + pick(26) as u8) as char);
    }
    s.push_str("\"}");
    buf.clear();
    buf.extend_from_slice(s.as_bytes());
}

const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber", "berlin", "cobalt", "dune",
    "ember", "fjord",
];

#[cfg(test)]
mod tests {
    use super::{Payload, fill};
    use crate::rng::WyRand;

    #[test]
    fn json_has_the_exact_size_and_differs_per_message() {
        let mut rng = WyRand::new(3);
        for size in [1, 63, 64, 100, 300, 2048, 4096, 16384] {
            let mut a = vec![0u8; size];
            let mut b = vec![0u8; size];
            fill(Payload::Json, &mut rng, &mut a);
            fill(Payload::Json, &mut rng, &mut b);
            assert_eq!((a.len(), b.len()), (size, size));
            assert_ne!(a, b);
            assert!(a.is_ascii());
            if size >= 64 {
                let s = std::str::from_utf8(&a).unwrap();
                assert!(
                    s.starts_with("{\"kind\":\"batch\"") && s.ends_with("\"}"),
                    "{s}"
                );
            }
        }
    }
}
