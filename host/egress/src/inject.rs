//! Credentials into requests. The host, not a plugin, finds placeholders (in header values and the query
//! string) and says which credential each stands for; the `credential-injector` plugins answer with header
//! and query operations naming secrets by handle; the host substitutes the plaintext as it applies them.
//!
//! Invariant 3 (second half) is enforced here: a secret is substituted only into a request whose
//! `host:port` its credential's host list allows (`HostList::allows`) — only such credentials are granted,
//! so a handle of any other credential does not exist for the request — and a placeholder of this
//! server's credentials seen in a request to a host its credential does not allow refuses the request.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use gigmcp_types::credential::{Credential, Placeholder};
use gigmcp_types::policy::{Grant, PlaceholderLocation, PlaceholderSite, RequestOp, SecretHandle, TemplatePart};
use gigmcp_types::secret::Secret;

/// A credential this tunnel's host allows, with its secret (read once per tunnel, zeroized when it ends; a
/// connected account's token, once per request).
#[derive(Clone)]
pub struct Granted {
    pub credential: Credential,
    pub secret: Arc<Secret>,
}

impl Granted {
    pub fn handle(&self) -> SecretHandle {
        SecretHandle(format!("credential-{}", self.credential.id.0))
    }
}

/// What the host found in a request.
#[derive(Debug, Default)]
pub struct Found {
    pub sites: Vec<PlaceholderSite>,
}

/// A placeholder of the caller's own credential, in a request to a host that credential does not allow.
#[derive(Debug, PartialEq, Eq)]
pub struct WrongHost {
    pub credential: String,
}

/// Finds the caller's placeholders in header values and the query string. `credentials`: all of the
/// caller's; `allowed(c)`: whether the request's host:port may carry `c`. Placeholder-shaped text that is
/// not one of the caller's placeholders is left alone (it is only a candidate).
pub fn discover(
    headers: &HeaderMap,
    query: Option<&str>,
    credentials: &[Credential],
    allowed: impl Fn(&Credential) -> bool,
) -> Result<Found, WrongHost> {
    let mut found = Found::default();
    let owner = |placeholder: &Placeholder| credentials.iter().find(|c| &c.placeholder == placeholder);
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        for (at, placeholder) in Placeholder::find_all(value) {
            let Some(credential) = owner(&placeholder) else {
                continue;
            };
            if !allowed(credential) {
                return Err(WrongHost {
                    credential: credential.spec.name.to_string(),
                });
            }
            let (mut before, mut after) = (&value[..at], &value[at + Placeholder::LEN..]);
            // The placeholder alone in the credential's own header: the credential's format applies
            // (`Authorization: gigph_…` becomes `Authorization: Bearer <secret>`).
            if before.is_empty()
                && after.is_empty()
                && name.as_str().eq_ignore_ascii_case(credential.spec.header.as_str())
            {
                (before, after) = credential.spec.format.parts();
            }
            found.sites.push(PlaceholderSite {
                credential: credential.spec.name.to_string(),
                location: PlaceholderLocation::Header(name.as_str().to_owned()),
                before: before.to_owned(),
                after: after.to_owned(),
            });
        }
    }
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        for (at, placeholder) in Placeholder::find_all(value) {
            let Some(credential) = owner(&placeholder) else {
                continue;
            };
            if !allowed(credential) {
                return Err(WrongHost {
                    credential: credential.spec.name.to_string(),
                });
            }
            found.sites.push(PlaceholderSite {
                credential: credential.spec.name.to_string(),
                location: PlaceholderLocation::Query(name.to_owned()),
                before: value[..at].to_owned(),
                after: value[at + Placeholder::LEN..].to_owned(),
            });
        }
    }
    Ok(found)
}

pub fn grants(granted: &[Granted]) -> Vec<Grant> {
    granted
        .iter()
        .map(|g| Grant {
            credential: g.credential.spec.name.to_string(),
            handle: g.handle(),
        })
        .collect()
}

/// Headers a plugin may not set or remove: the framing and the routing belong to the proxy (the gateway's one
/// list, `gigmcp_types::credential::is_reserved_header`).
fn reserved(name: &str) -> bool {
    gigmcp_types::credential::is_reserved_header(name)
}

/// A credential whose secret went into the request: named for the audit event, and its secret and placeholder
/// for scrubbing the response.
pub struct Injected {
    pub credential: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub placeholder: Vec<u8>,
}

/// Applies the plugins' operations to the request's headers and query; returns the new query and the
/// credentials whose secrets went in (each once, in the order first used). An operation that cannot be applied refuses the request (nothing is half-applied to
/// what goes upstream: the caller drops the request).
pub fn apply(
    ops: &[RequestOp],
    headers: &mut HeaderMap,
    query: Option<&str>,
    granted: &[Granted],
) -> Result<(Option<String>, Vec<Injected>), String> {
    let mut injected: Vec<Injected> = Vec::new();
    let mut render = |parts: &[TemplatePart]| -> Result<Zeroizing<Vec<u8>>, String> {
        let mut value = Zeroizing::new(Vec::new());
        for part in parts {
            match part {
                TemplatePart::Literal(text) => value.extend_from_slice(text.as_bytes()),
                TemplatePart::Secret(handle) => {
                    let g = granted
                        .iter()
                        .find(|g| &g.handle() == handle)
                        .ok_or("a plugin named a secret this request was not granted")?;
                    value.extend_from_slice(g.secret.expose());
                    let name = g.credential.spec.name.as_str();
                    if !injected.iter().any(|i| i.credential == name) {
                        injected.push(Injected {
                            credential: name.to_owned(),
                            secret: Zeroizing::new(g.secret.expose().to_vec()),
                            placeholder: g.credential.placeholder.as_str().as_bytes().to_vec(),
                        });
                    }
                }
            }
        }
        Ok(value)
    };
    let mut params: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let mut query_changed = false;
    for op in ops {
        match op {
            RequestOp::SetHeader { name, value } => {
                if reserved(name) {
                    return Err(format!("a plugin may not set the {name} header"));
                }
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a header name"))?;
                let value = render(value)?;
                let mut value = HeaderValue::from_bytes(&value)
                    .map_err(|_| format!("the value for {name} is not a valid header value"))?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            RequestOp::RemoveHeader(name) => {
                if reserved(name) {
                    return Err(format!("a plugin may not remove the {name} header"));
                }
                headers.remove(name.as_str());
            }
            RequestOp::SetQuery { name, value } => {
                let value = render(value)?;
                // Placeholders and the literals around them were taken from the query as sent (already
                // encoded); a secret is encoded here, so that it cannot add or split parameters.
                let encoded = encode_query_value(&value);
                query_changed = true;
                match params.iter_mut().find(|(n, _)| n == name) {
                    Some(param) => param.1 = encoded,
                    None => params.push((name.clone(), encoded)),
                }
            }
        }
    }
    let query = if query_changed {
        Some(
            params
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        )
    } else {
        query.map(str::to_owned)
    };
    Ok((query, injected))
}

/// Percent-encodes what is not safe in a query value, leaving `%`-escapes and the characters placeholders
/// and formats are made of as they are.
fn encode_query_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~%!$'()*+,;:@/?".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigmcp_types::credential::{CredentialId, CredentialName, CredentialSpec, EnvName, Format, HostList};
    use gigmcp_types::ids::SecretId;

    fn credential(id: i64, name: &str, hosts: &str) -> Credential {
        Credential {
            id: CredentialId(id),
            spec: CredentialSpec {
                server: gigmcp_types::names::ServerName::parse("web").unwrap(),
                profile: None,
                name: CredentialName::parse(name).unwrap(),
                hosts: HostList::parse(hosts).unwrap(),
                header: gigmcp_types::credential::HeaderName::parse("Authorization").unwrap(),
                format: Format::parse("Bearer {secret}").unwrap(),
                env_name: EnvName::parse("API_TOKEN").unwrap(),
            },
            placeholder: Placeholder::generate(),
            source: gigmcp_types::credential::CredentialSource::Vault(SecretId(id)),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn placeholders_are_found_in_headers_and_the_query() {
        let api = credential(1, "api", "api.example.com");
        let ph = api.placeholder.as_str().to_owned();
        let h = headers(&[("authorization", &ph), ("x-key", &format!("k={ph};v=1"))]);
        let query = format!("a=1&key=pre{ph}&b=2");
        let found = discover(&h, Some(&query), std::slice::from_ref(&api), |_| true).unwrap();
        assert_eq!(found.sites.len(), 3);
        // Alone in its credential's header: the credential's format goes around it.
        assert!(
            found
                .sites
                .iter()
                .any(|s| s.location == PlaceholderLocation::Header("authorization".into())
                    && s.before == "Bearer "
                    && s.after.is_empty())
        );
        assert!(
            found
                .sites
                .iter()
                .any(|s| s.location == PlaceholderLocation::Header("x-key".into())
                    && s.before == "k="
                    && s.after == ";v=1")
        );
        assert!(
            found
                .sites
                .iter()
                .any(|s| s.location == PlaceholderLocation::Query("key".into()) && s.before == "pre")
        );
    }

    #[test]
    fn a_placeholder_for_a_host_its_credential_does_not_allow_refuses_the_request() {
        let api = credential(1, "api", "api.example.com");
        let h = headers(&[("authorization", &format!("Bearer {}", api.placeholder.as_str()))]);
        let refused = discover(&h, None, std::slice::from_ref(&api), |_| false).unwrap_err();
        assert_eq!(refused.credential, "api");
        // Another server's placeholder (not among this caller's credentials) is only data.
        let foreign = Placeholder::generate();
        let h = headers(&[("authorization", foreign.as_str())]);
        assert!(
            discover(&h, None, std::slice::from_ref(&api), |_| false)
                .unwrap()
                .sites
                .is_empty()
        );
    }

    #[test]
    fn operations_substitute_granted_secrets_and_report_them() {
        let api = credential(1, "api", "api.example.com");
        let granted = vec![Granted {
            credential: api.clone(),
            secret: Arc::new(Secret::new(b"s3cr3t&x=1".to_vec())),
        }];
        let ops = vec![
            RequestOp::SetHeader {
                name: "Authorization".into(),
                value: vec![
                    TemplatePart::Literal("Bearer ".into()),
                    TemplatePart::Secret(granted[0].handle()),
                ],
            },
            RequestOp::SetQuery {
                name: "key".into(),
                value: vec![TemplatePart::Secret(granted[0].handle())],
            },
            RequestOp::RemoveHeader("x-drop".into()),
        ];
        let mut h = headers(&[("x-drop", "1"), ("accept", "*/*")]);
        let (query, injected) = apply(&ops, &mut h, Some("a=1&key=old"), &granted).unwrap();
        assert_eq!(h["authorization"], "Bearer s3cr3t&x=1");
        assert!(h["authorization"].is_sensitive());
        assert!(!h.contains_key("x-drop"));
        assert_eq!(query.as_deref(), Some("a=1&key=s3cr3t%26x%3D1"));
        assert_eq!(injected.len(), 1);
        assert_eq!(injected[0].credential, "api");
        assert_eq!(injected[0].secret.as_slice(), b"s3cr3t&x=1");
        assert_eq!(injected[0].placeholder, api.placeholder.as_str().as_bytes());
    }

    #[test]
    fn reserved_headers_cannot_be_set_by_plugins() {
        // `Expect` is the proxy's too: the inject list once missed it while credentials refused it.
        for name in [
            "Host",
            "content-length",
            "Proxy-Authorization",
            "Transfer-Encoding",
            "Expect",
            "Proxy-X",
        ] {
            assert!(reserved(name), "{name}");
        }
        assert!(!reserved("Authorization"));
        let mut headers = HeaderMap::new();
        let op = RequestOp::SetHeader {
            name: "Host".into(),
            value: vec![TemplatePart::Literal("evil.example".into())],
        };
        assert!(apply(&[op], &mut headers, None, &[]).is_err());
        assert!(headers.is_empty());
    }

    #[test]
    fn ungranted_handles_are_refused() {
        let mut headers = HeaderMap::new();
        let op = RequestOp::SetHeader {
            name: "Authorization".into(),
            value: vec![TemplatePart::Secret(SecretHandle("credential-7".into()))],
        };
        assert!(apply(&[op], &mut headers, None, &[]).is_err());
    }

    #[test]
    fn query_values_are_encoded_so_a_secret_cannot_add_parameters() {
        assert_eq!(encode_query_value(b"a&b=c d"), "a%26b%3Dc%20d");
        assert_eq!(encode_query_value(b"abc-._~"), "abc-._~");
    }
}
