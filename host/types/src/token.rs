//! Profile tokens: `gig_<43 base64url characters>` (256 random bits).
//!
//! Invariant 6: a token is shown once, when it is made, and only its SHA-256 is ever stored. A token is
//! checked by hashing what the client presents and looking the hash up, so the store never holds anything a
//! reader could present.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

const TOKEN_PREFIX: &str = "gig_";

/// A freshly minted token: printable once, then dropped.
pub struct NewToken(String);

impl NewToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// What the store keeps of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }
}

/// Random identifiers for sessions and the like: 128 bits, hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_stably() {
        let a = NewToken::generate();
        let b = NewToken::generate();
        assert!(a.reveal().starts_with("gig_"));
        assert_eq!(a.reveal().len(), 4 + 43);
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(a.hash(), TokenHash::of(a.reveal()));
        assert_ne!(a.hash(), b.hash());
    }
}
