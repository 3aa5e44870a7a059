//! Placeholder for OIDC login (engineer OIDC replaces this file wholesale).

use std::sync::Arc;

use axum::Router;

use super::ControlState;

/// The OpenID Connect client: filled in by the OIDC work.
pub struct Oidc;

impl Oidc {
    /// `Err(reason)` while discovery has not succeeded yet: the API answers 503 with the reason.
    pub fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// `GET /auth/login`, `GET /auth/callback`, `POST /auth/logout`.
pub fn routes() -> Router<Arc<ControlState>> {
    Router::new()
}
