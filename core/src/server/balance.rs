use std::hash::{Hash, Hasher};

use crate::PeerAddr;

/// How an acceptor spreads connections over event loops (gev's load-balancing strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Each loop in turn.
    #[default]
    RoundRobin,
    /// The loop with the fewest open connections (lowest index on ties).
    LeastConnections,
    /// A hash of the peer's IP address, so one client always lands on the same loop.
    SourceHash,
}

/// Picks loops according to a [`Balance`] strategy.
///
/// ```
/// use gale_core::PeerAddr;
/// use gale_core::server::{Balance, Balancer};
///
/// let mut rr = Balancer::new(Balance::RoundRobin);
/// let loads = [0, 0, 0];
/// let picks: Vec<usize> = (0..4).map(|_| rr.pick(&PeerAddr::Unknown, &loads)).collect();
/// assert_eq!(picks, [0, 1, 2, 0]);
///
/// let mut least = Balancer::new(Balance::LeastConnections);
/// assert_eq!(least.pick(&PeerAddr::Unknown, &[5, 2, 9]), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Balancer {
    strategy: Balance,
    next: usize,
}

impl Balancer {
    /// A balancer using `strategy`.
    pub fn new(strategy: Balance) -> Self {
        Self { strategy, next: 0 }
    }

    /// The index of the loop for a connection from `peer`, given each loop's current load
    /// (open connections). `loads` must not be empty; an empty slice yields 0.
    pub fn pick(&mut self, peer: &PeerAddr, loads: &[usize]) -> usize {
        let n = loads.len();
        if n <= 1 {
            return 0;
        }
        match self.strategy {
            Balance::RoundRobin => {
                let i = self.next % n;
                self.next = self.next.wrapping_add(1);
                i
            }
            Balance::LeastConnections => loads
                .iter()
                .enumerate()
                .min_by_key(|(i, load)| (**load, *i))
                .map_or(0, |(i, _)| i),
            Balance::SourceHash => {
                let mut hasher = Fnv1a::default();
                match peer {
                    PeerAddr::Tcp(addr) => addr.ip().hash(&mut hasher),
                    PeerAddr::Unix(path) => path.hash(&mut hasher),
                    _ => {}
                }
                (hasher.finish() % n as u64) as usize
            }
        }
    }
}

/// FNV-1a: stable across runs and platforms (unlike `DefaultHasher`'s contract), so a client
/// keeps its loop across restarts.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn tcp(ip: [u8; 4], port: u16) -> PeerAddr {
        PeerAddr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
    }

    #[test]
    fn source_hash_is_sticky_per_ip_and_spreads_ips() {
        let mut b = Balancer::new(Balance::SourceHash);
        let loads = [0; 4];
        let first = b.pick(&tcp([10, 0, 0, 1], 1000), &loads);
        assert_eq!(b.pick(&tcp([10, 0, 0, 1], 2000), &loads), first);
        let spread: std::collections::HashSet<usize> = (0..64u8)
            .map(|i| b.pick(&tcp([10, 0, 1, i], 1), &loads))
            .collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn least_connections_breaks_ties_by_index() {
        let mut b = Balancer::new(Balance::LeastConnections);
        assert_eq!(b.pick(&PeerAddr::Unknown, &[3, 1, 1]), 1);
    }

    #[test]
    fn single_loop_always_zero() {
        for s in [
            Balance::RoundRobin,
            Balance::LeastConnections,
            Balance::SourceHash,
        ] {
            assert_eq!(Balancer::new(s).pick(&PeerAddr::Unknown, &[7]), 0);
            assert_eq!(Balancer::new(s).pick(&PeerAddr::Unknown, &[]), 0);
        }
    }
}
