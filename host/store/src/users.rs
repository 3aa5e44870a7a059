//! Users of the control plane, their web sessions, and single-use login links.
//!
//! Invariant 6: session tokens and login-link tokens are stored only as SHA-256 hashes ([`TokenHash`]); a
//! token is shown once (in a cookie, or printed by `gigmcp admin login-link`).

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError, now};
use gigmcp_types::ids::UserId;
use gigmcp_types::token::TokenHash;
use gigmcp_types::user::{ProfileAccess, Role};

/// Who logged in, as the identity provider and the auth-mapper plugins said.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    pub profiles: ProfileAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    /// The profiles the auth-mapper granted beyond the user's own.
    pub profiles: ProfileAccess,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// A valid web session: its user and, while an admin views the dashboard as someone else, whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub user: User,
    pub view_as: Option<ViewAs>,
}

/// Whom an admin's session views the dashboard as, read-only, and until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewAs {
    pub user: User,
    pub until: i64,
}

/// The issuer recorded for users who logged in through `gigmcp admin login-link`.
pub const LOGIN_LINK_ISSUER: &str = "gigmcp:login-link";

/// `"all"` or `["slug", ...]`, as stored in `users.profiles`.
pub fn encode_access(access: &ProfileAccess) -> String {
    match access {
        ProfileAccess::All => "\"all\"".to_owned(),
        ProfileAccess::Only(slugs) => serde_json::to_string(slugs).unwrap_or_else(|_| "[]".to_owned()),
    }
}

pub fn decode_access(text: &str) -> Result<ProfileAccess, StoreError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) if s == "all" => Ok(ProfileAccess::All),
        Ok(value @ serde_json::Value::Array(_)) => serde_json::from_value(value)
            .map(ProfileAccess::Only)
            .map_err(|e| StoreError::Corrupt(format!("stored profile grant is corrupt: {e}"))),
        _ => Err(StoreError::Corrupt(format!(
            "stored profile grant is corrupt: {text:?}"
        ))),
    }
}

const USER_COLUMNS: &str =
    "u.id, u.issuer, u.subject, u.name, u.email, u.role, u.profiles, u.created_at, u.last_login_at";

type UserRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
);

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode_user(row: UserRow) -> Result<User, StoreError> {
    let (id, issuer, subject, name, email, role, profiles, created_at, last_login_at) = row;
    Ok(User {
        id: UserId(id),
        issuer,
        subject,
        name,
        email,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {id} has role {role:?}")))?,
        profiles: decode_access(&profiles)?,
        created_at,
        last_login_at,
    })
}

impl Store {
    /// Creates the user or, when (issuer, subject) is known, refreshes its name, email, role and grant: the
    /// role and grant are decided anew at every login. Records the login time.
    pub fn upsert_user(&self, user: &NewUser) -> Result<UserId, StoreError> {
        let at = now();
        let id = self.lock().query_row(
            "INSERT INTO users (issuer, subject, name, email, role, profiles, created_at, last_login_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (issuer, subject) DO UPDATE SET name = ?3, email = ?4, role = ?5, profiles = ?6,
                 last_login_at = ?7
             RETURNING id",
            params![
                user.issuer,
                user.subject,
                user.name,
                user.email,
                user.role.as_str(),
                encode_access(&user.profiles),
                at
            ],
            |r| r.get(0),
        )?;
        Ok(UserId(id))
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = self
            .lock()
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
                [id.0],
                user_row,
            )
            .optional()?;
        row.map(decode_user).transpose()
    }

    /// Users with an id above `after`, by id (keyset pagination).
    pub fn list_users(&self, after: i64, limit: usize) -> Result<Vec<User>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id > ?1 ORDER BY u.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], user_row)?;
        rows.map(|row| decode_user(row?)).collect()
    }

    /// Changes a user's role (an admin's decision through the API; the next login decides it again).
    pub fn set_user_role(&self, id: UserId, role: Role) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.as_str(), id.0])?
            > 0)
    }

    /// Deletes a user; their sessions end and their profiles become the operator's (owner NULL).
    pub fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        Ok(self.lock().execute("DELETE FROM users WHERE id = ?1", [id.0])? > 0)
    }

    pub fn create_web_session(&self, token: &TokenHash, user: UserId, expires_at: i64) -> Result<(), StoreError> {
        let conn = self.lock();
        // Expired sessions are removed as new ones are made, so the table does not grow without bound.
        conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now()])?;
        conn.execute(
            "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![&token.0[..], user.0, now(), expires_at],
        )?;
        Ok(())
    }

    /// The user of an unexpired session.
    pub fn session_user(&self, token: &TokenHash) -> Result<Option<User>, StoreError> {
        Ok(self.web_session(token)?.map(|s| s.user))
    }

    /// An unexpired session: its user, and whom it views as while that has not expired.
    pub fn web_session(&self, token: &TokenHash) -> Result<Option<WebSession>, StoreError> {
        let conn = self.lock();
        let at = now();
        let row = conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, s.view_as_user_id, s.view_as_until FROM web_sessions s
                     JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = ?1 AND s.expires_at > ?2"
                ),
                params![&token.0[..], at],
                |r| Ok((user_row(r)?, r.get::<_, Option<i64>>(9)?, r.get::<_, Option<i64>>(10)?)),
            )
            .optional()?;
        let Some((user, view_as_user, until)) = row else {
            return Ok(None);
        };
        let view_as = match (view_as_user, until) {
            (Some(id), Some(until)) if until > at => conn
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
                    [id],
                    user_row,
                )
                .optional()?
                .map(decode_user)
                .transpose()?
                .map(|user| ViewAs { user, until }),
            _ => None,
        };
        Ok(Some(WebSession {
            user: decode_user(user)?,
            view_as,
        }))
    }

    /// Makes a session view as `user` until `until` (Unix seconds), or (`None`) stop. False when the session is
    /// unknown or expired.
    pub fn set_session_view_as(&self, token: &TokenHash, view_as: Option<(UserId, i64)>) -> Result<bool, StoreError> {
        let (user, until) = match view_as {
            Some((user, until)) => (Some(user.0), Some(until)),
            None => (None, None),
        };
        Ok(self.lock().execute(
            "UPDATE web_sessions SET view_as_user_id = ?2, view_as_until = ?3
             WHERE token_hash = ?1 AND expires_at > ?4",
            params![&token.0[..], user, until, now()],
        )? > 0)
    }

    pub fn delete_web_session(&self, token: &TokenHash) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("DELETE FROM web_sessions WHERE token_hash = ?1", [&token.0[..]])?
            > 0)
    }

    pub fn create_login_link(
        &self,
        token: &TokenHash,
        expires_at: i64,
        subject: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        // Used and expired links are of no use (their events are in the audit log): drop them as new ones
        // are made, so the table stays small.
        conn.execute(
            "DELETE FROM login_links WHERE used_at IS NOT NULL OR expires_at <= ?1",
            [now()],
        )?;
        conn.execute(
            "INSERT INTO login_links (token_hash, expires_at, subject, role) VALUES (?1, ?2, ?3, ?4)",
            params![&token.0[..], expires_at, subject, role.as_str()],
        )?;
        Ok(())
    }

    /// Uses a login link: succeeds once, before it expires; returns who it logs in.
    pub fn consume_login_link(&self, token: &TokenHash) -> Result<Option<(String, Role)>, StoreError> {
        let at = now();
        let row: Option<(String, String)> = self
            .lock()
            .query_row(
                "UPDATE login_links SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                 RETURNING subject, role",
                params![&token.0[..], at],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((subject, role)) => {
                let role =
                    Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("login link role {role:?}")))?;
                Ok(Some((subject, role)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store as store;
    use gigmcp_types::token::NewToken;

    fn alice(role: Role, profiles: ProfileAccess) -> NewUser {
        NewUser {
            issuer: "https://idp".into(),
            subject: "alice".into(),
            name: Some("Alice".into()),
            email: None,
            role,
            profiles,
        }
    }

    #[test]
    fn upsert_user_refreshes_role_and_grant_at_every_login() {
        let (_dir, store) = store();
        let id = store
            .upsert_user(&alice(Role::User, ProfileAccess::Only(vec!["a".into()])))
            .unwrap();
        let again = store.upsert_user(&alice(Role::Admin, ProfileAccess::All)).unwrap();
        assert_eq!(id, again);
        let user = store.user(id).unwrap().unwrap();
        assert_eq!(user.role, Role::Admin);
        assert_eq!(user.profiles, ProfileAccess::All);
    }

    #[test]
    fn sessions_are_found_by_hash_and_end() {
        let (_dir, store) = store();
        let id = store
            .upsert_user(&alice(Role::User, ProfileAccess::Only(vec![])))
            .unwrap();
        let token = NewToken::generate();
        store.create_web_session(&token.hash(), id, now() + 60).unwrap();
        assert_eq!(store.session_user(&token.hash()).unwrap().unwrap().id, id);
        assert!(store.delete_web_session(&token.hash()).unwrap());
        assert!(store.session_user(&token.hash()).unwrap().is_none());
        let expired = NewToken::generate();
        store.create_web_session(&expired.hash(), id, now() - 1).unwrap();
        assert!(store.session_user(&expired.hash()).unwrap().is_none());
    }

    #[test]
    fn a_session_views_as_another_user_until_it_expires_or_stops() {
        let (_dir, store) = store();
        let admin = store.upsert_user(&alice(Role::Admin, ProfileAccess::All)).unwrap();
        let bob = store
            .upsert_user(&NewUser {
                subject: "bob".into(),
                ..alice(Role::User, ProfileAccess::Only(vec![]))
            })
            .unwrap();
        let token = NewToken::generate();
        store.create_web_session(&token.hash(), admin, now() + 600).unwrap();
        assert_eq!(store.web_session(&token.hash()).unwrap().unwrap().view_as, None);
        assert!(
            store
                .set_session_view_as(&token.hash(), Some((bob, now() + 60)))
                .unwrap()
        );
        let session = store.web_session(&token.hash()).unwrap().unwrap();
        assert_eq!(session.user.id, admin, "the session keeps its own user");
        assert_eq!(session.view_as.unwrap().user.id, bob);
        // Past its end, the view is over by itself.
        assert!(
            store
                .set_session_view_as(&token.hash(), Some((bob, now() - 1)))
                .unwrap()
        );
        assert_eq!(store.web_session(&token.hash()).unwrap().unwrap().view_as, None);
        assert!(
            store
                .set_session_view_as(&token.hash(), Some((bob, now() + 60)))
                .unwrap()
        );
        assert!(store.set_session_view_as(&token.hash(), None).unwrap());
        assert_eq!(store.web_session(&token.hash()).unwrap().unwrap().view_as, None);
        // A deleted user is viewed no more.
        assert!(
            store
                .set_session_view_as(&token.hash(), Some((bob, now() + 60)))
                .unwrap()
        );
        store.delete_user(bob).unwrap();
        assert_eq!(store.web_session(&token.hash()).unwrap().unwrap().view_as, None);
        assert!(!store.set_session_view_as(&NewToken::generate().hash(), None).unwrap());
    }

    #[test]
    fn a_login_link_works_once_and_not_after_expiry() {
        let (_dir, store) = store();
        let link = NewToken::generate();
        store
            .create_login_link(&link.hash(), now() + 60, "admin", Role::Admin)
            .unwrap();
        assert_eq!(
            store.consume_login_link(&link.hash()).unwrap(),
            Some(("admin".to_owned(), Role::Admin))
        );
        assert_eq!(store.consume_login_link(&link.hash()).unwrap(), None);
        let old = NewToken::generate();
        store
            .create_login_link(&old.hash(), now() - 1, "admin", Role::Admin)
            .unwrap();
        assert_eq!(store.consume_login_link(&old.hash()).unwrap(), None);
    }
}
