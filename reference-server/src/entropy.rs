//! The platform's random values (session ids, connection ids, state, PKCE verifiers), from a
//! seed when one is given, so a run can be replayed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug)]
pub struct Entropy {
    rng: Mutex<StdRng>,
}

impl Entropy {
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            rng: Mutex::new(rng),
        }
    }

    /// Starts over from `seed` (the simulator reuses one platform across flows).
    pub fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) = StdRng::seed_from_u64(seed);
    }

    /// `prefix` followed by `len` alphanumeric characters.
    pub fn token(&self, prefix: &str, len: usize) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let body: String = (0..len)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        format!("{prefix}{body}")
    }
}
