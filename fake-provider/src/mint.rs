//! Deterministic values: every code, token and request id the provider hands out derives from
//! one seed and a counter, so the same seed gives the same values in the same order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Mints opaque values from a seed. Same seed, same sequence.
#[derive(Debug, Clone)]
pub struct Mint {
    seed: u64,
    counter: u64,
}

impl Mint {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    /// A fresh value such as `at_Zx3…` (prefix, then 32 URL-safe characters).
    pub fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.seed.to_be_bytes());
        hasher.update(prefix.as_bytes());
        hasher.update(self.counter.to_be_bytes());
        let digest = hasher.finalize();
        let encoded = URL_SAFE_NO_PAD.encode(digest);
        format!("{prefix}{}", &encoded[..32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_mints_the_same_values_and_another_seed_does_not() {
        let mut a = Mint::new(7);
        let mut b = Mint::new(7);
        let mut c = Mint::new(8);
        let from_a: Vec<_> = (0..3).map(|_| a.next("at_")).collect();
        let from_b: Vec<_> = (0..3).map(|_| b.next("at_")).collect();
        let from_c: Vec<_> = (0..3).map(|_| c.next("at_")).collect();
        assert_eq!(from_a, from_b);
        assert_ne!(from_a, from_c);
        assert_ne!(from_a[0], from_a[1]);
        assert!(from_a[0].starts_with("at_") && from_a[0].len() == 35);
    }
}
