//! Random tokens a text cannot guess: the data-block markers of a prompt and the `stop-commands`
//! token of a GitHub Actions log are new every run, so migration text cannot close or resume them.

use std::hash::{BuildHasher, Hasher};

/// A nonce for one run: 128 random bits in hex.
pub fn nonce() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// 64 random bits: the standard library seeds each `RandomState` from the operating system.
pub fn random_u64() -> u64 {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
