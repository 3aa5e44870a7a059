//! Ed25519 keys and signatures in the registry's formats: the public key is 64 hex characters, the private
//! key 128 (Go's `seed ‖ public`), and `index.json.sig` is the 128-hex signature of the raw index bytes
//! followed by a newline. Plain Ed25519 (RFC 8032), no prehash.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("public key must be 32 hex-encoded bytes (64 hex characters)")]
    PublicKey,
    #[error("signing key must be 64 hex-encoded bytes (128 hex characters: the seed, then the public key)")]
    SigningKey,
    #[error("the signing key's public half does not belong to its seed")]
    Mismatch,
    #[error("no randomness available to make a key")]
    Random,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature must be 64 hex-encoded bytes (128 hex characters)")]
    Malformed,
    #[error("index signature verification FAILED: the index was not signed by the configured key")]
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        decode::<32>(text).map(Self).ok_or(KeyError::PublicKey)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Checks `signature` (the `.sig` file's text: 128 hex characters, surrounding whitespace ignored) over
    /// the raw bytes. Nothing may be parsed from `data` before this passes.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<(), SignatureError> {
        let signature = decode::<64>(signature).ok_or(SignatureError::Malformed)?;
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(data, &signature)
            .map_err(|_| SignatureError::Failed)
    }
}

pub struct SigningKey {
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl SigningKey {
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| KeyError::Random)?;
        Self::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::SigningKey)?;
        Ok(Self { pair, seed })
    }

    /// 128 hex characters, `seed ‖ public` (surrounding whitespace ignored); the halves must agree.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = decode::<64>(text).ok_or(KeyError::SigningKey)?;
        let (seed, public) = bytes.split_at(32);
        let key = Self::from_seed(seed.try_into().map_err(|_| KeyError::SigningKey)?)?;
        if key.public_key().0 != public {
            return Err(KeyError::Mismatch);
        }
        Ok(key)
    }

    pub fn to_hex(&self) -> String {
        format!("{}{}", hex::encode(self.seed), self.public_key().to_hex())
    }

    pub fn public_key(&self) -> PublicKey {
        let mut public = [0; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(public)
    }

    /// The `.sig` file's content for `data`: the signature in lowercase hex and a newline.
    pub fn sign(&self, data: &[u8]) -> String {
        format!("{}\n", hex::encode(self.pair.sign(data)))
    }
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim_ascii();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> SigningKey {
        let mut seed = [0; 32];
        seed[31] = 1;
        SigningKey::from_seed(seed).unwrap()
    }

    #[test]
    fn the_test_seed_gives_the_registrys_public_key() {
        // The spec's public key for the seed 00…01 starts 4cb5abf6 and ends ba29.
        let public = test_key().public_key().to_hex();
        assert!(public.starts_with("4cb5abf6") && public.ends_with("ba29"), "{public}");
    }

    #[test]
    fn signatures_verify_and_refuse_tampering_wrong_keys_and_malformed_text() {
        let key = test_key();
        let data = b"{\"schemaVersion\":1}";
        let signature = key.sign(data);
        assert_eq!(signature.len(), 129);
        assert!(signature.ends_with('\n'));
        let public = key.public_key();
        assert_eq!(public.verify(data, &signature), Ok(()));
        assert_eq!(public.verify(data, signature.trim_end()), Ok(()));
        let mut tampered = data.to_vec();
        tampered[5] ^= 1;
        assert_eq!(public.verify(&tampered, &signature), Err(SignatureError::Failed));
        let other = SigningKey::generate().unwrap().public_key();
        assert_eq!(other.verify(data, &signature), Err(SignatureError::Failed));
        assert_eq!(public.verify(data, &signature[..127]), Err(SignatureError::Malformed));
        assert_eq!(public.verify(data, &signature[..126]), Err(SignatureError::Malformed));
        assert_eq!(public.verify(data, &"zz".repeat(64)), Err(SignatureError::Malformed));
    }

    #[test]
    fn signing_keys_round_trip_and_their_halves_must_agree() {
        let key = SigningKey::generate().unwrap();
        let text = key.to_hex();
        assert_eq!(text.len(), 128);
        assert_eq!(
            SigningKey::parse(&format!("{text}\n")).unwrap().public_key(),
            key.public_key()
        );
        let mut wrong = text.clone();
        wrong.replace_range(64.., &test_key().public_key().to_hex());
        assert_eq!(SigningKey::parse(&wrong).err(), Some(KeyError::Mismatch));
        assert_eq!(SigningKey::parse(&text[..64]).err(), Some(KeyError::SigningKey));
        assert_eq!(PublicKey::parse("abcd").err(), Some(KeyError::PublicKey));
    }
}
