//! What a credential is made of, parsed at the boundary: its name, the hosts it may be sent to, the header and
//! format it is injected with, the environment variable that carries its placeholder, and the placeholder.
//! Each type can only hold a valid value, so the store and the proxy trust what they are given.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ids::SecretId;
use crate::names::{ProfileSlug, ServerName};
use crate::secret::{Secret, SecretKind, SecretName, SecretOwner, SecretSlot};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CredentialInputError {
    #[error("invalid credential name {0:?}: use 1 to 63 characters from a-z, 0-9, '-' and '_', starting with a letter")]
    Name(String),
    #[error(
        "invalid host {0:?} in --hosts: give a host name (api.example.com), a wildcard for one label \
         (*.example.com) or for any depth (**.example.com), or an IP address, each optionally with :port (443 \
         when omitted)"
    )]
    Host(String),
    #[error("--hosts is empty: name at least one host the credential may be sent to")]
    NoHosts,
    #[error("invalid --header {0:?}: give an HTTP header name such as Authorization or X-Api-Key")]
    Header(String),
    #[error("--header {0} cannot carry a credential: it is controlled by the proxy or the HTTP framing")]
    ReservedHeader(String),
    #[error(
        "invalid --format {0:?}: it must contain {{secret}} exactly once, no other '{{' or '}}', and only \
         printable characters (at most 1024)"
    )]
    Format(String),
    #[error("invalid --env-name {0:?}: use A-Z, a-z, 0-9 and '_', not starting with a digit (at most 128)")]
    EnvName(String),
    #[error("the secret is empty: give it on standard input, e.g. `printf %s \"$TOKEN\" | gigmcp credential set …`")]
    EmptySecret,
    #[error(
        "the secret contains a line break or another control character (after one trailing newline was \
         removed); a header value cannot carry it"
    )]
    SecretControlCharacter,
    #[error("the secret is longer than {MAX_SECRET_LEN} bytes")]
    SecretTooLong,
    #[error(
        "--env-name {0} is reserved: the gateway sets it for the sandbox (proxy, trust store, loader and shell \
         variables, and every GIG_* name); choose another name"
    )]
    ReservedEnvName(String),
}

/// A credential's name: unique per server and scope. The placeholder's variable defaults to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialName(String);

impl CredentialName {
    pub fn parse(value: &str) -> Result<Self, CredentialInputError> {
        let bytes = value.as_bytes();
        let ok = (1..=63).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(CredentialInputError::Name(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The default variable: the name upper-cased, every other character as `_`, plus `_TOKEN`
    /// (`github` → `GITHUB_TOKEN`, `open-ai` → `OPEN_AI_TOKEN`).
    pub fn default_env_name(&self) -> EnvName {
        let mut name: String = self
            .0
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        name.push_str("_TOKEN");
        // A credential name starts with a letter and is at most 63 characters, so this is a valid name; if it
        // is a reserved one, the caller is told to choose --env-name.
        EnvName(name)
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A host a credential may be sent to, in the one host-pattern grammar (`gigmcp_hostpattern`): an exact name
/// or IP address, `*.example.com` (exactly one label before the domain) or `**.example.com` (any depth), never
/// the domain itself; with a port, 443 when none is given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    host: gigmcp_hostpattern::HostPattern,
    port: u16,
    /// Whether the port was written, so the pattern displays as it was given.
    explicit_port: bool,
}

pub const DEFAULT_PORT: u16 = 443;

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, CredentialInputError> {
        let bad = || CredentialInputError::Host(text.to_owned());
        let (host, port) = split_port(text).ok_or_else(bad)?;
        let host = gigmcp_hostpattern::HostPattern::parse(host).map_err(|_| bad())?;
        Ok(Self {
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            explicit_port: port.is_some(),
        })
    }

    /// Whether a request to `host:port` may carry the credential. `host` is compared case-insensitively and
    /// without a trailing dot; an IPv6 address may be given with or without brackets.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        port == self.port && self.host.matches(host)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if self.explicit_port {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// `host[:port]`, `[v6][:port]`. `None` when the port is not a number from 1 to 65535, or a bare IPv6
/// address lacks its brackets.
fn split_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = gigmcp_hostpattern::split_host_port(text)?;
    if host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|n| *n > 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// The hosts a credential may be sent to: at least one, no duplicates, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostList(Vec<HostPattern>);

impl HostList {
    /// A comma-separated list, as `--hosts` takes it.
    pub fn parse(text: &str) -> Result<Self, CredentialInputError> {
        let mut hosts: Vec<HostPattern> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let pattern = HostPattern::parse(part)?;
            if !hosts.contains(&pattern) {
                hosts.push(pattern);
            }
        }
        if hosts.is_empty() {
            return Err(CredentialInputError::NoHosts);
        }
        Ok(Self(hosts))
    }

    pub fn patterns(&self) -> &[HostPattern] {
        &self.0
    }

    /// Whether a request to `host:port` may carry the credential.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|p| p.matches(host, port))
    }
}

impl fmt::Display for HostList {
    /// The canonical form, which is also what the credential's secret is bound to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pattern) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{pattern}")?;
        }
        Ok(())
    }
}

/// Headers of one hop, never forwarded (RFC 9110 section 7.6.1, the proxy's own credentials, and the legacy
/// `Proxy-Connection`): the egress proxy strips them, and every header `Connection` names, from what it forwards.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a header belongs to the proxy and to HTTP's framing rather than to a request's content: a hop-by-hop
/// header, `Host`, `Content-Length`, `Expect`, or any `Proxy-*`. The one list of the gateway: a credential is
/// never injected into such a header, and a plugin can neither set nor remove one (a value there would break
/// the request or reach the wrong party).
pub fn is_reserved_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    HOP_BY_HOP_HEADERS.contains(&name.as_str())
        || matches!(name.as_str(), "host" | "content-length" | "expect")
        || name.starts_with("proxy-")
}

/// The header a credential is injected into, as the operator wrote it (HTTP compares names
/// case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName(String);

impl HeaderName {
    pub fn parse(value: &str) -> Result<Self, CredentialInputError> {
        if http::HeaderName::from_bytes(value.as_bytes()).is_err() || value.len() > 128 {
            return Err(CredentialInputError::Header(value.to_owned()));
        }
        if is_reserved_header(value) {
            return Err(CredentialInputError::ReservedHeader(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

const SECRET_MARK: &str = "{secret}";

/// How the header's value is built: text around exactly one `{secret}`, e.g. `Bearer {secret}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(String);

impl Format {
    pub fn parse(value: &str) -> Result<Self, CredentialInputError> {
        let bad = || CredentialInputError::Format(value.to_owned());
        let (before, after) = value.split_once(SECRET_MARK).ok_or_else(bad)?;
        let braces = |s: &str| s.contains(['{', '}']);
        let printable = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if braces(before) || braces(after) || !printable || value.len() > 1024 {
            return Err(bad());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text before and after `{secret}`.
    pub fn parts(&self) -> (&str, &str) {
        self.0.split_once(SECRET_MARK).unwrap_or((&self.0, ""))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Variables the gateway sets or that steer the sandboxed process's proxy, trust store, loader or shell:
/// a placeholder must never replace one. Compared case-insensitively (curl reads `https_proxy`).
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "TMPDIR",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "NODE_USE_ENV_PROXY",
    "NODE_OPTIONS",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "BASH_ENV",
    "ENV",
    "IFS",
];
const RESERVED_ENV_PREFIXES: &[&str] = &["GIG_", "LD_", "DYLD_", "BASH_FUNC_"];

/// The environment variable a server finds its placeholder in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvName(String);

impl EnvName {
    pub fn parse(value: &str) -> Result<Self, CredentialInputError> {
        let bytes = value.as_bytes();
        let ok = (1..=128).contains(&bytes.len())
            && !bytes[0].is_ascii_digit()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !ok {
            return Err(CredentialInputError::EnvName(value.to_owned()));
        }
        Self(value.to_owned()).check_not_reserved()
    }

    /// Refuses the names the gateway keeps for itself; a default name is checked with this too.
    pub fn check_not_reserved(self) -> Result<Self, CredentialInputError> {
        let upper = self.0.to_ascii_uppercase();
        if RESERVED_ENV.contains(&upper.as_str()) || RESERVED_ENV_PREFIXES.iter().any(|p| upper.starts_with(p)) {
            return Err(CredentialInputError::ReservedEnvName(self.0));
        }
        Ok(self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What a server holds instead of the secret: `gigph_` and 43 base64url characters (256 random bits).
///
/// Profile tokens are `gig_…`: a placeholder has `p` where a token has `_`, so neither can be taken for the
/// other, by a person or by a scanner. A placeholder is not a secret from the server (it is what the server
/// gets) but it stands for one: the proxy swaps it for the secret only for the credential's own hosts and
/// only for requests from a sandbox of the credential's server.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Placeholder(String);

pub const PLACEHOLDER_PREFIX: &str = "gigph_";
const PLACEHOLDER_BODY_LEN: usize = 43;
/// How many characters `list` shows: enough to tell credentials apart, not enough to use.
const PLACEHOLDER_SHOWN: usize = PLACEHOLDER_PREFIX.len() + 6;

impl Placeholder {
    pub const LEN: usize = PLACEHOLDER_PREFIX.len() + PLACEHOLDER_BODY_LEN;

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PLACEHOLDER_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn parse(value: &str) -> Option<Self> {
        let body = value.strip_prefix(PLACEHOLDER_PREFIX)?;
        let ok = body.len() == PLACEHOLDER_BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first characters, for listings and logs.
    pub fn shown(&self) -> String {
        format!("{}…", &self.0[..PLACEHOLDER_SHOWN])
    }

    /// Every well-formed placeholder in `text` with its byte offset: what the proxy looks for in header
    /// values and query strings. A match is only a candidate until it is found among the caller's
    /// credentials.
    pub fn find_all(text: &str) -> impl Iterator<Item = (usize, Placeholder)> + '_ {
        text.match_indices(PLACEHOLDER_PREFIX).filter_map(|(at, _)| {
            let candidate = text.get(at..at + Self::LEN)?;
            let followed_by_body_char = text[at + Self::LEN..]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if followed_by_body_char {
                return None;
            }
            Self::parse(candidate).map(|p| (at, p))
        })
    }
}

impl fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Placeholder({})", self.shown())
    }
}

/// The longest secret accepted: far above any API key or token, far below what a header can hold.
pub const MAX_SECRET_LEN: usize = 16 * 1024;

/// A credential's secret as the operator gave it on standard input: one trailing newline (`\n` or `\r\n`)
/// is removed, as `echo` and editors add one; it must not be empty, and must be able to travel in a header
/// value (no control characters but tab).
pub fn secret_from_input(mut input: Zeroizing<Vec<u8>>) -> Result<Secret, CredentialInputError> {
    if input.last() == Some(&b'\n') {
        input.pop();
        if input.last() == Some(&b'\r') {
            input.pop();
        }
    }
    if input.is_empty() {
        return Err(CredentialInputError::EmptySecret);
    }
    if input.len() > MAX_SECRET_LEN {
        return Err(CredentialInputError::SecretTooLong);
    }
    if input.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
        return Err(CredentialInputError::SecretControlCharacter);
    }
    Ok(Secret::from_zeroizing(input))
}

/// A credential as the operator defines it: everything but the secret and the placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSpec {
    pub server: ServerName,
    /// `None`: server-wide. A profile's own credential replaces the server-wide one of the same name.
    pub profile: Option<ProfileSlug>,
    pub name: CredentialName,
    pub hosts: HostList,
    pub header: HeaderName,
    pub format: Format,
    pub env_name: EnvName,
}

impl CredentialSpec {
    /// Where the credential's secret lives in the vault.
    pub fn slot(&self) -> SecretSlot {
        SecretSlot {
            kind: SecretKind::Credential,
            owner: SecretOwner::Server {
                server: self.server.clone(),
                profile: self.profile.clone(),
            },
            // A credential name is a valid secret name (a subset of its characters and length).
            name: SecretName(self.name.as_str().to_owned()),
        }
    }

    /// What the secret is bound to besides its slot: where it may be sent and how. Part of the associated
    /// data of the secret's ciphertext.
    pub fn binding(&self) -> Vec<u8> {
        crate::secret::associated_data(
            "credential binding v1",
            &[
                self.hosts.to_string().as_bytes(),
                self.header.as_str().as_bytes(),
                self.format.as_str().as_bytes(),
            ],
        )
    }

    /// `server` or `server (profile p)`, for messages.
    pub fn scope(&self) -> String {
        match &self.profile {
            None => format!("server {}", self.server),
            Some(p) => format!("server {} (profile {p})", self.server),
        }
    }
}

/// A credential's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialId(pub i64);

/// A stored credential: its definition, its placeholder and where its secret is. Holds no plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: CredentialId,
    pub spec: CredentialSpec,
    pub placeholder: Placeholder,
    pub source: CredentialSource,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a credential's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A secret the operator set, sealed in the vault.
    Vault(SecretId),
    /// The access token of a connected account of this vendor: the connection of the profile's owner (the
    /// operator's for a profile without one), fetched fresh at every request that carries the placeholder.
    Account(crate::oauth::Vendor),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_and_their_default_variables() {
        let name = CredentialName::parse("open-ai_2").unwrap();
        assert_eq!(name.default_env_name().as_str(), "OPEN_AI_2_TOKEN");
        for bad in ["", "Github", "1x", "-x", "a b", "a.b", &"x".repeat(64)] {
            assert!(CredentialName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn host_patterns_parse_and_match() {
        let exact = HostPattern::parse("API.GitHub.com").unwrap();
        assert_eq!(exact.to_string(), "api.github.com");
        assert!(exact.matches("api.github.com", 443));
        assert!(exact.matches("API.github.com.", 443));
        assert!(!exact.matches("api.github.com", 8443));
        assert!(!exact.matches("evil.api.github.com", 443));

        // One grammar everywhere: `*.` is one label, `**.` any depth.
        let wild = HostPattern::parse("*.example.com:8443").unwrap();
        assert_eq!(wild.to_string(), "*.example.com:8443");
        assert!(wild.matches("a.example.com", 8443));
        assert!(!wild.matches("a.b.example.com", 8443));
        assert!(!wild.matches("example.com", 8443));
        let deep = HostPattern::parse("**.example.com").unwrap();
        assert_eq!(deep.to_string(), "**.example.com");
        assert!(deep.matches("a.b.example.com", 443) && deep.matches("a.example.com", 443));
        assert!(!deep.matches("example.com", 443));
        assert!(!wild.matches("badexample.com", 8443));
        assert!(!wild.matches("a.example.com", 443));

        let v4 = HostPattern::parse("10.1.2.3:9443").unwrap();
        assert!(v4.matches("10.1.2.3", 9443));
        let v6 = HostPattern::parse("[::1]:8443").unwrap();
        assert_eq!(v6.to_string(), "[::1]:8443");
        assert!(v6.matches("::1", 8443) && v6.matches("[::1]", 8443));
        assert!(HostPattern::parse("[fd00::1]").is_ok());

        for bad in [
            "",
            "*",
            "*.com",
            "*.*.example.com",
            "a*.example.com",
            "ex ample.com",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3",
            "256.1.1.1",
            "host:0",
            "host:65536",
            "host:",
            "host:x",
            "::1",
            "[::1",
            "[nope]",
            "a_b.com",
            "https://a.com",
            "a.com/path",
            "user@a.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// `HostList::allows` is the check the egress proxy applies before a credential is injected: `*.` covers
    /// one label, as it does in an egress list and in the `egress-allowlist` plugin (it once meant any depth
    /// here, so a server whose egress list named `a.b.example.com` got the secret of `*.example.com`).
    #[test]
    fn a_credential_for_a_one_label_wildcard_is_never_injected_two_labels_down() {
        let hosts = HostList::parse("*.example.com").unwrap();
        assert!(hosts.allows("api.example.com", 443));
        assert!(!hosts.allows("a.b.example.com", 443));
        assert!(
            HostList::parse("**.example.com")
                .unwrap()
                .allows("a.b.example.com", 443)
        );
    }

    #[test]
    fn host_lists_need_one_host_and_drop_duplicates() {
        let list = HostList::parse("api.github.com, API.github.com,uploads.github.com:443").unwrap();
        assert_eq!(list.to_string(), "api.github.com,uploads.github.com:443");
        assert!(list.allows("uploads.github.com", 443));
        assert_eq!(HostList::parse(" , "), Err(CredentialInputError::NoHosts));
        assert!(HostList::parse("ok.com,bad host").is_err());
    }

    #[test]
    fn headers_must_be_valid_and_not_owned_by_the_proxy() {
        assert_eq!(HeaderName::parse("X-Api-Key").unwrap().as_str(), "X-Api-Key");
        assert!(HeaderName::parse("Authorization").is_ok());
        assert!(matches!(
            HeaderName::parse("Bad Header"),
            Err(CredentialInputError::Header(_))
        ));
        assert!(matches!(HeaderName::parse(""), Err(CredentialInputError::Header(_))));
        // `Proxy-*` is the proxy's: the inject list refused every one while credentials accepted most.
        for reserved in [
            "Host",
            "content-length",
            "Proxy-Authorization",
            "Transfer-Encoding",
            "Proxy-Token",
            "Expect",
        ] {
            assert!(
                matches!(
                    HeaderName::parse(reserved),
                    Err(CredentialInputError::ReservedHeader(_))
                ),
                "{reserved}"
            );
        }
    }

    #[test]
    fn formats_hold_the_secret_exactly_once() {
        let f = Format::parse("Bearer {secret}").unwrap();
        assert_eq!(f.parts(), ("Bearer ", ""));
        assert_eq!(Format::parse("{secret}").unwrap().parts(), ("", ""));
        assert_eq!(Format::parse("k={secret};v=1").unwrap().parts(), ("k=", ";v=1"));
        for bad in [
            "Bearer",
            "{secret}{secret}",
            "{secret} {user}",
            "x}{secret}",
            "a\r\n{secret}",
            "\t{secret}",
        ] {
            assert!(Format::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn env_names_are_variables_and_not_reserved() {
        assert!(EnvName::parse("GITHUB_TOKEN").is_ok());
        assert!(EnvName::parse("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(
                matches!(EnvName::parse(bad), Err(CredentialInputError::EnvName(_))),
                "{bad:?}"
            );
        }
        for reserved in [
            "PATH",
            "HOME",
            "HTTPS_PROXY",
            "https_proxy",
            "GIG_MASTER_KEY",
            "LD_PRELOAD",
            "NODE_OPTIONS",
        ] {
            assert!(
                matches!(EnvName::parse(reserved), Err(CredentialInputError::ReservedEnvName(_))),
                "{reserved}"
            );
        }
        // The default of a credential named `path` is PATH_TOKEN, not reserved; one named `ld-x` would be.
        let ld = CredentialName::parse("ld-x").unwrap().default_env_name();
        assert!(ld.check_not_reserved().is_err());
    }

    #[test]
    fn secrets_from_input_lose_one_newline_and_must_fit_a_header() {
        let secret = |s: &[u8]| secret_from_input(Zeroizing::new(s.to_vec()));
        assert_eq!(secret(b"abc\n").unwrap().expose(), b"abc");
        assert_eq!(secret(b"abc\r\n").unwrap().expose(), b"abc");
        assert_eq!(secret(b"a b\tc").unwrap().expose(), b"a b\tc");
        assert_eq!(secret(b"").unwrap_err(), CredentialInputError::EmptySecret);
        assert_eq!(secret(b"\n").unwrap_err(), CredentialInputError::EmptySecret);
        assert_eq!(
            secret(b"abc\n\n").unwrap_err(),
            CredentialInputError::SecretControlCharacter
        );
        assert_eq!(
            secret(b"a\0b").unwrap_err(),
            CredentialInputError::SecretControlCharacter
        );
        assert_eq!(
            secret(&vec![b'x'; MAX_SECRET_LEN + 1]).unwrap_err(),
            CredentialInputError::SecretTooLong
        );
    }

    #[test]
    fn placeholders_are_unguessable_and_never_look_like_tokens() {
        let a = Placeholder::generate();
        let b = Placeholder::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), Placeholder::LEN);
        assert!(a.as_str().starts_with("gigph_"));
        assert!(!a.as_str().starts_with("gig_"));
        assert_eq!(Placeholder::parse(a.as_str()), Some(a.clone()));
        assert!(Placeholder::parse("gigph_short").is_none());
        let token = crate::token::NewToken::generate();
        assert!(Placeholder::parse(token.reveal()).is_none());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn placeholders_are_found_in_header_values_and_query_strings() {
        let p = Placeholder::generate();
        let header = format!("Bearer {}", p.as_str());
        assert_eq!(Placeholder::find_all(&header).collect::<Vec<_>>(), vec![(7, p.clone())]);
        let query = format!("/v1?key={}&x=1", p.as_str());
        assert_eq!(
            Placeholder::find_all(&query).map(|(_, p)| p).collect::<Vec<_>>(),
            vec![p.clone()]
        );
        let longer = format!("{}x", p.as_str());
        assert_eq!(Placeholder::find_all(&longer).count(), 0);
        assert_eq!(Placeholder::find_all("gigph_ gigph_").count(), 0);
    }
}
