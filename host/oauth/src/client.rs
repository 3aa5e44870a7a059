//! Calls to a provider's token and revocation endpoints. Every call is guarded as the egress proxy's dials
//! are: the host resolved (`GIG_EGRESS_RESOLVE`, else DNS), every address checked by the dial guard
//! (`GIG_EGRESS_ALLOW_ADDRS` lists exceptions), and the connection made to exactly the address checked (no
//! second lookup to rebind); TLS trusts the public roots plus `GIG_EGRESS_EXTRA_CA`; redirects are refused
//! (a token endpoint has no business redirecting); answers are bounded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use gigmcp_egress::{Cidr, EgressSettings, Resolve, forbidden};
use gigmcp_types::oauth::{App, AuthStyle};
use gigmcp_types::secret::Secret;

/// The largest answer read from a provider.
const MAX_ANSWER: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to a provider did not give tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The provider answered with an OAuth error (`invalid_grant`…).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused { error: String, description: Option<String> },
    /// The call could not be made, or its answer was not one.
    #[error("{0}")]
    Failed(String),
}

/// What a token endpoint gave.
pub struct TokenAnswer {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct RawAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    // A number, or (some providers) a string of digits.
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The guarded client's settings, from the egress proxy's.
#[derive(Clone)]
pub struct Guarded {
    tls: Arc<rustls::ClientConfig>,
    resolve: Resolve,
    allow: Vec<Cidr>,
}

impl Guarded {
    pub fn new(settings: &EgressSettings) -> Result<Self, rustls::Error> {
        Ok(Self {
            tls: Arc::new(gigmcp_egress::upstream_tls(settings)?),
            resolve: settings.resolve.clone(),
            allow: settings.allow_addrs.clone(),
        })
    }

    /// Refuses a URL whose host is an address the guard forbids (checked when an app is set, so a literal
    /// internal address is refused before any call).
    pub fn check_literal(&self, url: &url::Url) -> Result<(), String> {
        if let Some(ip) = literal_ip(url)
            && let Some(why) = forbidden(ip, &self.allow)
        {
            return Err(format!("{ip} is {why}: the gateway does not call it"));
        }
        Ok(())
    }

    /// A client bound to the one checked address of `url`'s host.
    async fn client_for(&self, url: &url::Url) -> Result<reqwest::Client, String> {
        if url.scheme() != "https" {
            return Err(format!("{url} is not an https:// URL"));
        }
        let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .no_proxy()
            .https_only(true);
        let builder = match literal_ip(url) {
            Some(ip) => {
                self.guard(&host, ip)?;
                builder
            }
            None => {
                let addrs: Vec<IpAddr> = match self.resolve.lookup(&host, port) {
                    Some(ip) => vec![ip],
                    None => tokio::net::lookup_host((host.as_str(), port))
                        .await
                        .map_err(|e| format!("cannot resolve {host}: {e}"))?
                        .map(|a| a.ip())
                        .collect(),
                };
                let first = *addrs.first().ok_or_else(|| format!("{host} has no address"))?;
                // Every address is checked, so that which one is dialed never decides.
                for ip in &addrs {
                    self.guard(&host, *ip)?;
                }
                builder.resolve(&host, SocketAddr::new(first, port))
            }
        };
        builder.build().map_err(|e| format!("cannot make an HTTPS client: {e}"))
    }

    fn guard(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        match forbidden(ip, &self.allow) {
            Some(why) => Err(format!(
                "ssrf guard: {host} resolves to {ip}, {why}, which the gateway does not call \
                 (GIG_EGRESS_ALLOW_ADDRS lists exceptions)"
            )),
            None => Ok(()),
        }
    }

    /// POSTs a form to the app's token endpoint, authenticated as the app says; gives the tokens.
    pub async fn token(
        &self,
        app: &App,
        client_secret: Option<&Secret>,
        form: Vec<(&'static str, Zeroizing<String>)>,
    ) -> Result<TokenAnswer, CallError> {
        let url = url::Url::parse(&app.token_url).map_err(|e| CallError::Failed(e.to_string()))?;
        let client = self.client_for(&url).await.map_err(CallError::Failed)?;
        let request = client.post(url.clone()).header("accept", "application/json");
        let response = send_form(request, app, client_secret, form)
            .await
            .map_err(|e| CallError::Failed(format!("the token endpoint {url} did not answer: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CallError::Failed(format!(
                "the token endpoint {url} answered with a redirect ({status}); token calls are never redirected"
            )));
        }
        let is_form = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = read_bounded(response).await?;
        let raw: RawAnswer = if is_form {
            form_answer(&bytes)
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                CallError::Failed(format!(
                    "the token endpoint {url} answered {status} without a token answer"
                ))
            })?
        };
        if let Some(error) = raw.error {
            return Err(CallError::Refused {
                error,
                description: raw.error_description,
            });
        }
        let access = raw
            .access_token
            .filter(|t| !t.is_empty() && status.is_success())
            .ok_or_else(|| CallError::Failed(format!("the token endpoint {url} answered {status} without a token")))?;
        let expires_in = match raw.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(TokenAnswer {
            access_token: Secret::new(access.into_bytes()),
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(|t| Secret::new(t.into_bytes())),
            expires_in,
            scope: raw.scope,
        })
    }

    /// RFC 7009: revokes `token` (of `hint` type) at the app's revocation endpoint.
    pub async fn revoke(
        &self,
        app: &App,
        revoke_url: &str,
        client_secret: Option<&Secret>,
        token: &Secret,
        hint: &'static str,
    ) -> Result<(), CallError> {
        let url = url::Url::parse(revoke_url).map_err(|e| CallError::Failed(e.to_string()))?;
        let client = self.client_for(&url).await.map_err(CallError::Failed)?;
        let form = vec![
            (
                "token",
                Zeroizing::new(String::from_utf8_lossy(token.expose()).into_owned()),
            ),
            ("token_type_hint", Zeroizing::new(hint.to_owned())),
        ];
        let response = send_form(client.post(url.clone()), app, client_secret, form)
            .await
            .map_err(|e| CallError::Failed(format!("the revocation endpoint {url} did not answer: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(CallError::Failed(format!(
                "the revocation endpoint {url} answered {status}"
            )))
        }
    }
}

/// Sends `form` (URL-encoded), the client authenticated as the app says: HTTP Basic with the form-encoded id
/// and secret (RFC 6749, 2.3.1), or both in the form (`post`, and a public client's id).
async fn send_form(
    mut request: reqwest::RequestBuilder,
    app: &App,
    client_secret: Option<&Secret>,
    mut form: Vec<(&'static str, Zeroizing<String>)>,
) -> Result<reqwest::Response, String> {
    let secret = client_secret.map(|s| Zeroizing::new(String::from_utf8_lossy(s.expose()).into_owned()));
    match (app.auth_style, secret) {
        (AuthStyle::Basic, Some(secret)) => {
            let pair = Zeroizing::new(format!("{}:{}", form_encode(&app.client_id), form_encode(&secret)));
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            request = request.header("authorization", format!("Basic {encoded}"));
        }
        (_, secret) => {
            form.push(("client_id", Zeroizing::new(app.client_id.clone())));
            if let Some(secret) = secret {
                form.push(("client_secret", secret));
            }
        }
    }
    let body = Zeroizing::new(
        form.iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    );
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| chain(&e))
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn form_answer(bytes: &[u8]) -> RawAnswer {
    let mut raw = RawAnswer {
        access_token: None,
        refresh_token: None,
        expires_in: None,
        scope: None,
        error: None,
        error_description: None,
    };
    for (k, v) in url::form_urlencoded::parse(bytes) {
        let v = v.into_owned();
        match k.as_ref() {
            "access_token" => raw.access_token = Some(v),
            "refresh_token" => raw.refresh_token = Some(v),
            "expires_in" => raw.expires_in = Some(serde_json::Value::String(v)),
            "scope" => raw.scope = Some(v),
            "error" => raw.error = Some(v),
            "error_description" => raw.error_description = Some(v),
            _ => {}
        }
    }
    raw
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, CallError> {
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallError::Failed(format!("the provider's answer broke off: {}", chain(&e))))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(CallError::Failed(format!(
                "the provider's answer is larger than {MAX_ANSWER} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn chain(e: &dyn std::error::Error) -> String {
    gigmcp_types::report::error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_answers_and_encodings() {
        let raw = form_answer(b"access_token=a%2Bb&expires_in=60&scope=x+y");
        assert_eq!(raw.access_token.as_deref(), Some("a+b"));
        assert_eq!(raw.expires_in, Some(serde_json::Value::String("60".into())));
        assert_eq!(raw.scope.as_deref(), Some("x y"));
        assert_eq!(form_encode("a b+c/="), "a+b%2Bc%2F%3D");
    }

    #[test]
    fn literal_internal_addresses_are_refused_before_any_call() {
        let guarded = Guarded::new(&EgressSettings::new(8081)).unwrap();
        for url in [
            "https://127.0.0.1/token",
            "https://10.0.0.1/token",
            "https://[::1]/token",
            "https://169.254.169.254/",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert!(guarded.check_literal(&url).is_err(), "{url}");
        }
        assert!(
            guarded
                .check_literal(&url::Url::parse("https://auth.example/").unwrap())
                .is_ok()
        );
    }
}
