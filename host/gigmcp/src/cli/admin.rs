//! `gigmcp admin …`: the operator's commands on the control plane (a login link for the first admin).

use serde_json::json;

use gigmcp_control::session::{LOGIN_LINK_TTL, create_login_link};
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::user::Role;

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Print a single-use login URL for the web API, valid 15 minutes (first-run bootstrap; audited).
    LoginLink {
        /// Who the link logs in (a user of issuer `gigmcp:login-link`).
        #[arg(long = "as", default_value = "admin")]
        subject: String,
        /// The role of that user: admin or user.
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// Print the REST API's OpenAPI document (what GET /api/openapi.json serves; `make web-api` writes it to
    /// web/src/api/openapi.json, from which the dashboard's typed client is generated).
    Openapi,
}

/// `gigmcp admin …`.
pub fn admin(command: AdminCommand, env: &crate::config::Env) -> anyhow::Result<()> {
    match command {
        AdminCommand::Openapi => {
            println!("{}", gigmcp_control::api::document_text());
            Ok(())
        }
        AdminCommand::LoginLink { subject, role } => {
            let role =
                Role::parse(&role).ok_or_else(|| anyhow::anyhow!("invalid --role {role:?}: give admin or user"))?;
            let subject = subject.trim();
            if subject.is_empty()
                || subject.len() > 64
                || !subject
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
            {
                anyhow::bail!("invalid --as {subject:?}: give 1 to 64 characters from a-z, A-Z, 0-9 and - _ . @");
            }
            let paths = crate::config::Paths::from_env(env)?;
            let store = crate::cli::open_store_at(&paths)?;
            // GIG_PUBLIC_URL when set; else the URL the gateway on this database serves at (its real port);
            // else GIG_LISTEN's.
            let public_url = match (env.get("GIG_PUBLIC_URL"), store.served_url()?) {
                (None, Some(served)) => url::Url::parse(&served)?,
                _ => crate::config::public_url(env)?,
            };
            let url = create_login_link(&store, &public_url, subject, role)?;
            gigmcp_audit::write_now(
                &store,
                NewAuditEvent {
                    kind: "auth.login_link".into(),
                    actor: "operator".into(),
                    profile: None,
                    server: None,
                    outcome: Outcome::Ok,
                    detail: json!({"subject": subject, "role": role.as_str(), "valid_seconds": LOGIN_LINK_TTL.as_secs()}),
                },
            )?;
            println!("{url}");
            eprintln!(
                "(single use, valid 15 minutes; it logs in {subject} as {})",
                role.as_str()
            );
            Ok(())
        }
    }
}
