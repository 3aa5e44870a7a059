//! Connected accounts as the proxy sees them: an oauth2 credential's secret is the access token of the
//! profile owner's connection to the credential's vendor, asked of the broker (`gigmcp-oauth`, which
//! implements [`AccountTokens`]; the binary wires it) at every request that carries the credential's
//! placeholder, never once per tunnel: a kept-alive tunnel outlives an access token.

use std::future::Future;
use std::pin::Pin;

use gigmcp_types::oauth::{Owner, Vendor};
use gigmcp_types::secret::Secret;

/// Why there is no token to inject: the request is refused with this (403, or 502 for `refresh-failed`), and
/// the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountError {
    /// `account-not-connected`, `account-needs-reconnect`, `account-no-app` or `account-refresh-failed`.
    pub code: &'static str,
    pub message: String,
}

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Secret, AccountError>> + Send + 'a>>;

/// Gives a connection's current access token, refreshing it first when it is about to expire.
pub trait AccountTokens: Send + Sync {
    fn access_token(&self, owner: Owner, vendor: Vendor) -> TokenFuture<'_>;
}
