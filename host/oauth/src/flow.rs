//! The authorization request of a connection: a fresh `state` and PKCE (S256) verifier per flow, and the
//! provider's URL with the app's parameters. What the browser carries between start and callback (the signed
//! flow cookie) is the control plane's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use gigmcp_types::oauth::App;

/// 32 random bytes, base64url: a `state`, or a PKCE verifier (43 characters, within RFC 7636's 43–128).
pub fn random_token() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// RFC 7636's S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// The provider's authorization URL for one flow: code flow, offline access, consent asked again (so a
/// provider that gives a refresh token only at first consent gives one at a reconnect), PKCE S256, the
/// scopes joined with the app's separator, then the app's own parameters (which may replace `access_type`
/// and `prompt`, never what the flow depends on).
pub fn authorization_url(
    app: &App,
    redirect_uri: &str,
    state: &str,
    verifier: &str,
    scopes: &[String],
) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(&app.authorize_url)?;
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), app.client_id.clone()),
        ("redirect_uri".into(), redirect_uri.into()),
        ("state".into(), state.into()),
        ("code_challenge".into(), challenge(verifier)),
        ("code_challenge_method".into(), "S256".into()),
        ("access_type".into(), "offline".into()),
        ("prompt".into(), "consent".into()),
    ];
    if !scopes.is_empty() {
        params.push(("scope".into(), scopes.join(&app.scope_separator)));
    }
    for (name, value) in &app.params {
        match params.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = value.clone(),
            None => params.push((name.clone(), value.clone())),
        }
    }
    url.query_pairs_mut().extend_pairs(params);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigmcp_types::oauth::{AuthStyle, Vendor};

    #[test]
    fn the_s256_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }

    #[test]
    fn authorization_urls_carry_the_flow_and_the_apps_parameters() {
        let app = App {
            vendor: Vendor::parse("acme").unwrap(),
            authorize_url: "https://auth.acme.example/authorize?tenant=t1".into(),
            token_url: "https://auth.acme.example/token".into(),
            revoke_url: None,
            client_id: "client 1".into(),
            scopes: vec![],
            pkce: false,
            params: vec![
                ("audience".into(), "api".into()),
                ("prompt".into(), "select_account".into()),
            ],
            auth_style: AuthStyle::Basic,
            scope_separator: ",".into(),
            require_refresh_token: true,
            default_expires_in: 3600,
        };
        let url = authorization_url(
            &app,
            "https://gw.example/api/connections/callback",
            "st",
            "ver",
            &["a".into(), "b".into()],
        )
        .unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("t1"));
        assert_eq!(get("client_id"), Some("client 1"));
        assert_eq!(get("scope"), Some("a,b"));
        assert_eq!(get("code_challenge"), Some(challenge("ver").as_str()));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("prompt"), Some("select_account"));
        assert_eq!(get("audience"), Some("api"));
        assert_eq!(pairs.iter().filter(|(n, _)| n == "prompt").count(), 1);
    }
}
