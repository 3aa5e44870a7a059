//! Connected accounts: OAuth apps (one per vendor, set up by an admin) and the connections users make with
//! them. Only the vocabulary lives here: names, who owns a connection, an app's settings as validated at the
//! boundary, and what a connection shows. The broker (`gigmcp-oauth`) talks to providers; the egress proxy
//! asks it for a connection's access token at every request that carries an oauth2 credential's placeholder.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::UserId;
use crate::secret::{SecretKind, SecretName, SecretOwner, SecretSlot};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AppInputError {
    #[error("invalid vendor {0:?}: use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit")]
    Vendor(String),
    #[error("invalid {field} {url:?}: {why}")]
    Url {
        field: &'static str,
        url: String,
        why: String,
    },
    #[error("invalid client id: give 1 to 512 printable characters")]
    ClientId,
    #[error("invalid scope {0:?}: a scope is 1 to 256 printable characters without spaces or commas")]
    Scope(String),
    #[error(
        "invalid authorize parameter {0:?}: a name of 1 to 64 of a-z, A-Z, 0-9, '_', '-' and '.', not one the \
         gateway sets (response_type, client_id, redirect_uri, scope, state, code_challenge, \
         code_challenge_method)"
    )]
    Param(String),
    #[error("invalid scope separator {0:?}: use a single space or a comma")]
    ScopeSeparator(String),
    #[error("invalid auth style {0:?}: use basic (HTTP Basic) or post (client_id and client_secret in the form)")]
    AuthStyle(String),
    #[error("invalid default expiry {0}: give 60 to 31536000 seconds")]
    DefaultExpiresIn(u64),
    #[error(
        "vendor {0} has no client secret: give it on standard input, or pass --pkce for a public client (PKCE \
         without a secret)"
    )]
    NoSecret(String),
}

/// A vendor: the key an app, its connections and every catalog credential of that vendor share
/// (`google`, `atlassian`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vendor(String);

impl Vendor {
    pub fn parse(text: &str) -> Result<Self, AppInputError> {
        let bytes = text.as_bytes();
        let ok = (1..=64).contains(&bytes.len())
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        ok.then(|| Self(text.to_owned()))
            .ok_or_else(|| AppInputError::Vendor(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Vendor {
    type Error = AppInputError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Vendor> for String {
    fn from(value: Vendor) -> Self {
        value.0
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Whose connection: a user's (profiles they own use it), or the operator's (profiles without an owner,
/// made with the CLI, use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    User(UserId),
    Operator,
}

impl Owner {
    /// `operator`, or a user's id.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "operator" {
            return Some(Self::Operator);
        }
        text.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(|id| Self::User(UserId(id)))
    }

    /// What `parse` reads: `operator`, or the user's id.
    pub fn key(self) -> String {
        match self {
            Self::User(id) => id.0.to_string(),
            Self::Operator => "operator".to_owned(),
        }
    }

    /// As audit events name it: the user's id (a number), or `"operator"`.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::User(id) => serde_json::json!(id.0),
            Self::Operator => serde_json::json!("operator"),
        }
    }

    pub fn user(self) -> Option<UserId> {
        match self {
            Self::User(id) => Some(id),
            Self::Operator => None,
        }
    }

    /// Where this owner's token for `vendor` lives in the vault.
    pub fn token_slot(self, vendor: &Vendor, kind: TokenKind) -> SecretSlot {
        let owner = match self {
            Self::User(id) => format!("user-{}", id.0),
            Self::Operator => "operator".to_owned(),
        };
        SecretSlot {
            kind: match kind {
                TokenKind::Access => SecretKind::OAuthAccessToken,
                TokenKind::Refresh => SecretKind::OAuthRefreshToken,
            },
            owner: SecretOwner::Gateway,
            // Vendor and owner are made of characters a secret name allows, within its length.
            name: SecretName(format!("{owner}.{vendor}")),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user {}", id.0),
            Self::Operator => f.write_str("the operator"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Where an app's client secret lives in the vault.
pub fn client_secret_slot(vendor: &Vendor) -> SecretSlot {
    SecretSlot {
        kind: SecretKind::OAuthClientSecret,
        owner: SecretOwner::Gateway,
        name: SecretName(vendor.as_str().to_owned()),
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthStyle {
    /// HTTP Basic with the client id and secret (RFC 6749, section 2.3.1: the one every server must support).
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
}

impl AuthStyle {
    pub fn parse(text: &str) -> Result<Self, AppInputError> {
        match text {
            "basic" => Ok(Self::Basic),
            "post" => Ok(Self::Post),
            _ => Err(AppInputError::AuthStyle(text.to_owned())),
        }
    }
}

/// The longest a token is assumed to live when the provider does not say (`expires_in` omitted), unless the
/// app says otherwise: an hour, as most providers' access tokens.
pub const DEFAULT_EXPIRES_IN: u64 = 3600;

/// An OAuth app: everything but its client secret (kept in the vault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub vendor: Vendor,
    pub authorize_url: String,
    pub token_url: String,
    /// RFC 7009 revocation endpoint: disconnecting revokes the refresh token there.
    #[serde(default)]
    pub revoke_url: Option<String>,
    pub client_id: String,
    /// Scopes asked for on every connection, besides those the installed servers need.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A public client: PKCE without a client secret. (PKCE S256 is sent on every connection anyway.)
    #[serde(default)]
    pub pkce: bool,
    /// Extra parameters of the authorization request (`audience=api.atlassian.com`).
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub auth_style: AuthStyle,
    /// How scopes are joined in the authorization request (space; Slack's v2 scopes want a comma).
    pub scope_separator: String,
    /// Refuse a connection the provider gives no refresh token (it could not be kept working).
    pub require_refresh_token: bool,
    /// How long an access token is taken to live when the provider omits `expires_in`.
    pub default_expires_in: u64,
}

/// The parameters the gateway sets itself in an authorization request.
const RESERVED_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

impl App {
    /// Checks everything but where the URLs lead (that takes the egress guard: `gigmcp-oauth`).
    pub fn check(&self) -> Result<(), AppInputError> {
        for (field, url) in [
            ("--authorize-url", &self.authorize_url),
            ("--token-url", &self.token_url),
        ]
        .into_iter()
        .chain(self.revoke_url.as_ref().map(|u| ("--revoke-url", u)))
        {
            https_url(field, url)?;
        }
        if self.client_id.is_empty()
            || self.client_id.len() > 512
            || !self.client_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AppInputError::ClientId);
        }
        for scope in &self.scopes {
            check_scope(scope)?;
        }
        for (name, value) in &self.params {
            let ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                && !RESERVED_PARAMS.contains(&name.as_str())
                && value.len() <= 1024
                && !value.chars().any(char::is_control);
            if !ok {
                return Err(AppInputError::Param(format!("{name}={value}")));
            }
        }
        if self.scope_separator != " " && self.scope_separator != "," {
            return Err(AppInputError::ScopeSeparator(self.scope_separator.clone()));
        }
        if !(60..=31_536_000).contains(&self.default_expires_in) {
            return Err(AppInputError::DefaultExpiresIn(self.default_expires_in));
        }
        Ok(())
    }
}

pub fn check_scope(scope: &str) -> Result<(), AppInputError> {
    let ok = (1..=256).contains(&scope.len()) && scope.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    ok.then_some(()).ok_or_else(|| AppInputError::Scope(scope.to_owned()))
}

/// Splits a list of scopes given as text (commas and whitespace separate), dropping empty ones and duplicates.
pub fn split_scopes(text: &str) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// An `https` URL with a host that is not `localhost`, without credentials or a fragment.
fn https_url(field: &'static str, text: &str) -> Result<url::Url, AppInputError> {
    let bad = |why: &str| AppInputError::Url {
        field,
        url: text.to_owned(),
        why: why.to_owned(),
    };
    let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("it must be an https:// URL"));
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(bad("localhost is not a provider's public host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("it must not carry credentials or a fragment"));
    }
    Ok(url)
}

/// Whether a connection still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionState {
    Ok,
    /// The provider refused the refresh token (revoked, expired): the user must connect again.
    NeedsReconnect,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NeedsReconnect => "needs-reconnect",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Ok, Self::NeedsReconnect]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A connection as lists show it: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub owner: Owner,
    pub vendor: Vendor,
    pub scopes: Vec<String>,
    /// Unix seconds when the access token expires.
    pub expires_at: i64,
    /// Whether there is a refresh token.
    pub refreshable: bool,
    pub state: ConnectionState,
    /// Why the state is not ok.
    pub detail: Option<String>,
    pub connected_at: i64,
    pub refreshed_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            vendor: Vendor::parse("acme").unwrap(),
            authorize_url: "https://auth.acme.example/authorize".into(),
            token_url: "https://auth.acme.example/token".into(),
            revoke_url: None,
            client_id: "client-1".into(),
            scopes: vec!["read".into()],
            pkce: false,
            params: vec![("audience".into(), "api.acme.example".into())],
            auth_style: AuthStyle::Basic,
            scope_separator: " ".into(),
            require_refresh_token: true,
            default_expires_in: DEFAULT_EXPIRES_IN,
        }
    }

    #[test]
    fn vendors_are_lowercase_names() {
        assert!(Vendor::parse("google").is_ok() && Vendor::parse("0x_y-z").is_ok());
        for bad in ["", "Google", "-a", "a b", "a.b", &"a".repeat(65)] {
            assert!(Vendor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn apps_need_public_https_urls_and_plain_parameters() {
        assert_eq!(app().check(), Ok(()));
        for url in [
            "http://auth.acme.example/token",
            "https://localhost/token",
            "https://LOCALHOST./token",
            "https://a.localhost/token",
            "https://user:pw@auth.acme.example/token",
            "https://auth.acme.example/token#x",
            "not a url",
        ] {
            let mut a = app();
            a.token_url = url.into();
            assert!(matches!(a.check(), Err(AppInputError::Url { .. })), "{url}");
        }
        let mut a = app();
        a.params.push(("redirect_uri".into(), "https://evil.example/".into()));
        assert!(matches!(a.check(), Err(AppInputError::Param(_))));
        let mut a = app();
        a.scopes.push("a,b".into());
        assert!(matches!(a.check(), Err(AppInputError::Scope(_))));
        let mut a = app();
        a.scope_separator = ";".into();
        assert!(matches!(a.check(), Err(AppInputError::ScopeSeparator(_))));
        let mut a = app();
        a.default_expires_in = 5;
        assert!(matches!(a.check(), Err(AppInputError::DefaultExpiresIn(5))));
    }

    #[test]
    fn scopes_split_on_commas_and_spaces_once_each() {
        assert_eq!(split_scopes(" a, b c,,a\tb "), vec!["a", "b", "c"]);
        assert!(split_scopes("").is_empty());
    }

    #[test]
    fn owners_read_back_and_name_their_token_slots() {
        assert_eq!(Owner::parse("operator"), Some(Owner::Operator));
        assert_eq!(Owner::parse("7"), Some(Owner::User(UserId(7))));
        assert_eq!(Owner::parse("0"), None);
        for owner in [Owner::Operator, Owner::User(UserId(7))] {
            assert_eq!(Owner::parse(&owner.key()), Some(owner));
        }
        assert_eq!(Owner::User(UserId(7)).to_json(), serde_json::json!(7));
        let vendor = Vendor::parse("acme").unwrap();
        let slot = Owner::User(UserId(7)).token_slot(&vendor, TokenKind::Refresh);
        assert_eq!(slot.to_string(), "oauth-refresh-token/gateway/user-7.acme");
        assert_eq!(
            Owner::Operator.token_slot(&vendor, TokenKind::Access).name.as_str(),
            "operator.acme"
        );
    }
}
