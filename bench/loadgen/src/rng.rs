//! A cheap, seedable PRNG for payloads (wyrand): one 64-bit multiply per 8 bytes.
//!
//! Not cryptographic; it only has to make every message different so that an echo server
//! that mixes up, drops or repeats bytes is caught by the byte-for-byte check.

/// wyrand state.
#[derive(Debug, Clone)]
pub(crate) struct WyRand(u64);

impl WyRand {
    /// A generator whose stream is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Fills `buf` with random bytes.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let r = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&r[..rest.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WyRand;

    #[test]
    fn same_seed_same_stream_and_tail_filled() {
        let (mut a, mut b) = (WyRand::new(7), WyRand::new(7));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x[8..], [0u8; 5]);
        let mut c = WyRand::new(8);
        let mut z = [0u8; 13];
        c.fill(&mut z);
        assert_ne!(x, z);
    }
}
