//! The flow cookie: a login's state, nonce and PKCE verifier, carried from `/auth/login` to `/auth/callback`
//! by the browser that started the login, signed with HMAC-SHA256 so that nothing in it can be changed, and
//! expiring after `GIG_OIDC_FLOW_TTL`. The key is kept in the vault.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::oidc::OidcError;

/// The cookie that carries a login's flow state from `/auth/login` to `/auth/callback`.
pub const FLOW_COOKIE: &str = "gigmcp_oidc_flow";
use gigmcp_types::secret::{Secret, SecretKind, SecretName, SecretOwner, SecretSlot};
use gigmcp_vault::Vault;

/// A login in progress, as carried by the flow cookie between `/auth/login` and `/auth/callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The `state` parameter: the callback must bring back this value.
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier (S256) for the code exchange.
    pub verifier: String,
    /// Unix seconds after which the flow is refused.
    pub expires_at: u64,
    /// Where the browser goes once logged in: a path on this gateway ([`ReturnTo`]).
    #[serde(default = "root")]
    pub return_to: String,
}

fn root() -> String {
    "/".to_owned()
}

/// A place on this gateway to return to after logging in: a path, never another origin. Parsed at
/// `/auth/login`, so the callback redirects only to what was checked there (and signed into the flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// `/`-rooted, not `//` or `/\` (which browsers read as another host), no control characters or spaces,
    /// at most 512 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.starts_with('/')
            && !text.starts_with("//")
            && !text.starts_with("/\\")
            && text.len() <= 512
            && !text.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlowError {
    #[error("the login's flow cookie is malformed; start again at /auth/login")]
    Malformed,
    #[error("the login's flow cookie does not carry a valid signature (it was altered); start again at /auth/login")]
    BadSignature,
    #[error("the login took too long (its flow expired, see GIG_OIDC_FLOW_TTL); start again at /auth/login")]
    Expired,
}

/// The HMAC-SHA256 key that signs flow cookies. Its `Debug` never shows it.
pub struct FlowKey(Secret);

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowKey(<redacted>)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl FlowKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Secret::new(bytes.to_vec()))
    }

    fn slot() -> SecretSlot {
        SecretSlot {
            kind: SecretKind::OidcFlowKey,
            owner: SecretOwner::Gateway,
            name: SecretName::parse("flow-hmac").expect("a valid secret name"),
        }
    }

    /// The key kept in the vault, made on first use. Gateways starting at once on a new database agree on
    /// one key (the vault keeps the first stored).
    pub fn load_or_create(vault: &Vault) -> Result<Self, OidcError> {
        let secret = vault.get_or_create(&Self::slot(), || Secret::new(rand::random::<[u8; 32]>().to_vec()))?;
        let bytes: [u8; 32] = secret.expose().try_into().map_err(|_| OidcError::BadKey)?;
        Ok(Self::new(bytes))
    }

    /// The MAC of `payload`, for `purpose` when given (a login's flow has none: its cookies predate purposes).
    fn mac(&self, purpose: Option<&str>, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.0.expose()).expect("HMAC takes a key of any length");
        if let Some(purpose) = purpose {
            mac.update(purpose.as_bytes());
            mac.update(b"\n");
        }
        mac.update(payload.as_bytes());
        mac
    }

    /// `<payload>.<mac>`, both base64url: readable by whoever holds the cookie, unchangeable without the key.
    fn sign_value<T: Serialize>(&self, purpose: Option<&str>, value: &T) -> String {
        let payload = B64.encode(serde_json::to_vec(value).expect("a flow serializes"));
        let tag = self.mac(purpose, &payload).finalize().into_bytes();
        format!("{payload}.{}", B64.encode(tag))
    }

    /// The value of a cookie `sign_value` made with the same purpose.
    fn verify_value<T: serde::de::DeserializeOwned>(
        &self,
        purpose: Option<&str>,
        cookie: &str,
    ) -> Result<T, FlowError> {
        let (payload, tag) = cookie.split_once('.').ok_or(FlowError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| FlowError::Malformed)?;
        self.mac(purpose, payload)
            .verify_slice(&tag)
            .map_err(|_| FlowError::BadSignature)?;
        let bytes = B64.decode(payload).map_err(|_| FlowError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| FlowError::Malformed)
    }

    /// A login's flow, for its cookie: the browser that started the login can read it, not change it.
    pub fn sign(&self, flow: &Flow) -> String {
        self.sign_value(None, flow)
    }

    /// Any other value signed for one `purpose` (`connection`…), so that a cookie signed for one use never
    /// passes for another.
    pub fn sign_for<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        self.sign_value(Some(purpose), value)
    }

    /// The value a cookie signed by `sign_for` with the same purpose carries (its expiry is the caller's).
    pub fn verify_for<T: serde::de::DeserializeOwned>(&self, purpose: &str, cookie: &str) -> Result<T, FlowError> {
        self.verify_value(Some(purpose), cookie)
    }

    /// The flow a cookie carries, if it was signed with this key and has not expired at `now` (unix seconds).
    pub fn verify(&self, cookie: &str, now: u64) -> Result<Flow, FlowError> {
        let flow: Flow = self.verify_value(None, cookie)?;
        if now >= flow.expires_at {
            return Err(FlowError::Expired);
        }
        Ok(flow)
    }
}

/// Equal strings, compared in time that does not depend on where they differ.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::cookie;
    use http::{HeaderMap, HeaderValue, header};
    use std::sync::Arc;

    fn flow(expires_at: u64) -> Flow {
        Flow {
            state: "s".repeat(22),
            nonce: "n".repeat(22),
            verifier: "v".repeat(43),
            expires_at,
            return_to: "/".into(),
        }
    }

    #[test]
    fn return_to_is_a_path_on_this_gateway_only() {
        for good in ["/", "/profiles/team?tab=tokens", "/a/b#c"] {
            assert!(ReturnTo::parse(good).is_some(), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "/\\\\evil",
            "evil",
            "",
            "/a b",
            "/a\nLocation: x",
            "/x\\y",
        ] {
            assert!(ReturnTo::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ReturnTo::parse(&format!("/{}", "a".repeat(600))).is_none());
    }

    #[test]
    fn a_signed_flow_verifies_until_it_expires() {
        let key = FlowKey::new([7; 32]);
        let cookie = key.sign(&flow(1_000));
        assert_eq!(key.verify(&cookie, 999), Ok(flow(1_000)));
        assert_eq!(key.verify(&cookie, 1_000), Err(FlowError::Expired));
        assert_eq!(key.verify(&cookie, 5_000), Err(FlowError::Expired));
    }

    #[test]
    fn a_tampered_flow_cookie_is_refused() {
        let key = FlowKey::new([7; 32]);
        let cookie = key.sign(&flow(1_000));
        let (payload, tag) = cookie.split_once('.').unwrap();
        // A later expiry, signed with nothing.
        let forged = B64.encode(serde_json::to_vec(&flow(9_999)).unwrap());
        assert_eq!(key.verify(&format!("{forged}.{tag}"), 10), Err(FlowError::BadSignature));
        // One character of the payload changed.
        let mut bytes = payload.as_bytes().to_vec();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert_eq!(
            key.verify(&format!("{changed}.{tag}"), 10),
            Err(FlowError::BadSignature)
        );
        // Signed with another key.
        let other = FlowKey::new([8; 32]).sign(&flow(1_000));
        assert_eq!(key.verify(&other, 10), Err(FlowError::BadSignature));
        // Not a flow cookie at all.
        assert_eq!(key.verify("garbage", 10), Err(FlowError::Malformed));
        assert_eq!(key.verify(&format!("{payload}.!!"), 10), Err(FlowError::Malformed));
        assert_eq!(key.verify(&format!("{payload}."), 10), Err(FlowError::BadSignature));
    }

    #[test]
    fn the_flow_key_is_kept_in_the_vault_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(gigmcp_store::Store::open(&dir.path().join("db.sqlite")).unwrap());
        let master = gigmcp_types::secret::MasterKey([3; 32]);
        let vault = Vault::open(store.clone(), &master).unwrap();
        let signed = FlowKey::load_or_create(&vault).unwrap().sign(&flow(1_000));
        // Another process (or a restart) on the same database verifies what the first signed.
        let vault = Vault::open(store, &master).unwrap();
        assert!(FlowKey::load_or_create(&vault).unwrap().verify(&signed, 1).is_ok());
    }

    #[test]
    fn cookies_are_found_by_name_and_secrets_compared_whole() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; gigmcp_oidc_flow=x.y"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, FLOW_COOKIE), Some("x.y"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "gigmcp_oidc"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
