//! Secrets as data: where one lives (its slot), its plaintext (zeroized on drop), the sealed form the store
//! keeps, and the master key. The cryptography that seals and opens them is the vault's alone.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::names::{ProfileSlug, ServerName};

/// The length of every nonce of an envelope (XChaCha20-Poly1305).
pub const NONCE_LEN: usize = 24;

/// How to make a master key, for error messages.
pub const MASTER_KEY_HINT: &str = "64 hex characters (32 bytes); generate one with `openssl rand -hex 32`, \
     or put it in a file and set GIG_MASTER_KEY_FILE";

/// The master key of the vault. Its bytes never appear in logs or `Debug` output, and are zeroized when it is
/// dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey(pub [u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A master key that is not 64 hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a master key must be {MASTER_KEY_HINT}")]
pub struct InvalidMasterKey;

impl MasterKey {
    pub fn parse(text: &str) -> Result<Self, InvalidMasterKey> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| InvalidMasterKey)?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| InvalidMasterKey)?;
        Ok(Self(array))
    }
}

/// Which master key wrapped a data key: the first 8 bytes of an HMAC of a fixed label under the master key.
/// It tells keys apart without revealing anything about them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A secret's plaintext. Zeroized when dropped; its `Debug` never shows it; there is no `Display`.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The plaintext. Callers keep it no longer than the request that needs it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

/// What a secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// A credential's secret, injected by the egress proxy (see `Credential`).
    Credential,
    /// The private key of the egress proxy's CA, so the CA survives restarts.
    EgressCaKey,
    /// The HMAC key that signs OpenID Connect login-flow cookies: it survives restarts and is shared by every
    /// gateway on the database, so a login may start on one and finish on another.
    OidcFlowKey,
    /// An OAuth app's client secret (`gigmcp oauth app set`).
    OAuthClientSecret,
    /// A connected account's access token, and its refresh token.
    OAuthAccessToken,
    OAuthRefreshToken,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::EgressCaKey => "egress-ca-key",
            Self::OidcFlowKey => "oidc-flow-key",
            Self::OAuthClientSecret => "oauth-client-secret",
            Self::OAuthAccessToken => "oauth-access-token",
            Self::OAuthRefreshToken => "oauth-refresh-token",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Credential,
            Self::EgressCaKey,
            Self::OidcFlowKey,
            Self::OAuthClientSecret,
            Self::OAuthAccessToken,
            Self::OAuthRefreshToken,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// Whose a secret is: the gateway's own, or a server's (server-wide, or for one profile).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretOwner {
    Gateway,
    Server {
        server: ServerName,
        profile: Option<ProfileSlug>,
    },
}

impl SecretOwner {
    /// Reads what `Display` wrote: `gateway`, `server:<name>`, `server:<name>/profile:<slug>`.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "gateway" {
            return Some(Self::Gateway);
        }
        let rest = text.strip_prefix("server:")?;
        let (server, profile) = match rest.split_once("/profile:") {
            Some((server, slug)) => (server, Some(ProfileSlug::parse(slug).ok()?)),
            None => (rest, None),
        };
        Some(Self::Server {
            server: ServerName::parse(server).ok()?,
            profile,
        })
    }
}

impl fmt::Display for SecretOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gateway => f.write_str("gateway"),
            Self::Server { server, profile: None } => write!(f, "server:{server}"),
            Self::Server {
                server,
                profile: Some(slug),
            } => write!(f, "server:{server}/profile:{slug}"),
        }
    }
}

/// A secret's name within its kind and owner: 1 to 128 of A-Z, a-z, 0-9, '.', '-', '_'.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretName(pub(crate) String);

impl SecretName {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a secret lives: (kind, owner, name), unique in the vault. Its ciphertext is bound to this address by
/// associated data, so it cannot be moved to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretSlot {
    pub kind: SecretKind,
    pub owner: SecretOwner,
    pub name: SecretName,
}

impl fmt::Display for SecretSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.as_str(), self.owner, self.name.as_str())
    }
}

/// A data key wrapped under the key-encryption key of `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub key_id: KeyId,
    pub nonce: [u8; NONCE_LEN],
    /// The data key's ciphertext and tag (48 bytes).
    pub ciphertext: Vec<u8>,
}

/// A secret at rest: its wrapped data key, and its ciphertext under that data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub wrapped_key: WrappedKey,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Proof of which master key the database is encrypted with: a fixed text encrypted under the
/// key-encryption key. Opening the vault with another key fails on this record, at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub key_id: KeyId,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Associated data: a label naming the use, then each field with its length, so that no two different
/// field lists encode to the same bytes (`("ab", "c")` differs from `("a", "bc")`).
pub fn associated_data(label: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for field in std::iter::once(label.as_bytes()).chain(fields.iter().copied()) {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}
