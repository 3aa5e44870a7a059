//! Envelope encryption: the only code that touches key material.
//!
//! Invariant 5: a secret is encrypted with XChaCha20-Poly1305 under a fresh random 256-bit data key, and the
//! data key is wrapped (XChaCha20-Poly1305 again) under the key-encryption key derived from the master key.
//! Every nonce is 24 random bytes, so random nonces never realistically repeat. The associated data of the
//! secret names its slot (kind, owner, name) and its context; the associated data of the wrapped key names the
//! slot and the key id. Moving an envelope to another row, or changing what the row says about itself, makes
//! it fail to open instead of yielding another row's plaintext.

use chacha20poly1305::aead::Aead;
use chacha20poly1305::aead::Payload;
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use gigmcp_types::secret::{
    CheckRecord, KeyId, MasterKey, NONCE_LEN, Sealed, Secret, SecretSlot, WrappedKey, associated_data,
};

const KEY_LEN: usize = 32;

/// What the check record encrypts: any fixed text would do, the tag is what is checked.
const CHECK_PLAINTEXT: &[u8] = b"gigmcp vault check record";

/// Why an envelope did not open. Deliberately carries no detail: an AEAD failure says only that the bytes
/// are not what was sealed for this row with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthentic;

/// The keys derived from a master key. The master key itself is used only here, to derive them.
#[derive(ZeroizeOnDrop)]
pub struct MasterKeys {
    kek: [u8; KEY_LEN],
    #[zeroize(skip)]
    key_id: KeyId,
}

impl MasterKeys {
    /// Derives a key-encryption key and a key id from the master key with HMAC-SHA256 under distinct labels,
    /// so that the master key can serve other purposes (plugin artifact authentication) without any two
    /// uses sharing a key, and so the key id reveals nothing usable about the key.
    pub fn derive(master: &MasterKey) -> Self {
        let id = derive(master, b"gigmcp vault: key id v1");
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&id[..8]);
        Self {
            kek: *derive(master, b"gigmcp vault: key-encryption key v1"),
            key_id: KeyId(key_id),
        }
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn kek(&self) -> XChaCha20Poly1305 {
        cipher(&self.kek)
    }

    pub fn check_record(&self) -> CheckRecord {
        let nonce = random_nonce();
        let ciphertext = encrypt(&self.kek(), &nonce, CHECK_PLAINTEXT, &check_ad(self.key_id));
        CheckRecord {
            key_id: self.key_id,
            nonce,
            ciphertext,
        }
    }

    /// Whether the record was written with these keys (the key id matches and the record authenticates).
    pub fn verify(&self, record: &CheckRecord) -> Result<(), Unauthentic> {
        if record.key_id != self.key_id {
            return Err(Unauthentic);
        }
        let plain = decrypt(&self.kek(), &record.nonce, &record.ciphertext, &check_ad(self.key_id))?;
        if plain.as_slice() != CHECK_PLAINTEXT {
            return Err(Unauthentic);
        }
        Ok(())
    }

    /// Encrypts `secret` for `slot` under a fresh data key, which is wrapped under these keys.
    pub fn seal(&self, slot: &SecretSlot, context: &[u8], secret: &Secret) -> Sealed {
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(data_key.as_mut());
        let nonce = random_nonce();
        let ciphertext = encrypt(&cipher(&data_key), &nonce, secret.expose(), &secret_ad(slot, context));
        Sealed {
            wrapped_key: self.wrap(slot, &data_key),
            nonce,
            ciphertext,
        }
    }

    /// Decrypts what `seal` made for the same slot and context.
    pub fn open(&self, slot: &SecretSlot, context: &[u8], sealed: &Sealed) -> Result<Secret, Unauthentic> {
        let data_key = self.unwrap(slot, &sealed.wrapped_key)?;
        let plain = decrypt(
            &cipher(&data_key),
            &sealed.nonce,
            &sealed.ciphertext,
            &secret_ad(slot, context),
        )?;
        Ok(Secret::from_zeroizing(plain))
    }

    /// Re-wraps a data key under `new`: what master-key rotation does to every row. The data key is never
    /// written anywhere; the secret's own ciphertext does not change.
    pub fn rewrap(&self, new: &MasterKeys, slot: &SecretSlot, wrapped: &WrappedKey) -> Result<WrappedKey, Unauthentic> {
        let data_key = self.unwrap(slot, wrapped)?;
        Ok(new.wrap(slot, &data_key))
    }

    fn wrap(&self, slot: &SecretSlot, data_key: &[u8; KEY_LEN]) -> WrappedKey {
        let nonce = random_nonce();
        WrappedKey {
            key_id: self.key_id,
            nonce,
            ciphertext: encrypt(&self.kek(), &nonce, data_key, &wrap_ad(slot, self.key_id)),
        }
    }

    fn unwrap(&self, slot: &SecretSlot, wrapped: &WrappedKey) -> Result<Zeroizing<[u8; KEY_LEN]>, Unauthentic> {
        if wrapped.key_id != self.key_id {
            return Err(Unauthentic);
        }
        let plain = decrypt(
            &self.kek(),
            &wrapped.nonce,
            &wrapped.ciphertext,
            &wrap_ad(slot, self.key_id),
        )?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if plain.len() != KEY_LEN {
            return Err(Unauthentic);
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

fn derive(master: &MasterKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&master.0).expect("HMAC takes any key length");
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    // Borrowed, not copied: the only copy of the key outside its zeroized owner is the cipher's own state,
    // which the `zeroize` feature of chacha20poly1305 clears on drop.
    let key: &Key = key.as_slice().try_into().expect("32-byte key");
    XChaCha20Poly1305::new(key)
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    nonce
}

fn encrypt(cipher: &XChaCha20Poly1305, nonce: &[u8; NONCE_LEN], plain: &[u8], ad: &[u8]) -> Vec<u8> {
    let nonce: &XNonce = nonce.as_slice().try_into().expect("24-byte nonce");
    // Encryption fails only for messages longer than 256 GiB; secrets are bounded far below that.
    cipher
        .encrypt(nonce, Payload { msg: plain, aad: ad })
        .expect("message within XChaCha20-Poly1305 limits")
}

fn decrypt(
    cipher: &XChaCha20Poly1305,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Unauthentic> {
    let nonce: &XNonce = nonce.as_slice().try_into().expect("24-byte nonce");
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Unauthentic)
}

fn secret_ad(slot: &SecretSlot, context: &[u8]) -> Vec<u8> {
    let owner = slot.owner.to_string();
    associated_data(
        "gigmcp vault secret v1",
        &[
            slot.kind.as_str().as_bytes(),
            owner.as_bytes(),
            slot.name.as_str().as_bytes(),
            context,
        ],
    )
}

fn wrap_ad(slot: &SecretSlot, key_id: KeyId) -> Vec<u8> {
    let owner = slot.owner.to_string();
    associated_data(
        "gigmcp vault data key v1",
        &[
            slot.kind.as_str().as_bytes(),
            owner.as_bytes(),
            slot.name.as_str().as_bytes(),
            &key_id.0,
        ],
    )
}

fn check_ad(key_id: KeyId) -> Vec<u8> {
    associated_data("gigmcp vault check v1", &[&key_id.0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigmcp_types::names::ServerName;
    use gigmcp_types::secret::{SecretKind, SecretName, SecretOwner};

    fn keys(byte: u8) -> MasterKeys {
        MasterKeys::derive(&MasterKey([byte; 32]))
    }

    fn slot(name: &str) -> SecretSlot {
        SecretSlot {
            kind: SecretKind::Credential,
            owner: SecretOwner::Server {
                server: ServerName::parse("github").unwrap(),
                profile: None,
            },
            name: SecretName::parse(name).unwrap(),
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_own_slot_and_context() {
        let keys = keys(1);
        let secret = Secret::new(b"ghp_real".to_vec());
        let sealed = keys.seal(&slot("a"), b"ctx", &secret);
        assert_eq!(keys.open(&slot("a"), b"ctx", &sealed).unwrap().expose(), b"ghp_real");
        assert_eq!(keys.open(&slot("b"), b"ctx", &sealed).unwrap_err(), Unauthentic);
        assert_eq!(keys.open(&slot("a"), b"other", &sealed).unwrap_err(), Unauthentic);
        assert!(!sealed.ciphertext.windows(8).any(|w| w == b"ghp_real"));
    }

    #[test]
    fn every_seal_uses_a_fresh_data_key_and_nonces() {
        let keys = keys(1);
        let secret = Secret::new(b"same".to_vec());
        let a = keys.seal(&slot("a"), b"", &secret);
        let b = keys.seal(&slot("a"), b"", &secret);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.wrapped_key.nonce, b.wrapped_key.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.wrapped_key.ciphertext, b.wrapped_key.ciphertext);
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let keys = keys(1);
        let sealed = keys.seal(&slot("a"), b"", &Secret::new(b"value".to_vec()));
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert!(keys.open(&slot("a"), b"", &bad).is_err(), "byte {i}");
        }
        for i in 0..sealed.wrapped_key.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.wrapped_key.ciphertext[i] ^= 0x80;
            assert!(keys.open(&slot("a"), b"", &bad).is_err(), "wrapped byte {i}");
        }
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 1;
        assert!(keys.open(&slot("a"), b"", &bad).is_err());
    }

    #[test]
    fn the_check_record_tells_keys_apart() {
        let record = keys(1).check_record();
        assert!(keys(1).verify(&record).is_ok());
        assert!(keys(2).verify(&record).is_err());
        let mut forged = keys(2).check_record();
        forged.key_id = keys(1).key_id();
        assert!(keys(1).verify(&forged).is_err());
        assert_ne!(keys(1).key_id(), keys(2).key_id());
    }

    #[test]
    fn rewrapping_changes_the_wrapped_key_but_not_the_secret() {
        let (old, new) = (keys(1), keys(2));
        let mut sealed = old.seal(&slot("a"), b"", &Secret::new(b"value".to_vec()));
        let rewrapped = old.rewrap(&new, &slot("a"), &sealed.wrapped_key).unwrap();
        assert_ne!(rewrapped.ciphertext, sealed.wrapped_key.ciphertext);
        assert_eq!(rewrapped.key_id, new.key_id());
        assert!(old.rewrap(&new, &slot("b"), &sealed.wrapped_key).is_err());
        sealed.wrapped_key = rewrapped;
        assert_eq!(new.open(&slot("a"), b"", &sealed).unwrap().expose(), b"value");
        assert!(old.open(&slot("a"), b"", &sealed).is_err());
    }

    #[test]
    fn associated_data_fields_cannot_run_into_each_other() {
        assert_ne!(
            associated_data("l", &[b"ab", b"c"]),
            associated_data("l", &[b"a", b"bc"])
        );
    }
}
