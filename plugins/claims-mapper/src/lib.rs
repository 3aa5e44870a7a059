//! `claims-mapper`: maps a verified login to a principal.
//!
//! Roles come from a claim found by JSON pointer (a list of names, an object whose keys are the names — as
//! Zitadel's `urn:zitadel:iam:org:project:roles` — or one name) through `role_map` to the gateway's roles
//! `admin` and `user`. A login with no mapped role is forbidden unless `default_role` says otherwise. Admins
//! may use every profile; users the profiles the `profiles_claim` lists (none if it is absent).

use std::collections::HashMap;

use gigmcp_plugin_sdk::prelude::*;
use serde_json::Value;

const ZITADEL_ROLES: &str = "/urn:zitadel:iam:org:project:roles";

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    preset: Option<String>,
    #[serde(default)]
    issuers: Vec<String>,
    user_claim: Option<String>,
    roles_claim: Option<String>,
    role_map: Option<HashMap<String, String>>,
    default_role: Option<String>,
    profiles_claim: Option<String>,
}

pub struct ClaimsMapper {
    issuers: Vec<String>,
    user_claim: Option<String>,
    roles_claim: String,
    role_map: HashMap<String, String>,
    default_role: Option<String>,
    profiles_claim: String,
}

fn pointer(text: String, field: &str) -> Result<String, PluginError> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text)
    } else {
        Err(PluginError::new(
            "invalid-config",
            format!("{field} must be a JSON pointer such as /roles (got {text:?})"),
        ))
    }
}

impl Plugin for ClaimsMapper {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = include_str!("../schema.json");

    fn new(config: Config) -> Result<Self, PluginError> {
        let preset_roles = match config.preset.as_deref() {
            Some("zitadel") => ZITADEL_ROLES,
            _ => "/roles",
        };
        let role_map = config.role_map.unwrap_or_else(|| {
            [("admin", "admin"), ("user", "user")]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect()
        });
        Ok(Self {
            issuers: config.issuers,
            user_claim: config.user_claim.map(|c| pointer(c, "user_claim")).transpose()?,
            roles_claim: pointer(config.roles_claim.unwrap_or_else(|| preset_roles.into()), "roles_claim")?,
            role_map,
            default_role: config.default_role,
            profiles_claim: pointer(
                config.profiles_claim.unwrap_or_else(|| "/gigmcp_profiles".into()),
                "profiles_claim",
            )?,
        })
    }
}

/// Names in a claim: a list of strings, an object's keys, or one string.
fn names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl AuthMapper for ClaimsMapper {
    fn map_identity(&self, _ctx: &CallContext, identity: &Identity) -> AuthOutcome {
        if !self.issuers.is_empty() && !self.issuers.contains(&identity.issuer) {
            return AuthOutcome::unauthenticated(
                "unknown-issuer",
                format!("logins from {} are not accepted", identity.issuer),
            );
        }
        let claims: Value = match serde_json::from_str(&identity.claims) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => return AuthOutcome::unauthenticated("bad-claims", "the login's claims are not a JSON object"),
        };
        let mut roles: Vec<String> = names(claims.pointer(&self.roles_claim))
            .iter()
            .filter_map(|r| self.role_map.get(r).cloned())
            .collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            match &self.default_role {
                Some(role) => roles.push(role.clone()),
                None => {
                    return AuthOutcome::forbidden(
                        "no-role",
                        format!("{} has no role that maps to a gateway role", identity.subject),
                    );
                }
            }
        }
        let user = self
            .user_claim
            .as_deref()
            .and_then(|p| claims.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}#{}", identity.issuer, identity.subject));
        let profiles = if roles.iter().any(|r| r == "admin") {
            ProfileAccess::All
        } else {
            ProfileAccess::Only(names(claims.pointer(&self.profiles_claim)))
        };
        AuthOutcome::Principal(Principal { user, roles, profiles })
    }
}

gigmcp_plugin_sdk::export_plugin!(ClaimsMapper);

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(claims: &str) -> Identity {
        Identity {
            issuer: "https://idp".into(),
            subject: "u1".into(),
            claims: claims.into(),
            token_fingerprint: "f".into(),
        }
    }

    fn ctx() -> CallContext {
        CallContext {
            request_id: "r".into(),
            profile: None,
        }
    }

    #[test]
    fn zitadel_roles_are_the_keys_of_an_object() {
        let config: Config = serde_json::from_str(r#"{"preset":"zitadel"}"#).unwrap();
        let mapper = ClaimsMapper::new(config).unwrap();
        let out = mapper.map_identity(
            &ctx(),
            &identity(r#"{"urn:zitadel:iam:org:project:roles":{"admin":{"org":"x"}}}"#),
        );
        let AuthOutcome::Principal(p) = out else {
            panic!("{out:?}")
        };
        assert_eq!(p.roles, ["admin"]);
        assert!(matches!(p.profiles, ProfileAccess::All));
        assert_eq!(p.user, "https://idp#u1");
    }

    #[test]
    fn users_get_the_listed_profiles_and_unmapped_logins_are_forbidden() {
        let mapper = ClaimsMapper::new(Config::default()).unwrap();
        let out = mapper.map_identity(&ctx(), &identity(r#"{"roles":["user"],"gigmcp_profiles":["team"]}"#));
        let AuthOutcome::Principal(p) = out else {
            panic!("{out:?}")
        };
        assert!(matches!(&p.profiles, ProfileAccess::Only(list) if list == &["team"]));
        assert!(matches!(
            mapper.map_identity(&ctx(), &identity(r#"{"roles":["guest"]}"#)),
            AuthOutcome::Forbidden(_)
        ));
    }
}
