//! Where a core's randomness comes from. The protocol crate cannot ask the operating system, so
//! the caller hands it in: the runtime draws it from the OS, a simulation derives it from a
//! number so that a run can be replayed.

use std::fmt;

/// A core's starting randomness, in two parts because they need different strengths.
#[derive(Clone, Copy)]
pub struct Seed {
    /// Drives the protocol's choices (probe order, gossip targets, jitter) through a fast
    /// generator: they must be spread, not secret.
    pub choices: u64,
    /// Keys the ChaCha stream that AES-GCM nonces are drawn from. Nonces must never repeat
    /// between two nodes sharing a key, so in production this comes from the OS.
    pub nonces: [u8; 32],
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seed")
            .field("choices", &self.choices)
            .finish_non_exhaustive()
    }
}

/// A reproducible seed for simulations and tests. Two nodes given the same number draw the
/// same nonces, so it is not for encrypted traffic between real agents.
impl From<u64> for Seed {
    fn from(choices: u64) -> Seed {
        // SplitMix64 spreads the number over the 32 bytes.
        let mut state = choices;
        let mut nonces = [0u8; 32];
        for chunk in nonces.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Seed { choices, nonces }
    }
}
