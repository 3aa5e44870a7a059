//! SQLite storage: forward-only migrations and a small repository layer.
//!
//! The CLI and a running gateway share one database file. WAL lets readers proceed while a writer commits,
//! and a busy timeout makes concurrent writers wait instead of failing. Nothing here relies on SQLite-only
//! SQL beyond `PRAGMA`s, so a Postgres backend can follow.
//!
//! Owns the schema and every SQL statement of the gateway, the audit log's included (`audit`). Depends only on
//! the vocabulary (`gigmcp-types`); must never depend on the vault, the plugin runtime, the data plane or
//! anything above them (it stores sealed secrets as data, it never opens them).

#![forbid(unsafe_code)]

pub mod audit;
pub mod catalog;
pub mod credentials;
pub mod metrics;
mod migrations;
pub mod oauth;
pub mod plugins;
pub mod tools;
pub mod users;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use gigmcp_types::ids::ProfileId;
use gigmcp_types::names::{Prefix, ProfileSlug, ServerName};
use gigmcp_types::server::{ServerDef, ServerSpec};
use gigmcp_types::token::{NewToken, TokenHash};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("profile {0} already exists")]
    ProfileExists(ProfileSlug),
    #[error("no profile named {0}")]
    NoProfile(ProfileSlug),
    #[error("server {0} already exists")]
    ServerExists(ServerName),
    #[error("no server named {0}")]
    NoServer(ServerName),
    #[error("server {server} is used by profile(s) {profiles}; remove it from them first")]
    ServerInUse { server: ServerName, profiles: String },
    #[error("server {server} is already in profile {profile}")]
    AlreadyInProfile { profile: ProfileSlug, server: ServerName },
    #[error("server {server} is not in profile {profile}")]
    NotInProfile { profile: ProfileSlug, server: ServerName },
    #[error("{0}")]
    Corrupt(String),
    /// A write made against an older state (its `If-Match` names another entity tag).
    #[error("{0}")]
    Stale(String),
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub id: ProfileId,
    pub slug: ProfileSlug,
    pub name: String,
    pub created_at: i64,
    /// Who made it through the API; `None` for profiles made with the CLI (visible to admins only).
    pub owner: Option<gigmcp_types::ids::UserId>,
}

/// A profile with the servers it serves, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileConfig {
    pub id: ProfileId,
    pub slug: ProfileSlug,
    pub servers: Vec<ServerDef>,
}

pub struct Store {
    conn: Mutex<Connection>,
    /// A read-only connection of its own for token checks, which run on every request: they never wait
    /// behind the watcher's or an API call's queries.
    auth: Mutex<Connection>,
}

use gigmcp_types::sync::now_secs as now;

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        restrict_to_owner(path);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Several connections write (the gateway's, the control plane's, the CLI's): a transaction that reads
        // and then writes must take the write lock up front, where the busy timeout waits for it. A deferred
        // one that finds another connection committed meanwhile fails at once with "database is locked".
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations::apply(&mut conn)?;
        let auth = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        auth.busy_timeout(Duration::from_secs(5))?;
        Ok(Self {
            conn: Mutex::new(conn),
            auth: Mutex::new(auth),
        })
    }

    /// Records the URL a gateway started on this database serves at.
    pub fn set_served_url(&self, url: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO served_url (id, url, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET url = ?1, updated_at = ?2",
            params![url, now()],
        )?;
        Ok(())
    }

    /// The URL the last gateway started on this database serves at, if one ever started.
    pub fn served_url(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT url FROM served_url WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back), so a
        // poisoned lock is still safe to use.
        gigmcp_types::sync::lock(&self.conn)
    }

    /// Changes whenever another connection commits: the gateway polls this to pick up CLI edits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.lock().query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn create_profile(&self, slug: &ProfileSlug, name: &str) -> Result<(Profile, NewToken), StoreError> {
        self.create_owned_profile(slug, name, None)
    }

    /// Creates a profile owned by a user (`None`: the operator's, visible to admins only).
    pub fn create_owned_profile(
        &self,
        slug: &ProfileSlug,
        name: &str,
        owner: Option<gigmcp_types::ids::UserId>,
    ) -> Result<(Profile, NewToken), StoreError> {
        let token = NewToken::generate();
        let conn = self.lock();
        let created_at = now();
        let inserted = conn.execute(
            "INSERT INTO profiles (slug, name, token_hash, created_at, owner_id) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (slug) DO NOTHING",
            params![slug.as_str(), name, &token.hash().0[..], created_at, owner.map(|o| o.0)],
        )?;
        if inserted == 0 {
            return Err(StoreError::ProfileExists(slug.clone()));
        }
        let profile = Profile {
            id: ProfileId(conn.last_insert_rowid()),
            slug: slug.clone(),
            name: name.to_owned(),
            created_at,
            owner,
        };
        Ok((profile, token))
    }

    pub fn profile(&self, slug: &ProfileSlug) -> Result<Profile, StoreError> {
        self.list_profiles()?
            .into_iter()
            .find(|p| &p.slug == slug)
            .ok_or_else(|| StoreError::NoProfile(slug.clone()))
    }

    /// Changes a profile's display name.
    pub fn rename_profile(&self, slug: &ProfileSlug, name: &str) -> Result<(), StoreError> {
        let n = self.lock().execute(
            "UPDATE profiles SET name = ?1 WHERE slug = ?2",
            params![name, slug.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::NoProfile(slug.clone()));
        }
        Ok(())
    }

    pub fn list_profiles(&self) -> Result<Vec<Profile>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id, slug, name, created_at, owner_id FROM profiles ORDER BY slug")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, slug, name, created_at, owner) = row?;
            Ok(Profile {
                id: ProfileId(id),
                slug: parse_stored(ProfileSlug::parse(&slug))?,
                name,
                created_at,
                owner: owner.map(gigmcp_types::ids::UserId),
            })
        })
        .collect()
    }

    pub fn delete_profile(&self, slug: &ProfileSlug) -> Result<(), StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM profiles WHERE slug = ?1", [slug.as_str()])?;
        if n == 0 {
            return Err(StoreError::NoProfile(slug.clone()));
        }
        Ok(())
    }

    /// Replaces the profile's token; the old one stops working at once.
    pub fn rotate_token(&self, slug: &ProfileSlug) -> Result<NewToken, StoreError> {
        let token = NewToken::generate();
        let n = self.lock().execute(
            "UPDATE profiles SET token_hash = ?1 WHERE slug = ?2",
            params![&token.hash().0[..], slug.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::NoProfile(slug.clone()));
        }
        Ok(token)
    }

    /// The profile this token opens, if the token is the profile's current one. An unknown profile and a wrong
    /// token give the same answer, so a caller cannot probe which profiles exist.
    ///
    /// Runs inline on the request path: an indexed read, and in WAL mode readers never wait for writers.
    pub fn authenticate(&self, slug: &ProfileSlug, token: &TokenHash) -> Result<Option<ProfileId>, StoreError> {
        let conn = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached("SELECT id FROM profiles WHERE slug = ?1 AND token_hash = ?2")?;
        Ok(stmt
            .query_row(params![slug.as_str(), &token.0[..]], |r| r.get(0))
            .optional()?
            .map(ProfileId))
    }

    pub fn add_server(&self, def: &ServerDef) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&def.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = self.lock().execute(
            "INSERT INTO servers (name, prefix, per_session, spec, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![def.name.as_str(), def.prefix.as_str(), def.per_session, spec, now()],
        )?;
        if inserted == 0 {
            return Err(StoreError::ServerExists(def.name.clone()));
        }
        Ok(())
    }

    /// Replaces a server's definition (its spec JSON); name, prefix and mode stay.
    pub fn set_server_spec(
        &self,
        name: &ServerName,
        spec: &gigmcp_types::server::ServerSpec,
    ) -> Result<(), StoreError> {
        let spec = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let updated = self.lock().execute(
            "UPDATE servers SET spec = ?1 WHERE name = ?2",
            params![spec, name.as_str()],
        )?;
        if updated == 0 {
            return Err(StoreError::NoServer(name.clone()));
        }
        Ok(())
    }

    pub fn list_servers(&self) -> Result<Vec<ServerDef>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT name, prefix, per_session, spec FROM servers ORDER BY name")?;
        let rows = stmt.query_map([], server_row)?;
        rows.map(|row| decode_server(row?)).collect()
    }

    pub fn server(&self, name: &ServerName) -> Result<ServerDef, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT name, prefix, per_session, spec FROM servers WHERE name = ?1",
                [name.as_str()],
                server_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoServer(name.clone()))?;
        decode_server(row)
    }

    pub fn remove_server(&self, name: &ServerName) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let users: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT p.slug FROM profiles p JOIN profile_servers ps ON ps.profile_id = p.id
                 JOIN servers s ON s.id = ps.server_id WHERE s.name = ?1 ORDER BY p.slug",
            )?;
            stmt.query_map([name.as_str()], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            return Err(StoreError::ServerInUse {
                server: name.clone(),
                profiles: users.join(", "),
            });
        }
        if tx.execute("DELETE FROM servers WHERE name = ?1", [name.as_str()])? == 0 {
            return Err(StoreError::NoServer(name.clone()));
        }
        tx.commit()?;
        Ok(())
    }

    pub fn add_server_to_profile(&self, slug: &ProfileSlug, server: &ServerName) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (profile_id, server_id) = profile_and_server_ids(&tx, slug, server)?;
        let inserted = tx.execute(
            "INSERT INTO profile_servers (profile_id, server_id, position)
             SELECT ?1, ?2, COALESCE(MAX(position), 0) + 1 FROM profile_servers WHERE profile_id = ?1
             ON CONFLICT DO NOTHING",
            params![profile_id, server_id],
        )?;
        if inserted == 0 {
            return Err(StoreError::AlreadyInProfile {
                profile: slug.clone(),
                server: server.clone(),
            });
        }
        tx.commit()?;
        Ok(())
    }

    pub fn remove_server_from_profile(&self, slug: &ProfileSlug, server: &ServerName) -> Result<(), StoreError> {
        let n = self.lock().execute(
            "DELETE FROM profile_servers WHERE
               profile_id = (SELECT id FROM profiles WHERE slug = ?1) AND
               server_id = (SELECT id FROM servers WHERE name = ?2)",
            params![slug.as_str(), server.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::NotInProfile {
                profile: slug.clone(),
                server: server.clone(),
            });
        }
        Ok(())
    }

    /// Makes the profile serve exactly `servers`, in this order, in one transaction.
    /// Sets a profile's servers, in order. `if_match`: an `If-Match` value the current list's entity tag
    /// ([`gigmcp_types::etag::profile_servers`]) must match, checked in the same transaction as the write.
    pub fn set_profile_servers(
        &self,
        slug: &ProfileSlug,
        servers: &[ServerName],
        if_match: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let profile_id: i64 = tx
            .query_row("SELECT id FROM profiles WHERE slug = ?1", [slug.as_str()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoProfile(slug.clone()))?;
        if let Some(if_match) = if_match {
            let current = servers_of(&tx, profile_id)?;
            let tag = gigmcp_types::etag::profile_servers(&current);
            if !gigmcp_types::etag::if_match(if_match, &tag) {
                return Err(StoreError::Stale(format!(
                    "the servers of profile {slug} changed since they were read (now {tag}); read them again and \
                     reapply the change"
                )));
            }
        }
        tx.execute("DELETE FROM profile_servers WHERE profile_id = ?1", [profile_id])?;
        for (position, server) in servers.iter().enumerate() {
            let server_id: i64 = tx
                .query_row("SELECT id FROM servers WHERE name = ?1", [server.as_str()], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or_else(|| StoreError::NoServer(server.clone()))?;
            tx.execute(
                "INSERT INTO profile_servers (profile_id, server_id, position) VALUES (?1, ?2, ?3)",
                params![profile_id, server_id, position as i64 + 1],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn profile_config(&self, slug: &ProfileSlug) -> Result<ProfileConfig, StoreError> {
        self.profile_configs()?
            .into_iter()
            .find(|p| &p.slug == slug)
            .ok_or_else(|| StoreError::NoProfile(slug.clone()))
    }

    /// Every profile with its servers, in the order they were added: what a running gateway serves.
    pub fn profile_configs(&self) -> Result<Vec<ProfileConfig>, StoreError> {
        let conn = self.lock();
        let mut profiles: Vec<ProfileConfig> = {
            let mut stmt = conn.prepare("SELECT id, slug FROM profiles ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            rows.map(|row| {
                let (id, slug) = row?;
                Ok(ProfileConfig {
                    id: ProfileId(id),
                    slug: parse_stored(ProfileSlug::parse(&slug))?,
                    servers: Vec::new(),
                })
            })
            .collect::<Result<_, StoreError>>()?
        };
        let mut stmt = conn.prepare(
            "SELECT ps.profile_id, s.name, s.prefix, s.per_session, s.spec
             FROM profile_servers ps JOIN servers s ON s.id = ps.server_id
             ORDER BY ps.profile_id, ps.position",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })?;
        for row in rows {
            let (profile_id, server) = row?;
            let def = decode_server(server)?;
            if let Some(p) = profiles.iter_mut().find(|p| p.id.0 == profile_id) {
                p.servers.push(def);
            }
        }
        // A profile's tool switches are part of what it serves: each profile's copy of a toolpack lists its
        // tools as on or off for that profile, so a switch reconfigures the profile as any edit does.
        let mut stmt = conn.prepare(
            "SELECT t.profile_id, s.name, t.tool, t.enabled FROM profile_tools t JOIN servers s ON s.id = t.server_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        for row in rows {
            let (profile_id, server, tool, enabled) = row?;
            let Some(profile) = profiles.iter_mut().find(|p| p.id.0 == profile_id) else {
                continue;
            };
            for def in profile.servers.iter_mut().filter(|d| d.name.as_str() == server) {
                if let ServerSpec::Toolpack { toolpack, .. } = &mut def.spec {
                    for t in toolpack.tools.iter_mut().filter(|t| t.name == tool) {
                        t.default = enabled;
                    }
                }
            }
        }
        Ok(profiles)
    }
}

/// The database holds token hashes and, later, wrapped secrets: only the gateway's user may read it,
/// whatever the umask (the data directory may be traversable so that sandboxes reach installed servers).
fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
    }
}

/// The names of a profile's servers, in order.
fn servers_of(conn: &Connection, profile_id: i64) -> Result<Vec<ServerName>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT s.name FROM profile_servers ps JOIN servers s ON s.id = ps.server_id
         WHERE ps.profile_id = ?1 ORDER BY ps.position",
    )?;
    let names = stmt.query_map([profile_id], |r| r.get::<_, String>(0))?;
    names.map(|name| parse_stored(ServerName::parse(&name?))).collect()
}

type ServerRow = (String, String, bool, String);

fn server_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServerRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_server((name, prefix, per_session, spec): ServerRow) -> Result<ServerDef, StoreError> {
    Ok(ServerDef {
        name: parse_stored(ServerName::parse(&name))?,
        prefix: parse_stored(Prefix::parse(&prefix))?,
        per_session,
        spec: serde_json::from_str::<ServerSpec>(&spec)
            .map_err(|e| StoreError::Corrupt(format!("server {name}: stored definition is corrupt: {e}")))?,
    })
}

/// The row ids of a profile and a server, each missing one named in the error.
fn profile_and_server_ids(
    tx: &rusqlite::Transaction<'_>,
    slug: &ProfileSlug,
    server: &ServerName,
) -> Result<(i64, i64), StoreError> {
    let profile_id: i64 = tx
        .query_row("SELECT id FROM profiles WHERE slug = ?1", [slug.as_str()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NoProfile(slug.clone()))?;
    let server_id: i64 = tx
        .query_row("SELECT id FROM servers WHERE name = ?1", [server.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| StoreError::NoServer(server.clone()))?;
    Ok((profile_id, server_id))
}

fn parse_stored<T>(parsed: Result<T, gigmcp_types::names::NameError>) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Corrupt(format!("stored row is corrupt: {e}")))
}

/// A store in a temporary directory, for the unit tests of every module.
#[cfg(test)]
fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::test_store as store;
    use super::*;
    use gigmcp_types::server::Builtin;

    fn echo(name: &str) -> ServerDef {
        ServerDef {
            name: ServerName::parse(name).unwrap(),
            prefix: Prefix::parse(name).unwrap(),
            per_session: false,
            spec: ServerSpec::Builtin {
                builtin: Builtin::Echo,
                limits: None,
                egress: Vec::new(),
            },
        }
    }

    #[test]
    fn token_rotation_invalidates_the_old_token_at_once() {
        let (_dir, store) = store();
        let slug = ProfileSlug::parse("demo").unwrap();
        let (profile, old) = store.create_profile(&slug, "Demo").unwrap();
        assert_eq!(store.authenticate(&slug, &old.hash()).unwrap(), Some(profile.id));
        let new = store.rotate_token(&slug).unwrap();
        assert_eq!(store.authenticate(&slug, &old.hash()).unwrap(), None);
        assert_eq!(store.authenticate(&slug, &new.hash()).unwrap(), Some(profile.id));
        let other = ProfileSlug::parse("other").unwrap();
        assert_eq!(store.authenticate(&other, &new.hash()).unwrap(), None);
    }

    #[test]
    fn only_token_hashes_are_stored() {
        let (dir, store) = store();
        let (_, token) = store.create_profile(&ProfileSlug::parse("demo").unwrap(), "").unwrap();
        drop(store);
        let mut raw = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let needle = token.reveal().as_bytes();
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn duplicates_and_unknowns_are_clear_errors() {
        let (_dir, store) = store();
        let slug = ProfileSlug::parse("demo").unwrap();
        store.create_profile(&slug, "").unwrap();
        assert!(matches!(
            store.create_profile(&slug, ""),
            Err(StoreError::ProfileExists(_))
        ));
        store.add_server(&echo("e1")).unwrap();
        assert!(matches!(
            store.add_server(&echo("e1")),
            Err(StoreError::ServerExists(_))
        ));
        let e1 = ServerName::parse("e1").unwrap();
        store.add_server_to_profile(&slug, &e1).unwrap();
        assert!(matches!(
            store.add_server_to_profile(&slug, &e1),
            Err(StoreError::AlreadyInProfile { .. })
        ));
        assert!(matches!(store.remove_server(&e1), Err(StoreError::ServerInUse { .. })));
        store.remove_server_from_profile(&slug, &e1).unwrap();
        store.remove_server(&e1).unwrap();
        assert!(matches!(store.remove_server(&e1), Err(StoreError::NoServer(_))));
    }

    #[test]
    fn profile_configs_keep_server_order() {
        let (_dir, store) = store();
        let slug = ProfileSlug::parse("demo").unwrap();
        store.create_profile(&slug, "").unwrap();
        for name in ["zz", "aa", "mm"] {
            store.add_server(&echo(name)).unwrap();
            store
                .add_server_to_profile(&slug, &ServerName::parse(name).unwrap())
                .unwrap();
        }
        let config = store.profile_config(&slug).unwrap();
        let names: Vec<_> = config.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["zz", "aa", "mm"]);
        store.delete_profile(&slug).unwrap();
        assert!(store.profile_configs().unwrap().is_empty());
    }

    #[test]
    fn the_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = store();
        store.create_profile(&ProfileSlug::parse("x").unwrap(), "").unwrap();
        let mode = std::fs::metadata(dir.path().join("db.sqlite"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }

    #[test]
    fn data_version_moves_when_another_connection_commits() {
        let (dir, store) = store();
        let before = store.data_version().unwrap();
        let other = Store::open(&dir.path().join("db.sqlite")).unwrap();
        other.create_profile(&ProfileSlug::parse("x").unwrap(), "").unwrap();
        assert_ne!(store.data_version().unwrap(), before);
    }
}
