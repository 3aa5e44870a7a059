//! Plugins in the database: content-addressed components, each plugin's chain of revisions (component +
//! configuration), bindings, the running gateway's statistics, and the audit log of record.
//!
//! The CLI writes; a running gateway reads (it polls `data_version`) and writes only statistics and audit
//! events. Validation (the world, the schema, `init`) happens before anything is written here, so a refused
//! plugin or configuration changes nothing.

use rusqlite::{OptionalExtension, Transaction, params};
use thiserror::Error;

use crate::{Store, now};
use gigmcp_types::ids::PluginId;
use gigmcp_types::ids::RevisionId;
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::plugin::PluginStats;

#[derive(Debug, Error)]
pub enum PluginStoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no plugin named {0}; `gigmcp plugin list` shows them")]
    NoPlugin(PluginName),
    #[error("plugin {name} is a {existing} plugin; a new version must be one too (this file is a {new} plugin)")]
    KindChanged {
        name: PluginName,
        existing: PluginKind,
        new: PluginKind,
    },
    #[error("plugin {0} has no earlier revision to roll back to")]
    NoPreviousRevision(PluginName),
    #[error("no profile named {0}")]
    NoProfile(ProfileSlug),
    #[error("plugin {plugin} is not bound {scope}")]
    NotBound { plugin: PluginName, scope: String },
    #[error("the stored component {0} is missing")]
    MissingBlob(ComponentHash),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "plugin {name} changed since it was read (revision {current} is current now); read it again and reapply the change"
    )]
    Stale { name: PluginName, current: i64 },
}

type Result<T> = std::result::Result<T, PluginStoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub id: RevisionId,
    pub sha256: ComponentHash,
    pub wit_version: String,
    pub config: String,
    pub config_schema: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub previous: Option<RevisionId>,
    /// What made this revision: `added`, `config`, `default`.
    pub note: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRecord {
    pub id: PluginId,
    pub name: PluginName,
    pub kind: PluginKind,
    pub enabled: bool,
    /// Bumped by `enable`: a running gateway reloads the plugin (clearing a quarantine).
    pub generation: i64,
    /// Installed by the gateway as a default.
    pub builtin: bool,
    pub revision: Revision,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub plugin: PluginId,
    /// None: global.
    pub profile: Option<ProfileSlug>,
    pub position: i64,
}

/// What `add` stores: a validated component and its description.
pub struct NewRevision<'a> {
    pub sha256: ComponentHash,
    pub bytes: &'a [u8],
    pub wit_version: &'a str,
    pub config: &'a str,
    pub config_schema: &'a str,
    pub imports: &'a [String],
    pub exports: &'a [String],
    pub note: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new plugin.
    Created(PluginId),
    /// A new revision of an existing plugin.
    Updated(PluginId),
}

const PLUGIN_COLUMNS: &str = "p.id, p.name, p.kind, p.enabled, p.generation, p.builtin,
     r.id, r.sha256, r.wit_version, r.config, r.config_schema, r.imports, r.exports, r.previous_id, r.note,
     r.created_at";

fn plugin_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawPlugin> {
    Ok(RawPlugin {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: row.get(2)?,
        enabled: row.get(3)?,
        generation: row.get(4)?,
        builtin: row.get(5)?,
        revision: RawRevision {
            id: row.get(6)?,
            sha256: row.get(7)?,
            wit_version: row.get(8)?,
            config: row.get(9)?,
            config_schema: row.get(10)?,
            imports: row.get(11)?,
            exports: row.get(12)?,
            previous: row.get(13)?,
            note: row.get(14)?,
            created_at: row.get(15)?,
        },
    })
}

struct RawPlugin {
    id: i64,
    name: String,
    kind: String,
    enabled: bool,
    generation: i64,
    builtin: bool,
    revision: RawRevision,
}

struct RawRevision {
    id: i64,
    sha256: Vec<u8>,
    wit_version: String,
    config: String,
    config_schema: String,
    imports: String,
    exports: String,
    previous: Option<i64>,
    note: String,
    created_at: i64,
}

fn corrupt(what: impl std::fmt::Display) -> PluginStoreError {
    PluginStoreError::Corrupt(what.to_string())
}

impl RawRevision {
    fn decode(self) -> Result<Revision> {
        let sha256 = ComponentHash(
            self.sha256
                .try_into()
                .map_err(|_| corrupt("a revision's sha256 is not 32 bytes"))?,
        );
        let list = |text: &str| serde_json::from_str::<Vec<String>>(text).map_err(corrupt);
        Ok(Revision {
            id: RevisionId(self.id),
            sha256,
            imports: list(&self.imports)?,
            exports: list(&self.exports)?,
            wit_version: self.wit_version,
            config: self.config,
            config_schema: self.config_schema,
            previous: self.previous.map(RevisionId),
            note: self.note,
            created_at: self.created_at,
        })
    }
}

impl RawPlugin {
    fn decode(self) -> Result<PluginRecord> {
        Ok(PluginRecord {
            id: PluginId(self.id),
            name: PluginName::parse(&self.name).map_err(corrupt)?,
            kind: PluginKind::parse(&self.kind).ok_or_else(|| corrupt(format!("unknown plugin kind {}", self.kind)))?,
            enabled: self.enabled,
            generation: self.generation,
            builtin: self.builtin,
            revision: self.revision.decode()?,
        })
    }
}

fn insert_revision(tx: &Transaction<'_>, plugin: i64, new: &NewRevision<'_>, previous: Option<i64>) -> Result<i64> {
    tx.execute(
        "INSERT INTO plugin_blobs (sha256, bytes, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![&new.sha256.0[..], new.bytes, now()],
    )?;
    tx.execute(
        "INSERT INTO plugin_revisions
           (plugin_id, sha256, wit_version, config, config_schema, imports, exports, previous_id, note, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            plugin,
            &new.sha256.0[..],
            new.wit_version,
            new.config,
            new.config_schema,
            serde_json::to_string(new.imports).map_err(corrupt)?,
            serde_json::to_string(new.exports).map_err(corrupt)?,
            previous,
            new.note,
            now()
        ],
    )?;
    let revision = tx.last_insert_rowid();
    tx.execute(
        "UPDATE plugins SET revision_id = ?1 WHERE id = ?2",
        params![revision, plugin],
    )?;
    Ok(revision)
}

fn plugin_in(tx: &Transaction<'_>, name: &PluginName) -> Result<PluginRecord> {
    tx.query_row(
        &format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins p JOIN plugin_revisions r ON r.id = p.revision_id WHERE p.name = ?1"
        ),
        [name.as_str()],
        plugin_row,
    )
    .optional()?
    .ok_or_else(|| PluginStoreError::NoPlugin(name.clone()))?
    .decode()
}

fn profile_id(tx: &Transaction<'_>, slug: &ProfileSlug) -> Result<i64> {
    tx.query_row("SELECT id FROM profiles WHERE slug = ?1", [slug.as_str()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| PluginStoreError::NoProfile(slug.clone()))
}

fn scope(profile: Option<&ProfileSlug>) -> String {
    match profile {
        Some(slug) => format!("to profile {slug}"),
        None => "globally".into(),
    }
}

impl Store {
    /// Stores a validated component as a new plugin, or as a new revision of the plugin of that name (which
    /// must be of the same kind). A new plugin starts enabled and unbound.
    pub fn plugin_add(
        &self,
        name: &PluginName,
        kind: PluginKind,
        builtin: bool,
        new: &NewRevision<'_>,
    ) -> Result<Added> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existing = match plugin_in(&tx, name) {
            Ok(record) => Some(record),
            Err(PluginStoreError::NoPlugin(_)) => None,
            Err(e) => return Err(e),
        };
        let added = match existing {
            Some(record) => {
                if record.kind != kind {
                    return Err(PluginStoreError::KindChanged {
                        name: name.clone(),
                        existing: record.kind,
                        new: kind,
                    });
                }
                insert_revision(&tx, record.id.0, new, Some(record.revision.id.0))?;
                Added::Updated(record.id)
            }
            None => {
                tx.execute(
                    "INSERT INTO plugins (name, kind, builtin, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![name.as_str(), kind.as_str(), builtin, now()],
                )?;
                let id = tx.last_insert_rowid();
                insert_revision(&tx, id, new, None)?;
                Added::Created(PluginId(id))
            }
        };
        tx.commit()?;
        Ok(added)
    }

    /// A new revision with the same component and another (validated) configuration.
    /// Stores `config` as a new revision. `if_match`: an `If-Match` value the current revision's entity tag
    /// ([`gigmcp_types::etag::plugin_revision`]) must match, checked in the same transaction as the write.
    pub fn plugin_set_config(&self, name: &PluginName, config: &str, if_match: Option<&str>) -> Result<RevisionId> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let record = plugin_in(&tx, name)?;
        let r = &record.revision;
        if let Some(if_match) = if_match
            && !gigmcp_types::etag::if_match(if_match, &gigmcp_types::etag::plugin_revision(r.id.0))
        {
            return Err(PluginStoreError::Stale {
                name: name.clone(),
                current: r.id.0,
            });
        }
        let new = NewRevision {
            sha256: r.sha256,
            bytes: &[],
            wit_version: &r.wit_version,
            config,
            config_schema: &r.config_schema,
            imports: &r.imports,
            exports: &r.exports,
            note: "config",
        };
        // The blob exists already (the insert of empty bytes is skipped by ON CONFLICT).
        let id = insert_revision(&tx, record.id.0, &new, Some(r.id.0))?;
        tx.commit()?;
        Ok(RevisionId(id))
    }

    /// Makes the revision before the current one current again. Repeating it walks further back.
    pub fn plugin_rollback(&self, name: &PluginName) -> Result<Revision> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let record = plugin_in(&tx, name)?;
        let previous = record
            .revision
            .previous
            .ok_or_else(|| PluginStoreError::NoPreviousRevision(name.clone()))?;
        tx.execute(
            "UPDATE plugins SET revision_id = ?1 WHERE id = ?2",
            params![previous.0, record.id.0],
        )?;
        let record = plugin_in(&tx, name)?;
        tx.commit()?;
        Ok(record.revision)
    }

    /// Enables or disables a plugin. Enabling also starts it afresh in a running gateway (ending a quarantine).
    pub fn plugin_set_enabled(&self, name: &PluginName, enabled: bool) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE plugins SET enabled = ?1, generation = generation + (?1 = 1) WHERE name = ?2",
            params![enabled, name.as_str()],
        )?;
        if n == 0 {
            return Err(PluginStoreError::NoPlugin(name.clone()));
        }
        Ok(())
    }

    /// Binds a plugin globally (`profile` None) or to a profile, at `position` (lower runs first); binding
    /// again moves it.
    pub fn plugin_bind(&self, name: &PluginName, profile: Option<&ProfileSlug>, position: i64) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let record = plugin_in(&tx, name)?;
        let profile_id = profile.map(|slug| profile_id(&tx, slug)).transpose()?;
        tx.execute(
            "DELETE FROM plugin_bindings WHERE plugin_id = ?1 AND profile_id IS ?2",
            params![record.id.0, profile_id],
        )?;
        tx.execute(
            "INSERT INTO plugin_bindings (plugin_id, profile_id, position) VALUES (?1, ?2, ?3)",
            params![record.id.0, profile_id, position],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn plugin_unbind(&self, name: &PluginName, profile: Option<&ProfileSlug>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let record = plugin_in(&tx, name)?;
        let profile_id = profile.map(|slug| profile_id(&tx, slug)).transpose()?;
        let n = tx.execute(
            "DELETE FROM plugin_bindings WHERE plugin_id = ?1 AND profile_id IS ?2",
            params![record.id.0, profile_id],
        )?;
        if n == 0 {
            return Err(PluginStoreError::NotBound {
                plugin: name.clone(),
                scope: scope(profile),
            });
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes a plugin, its revisions and bindings, and the components nothing else uses.
    pub fn plugin_remove(&self, name: &PluginName) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let record = plugin_in(&tx, name)?;
        tx.execute("UPDATE plugins SET revision_id = NULL WHERE id = ?1", [record.id.0])?;
        tx.execute("DELETE FROM plugins WHERE id = ?1", [record.id.0])?;
        tx.execute(
            "DELETE FROM plugin_blobs WHERE sha256 NOT IN (SELECT sha256 FROM plugin_revisions)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins p JOIN plugin_revisions r ON r.id = p.revision_id ORDER BY p.name"
        ))?;
        let rows = stmt.query_map([], plugin_row)?;
        rows.map(|row| row?.decode()).collect()
    }

    pub fn plugin(&self, name: &PluginName) -> Result<PluginRecord> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        plugin_in(&tx, name)
    }

    /// A plugin's revisions, newest first.
    pub fn plugin_revisions(&self, name: &PluginName) -> Result<Vec<Revision>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT r.id, r.sha256, r.wit_version, r.config, r.config_schema, r.imports, r.exports, r.previous_id,
                    r.note, r.created_at
             FROM plugin_revisions r JOIN plugins p ON p.id = r.plugin_id WHERE p.name = ?1 ORDER BY r.id DESC",
        )?;
        let rows = stmt.query_map([name.as_str()], |row| {
            Ok(RawRevision {
                id: row.get(0)?,
                sha256: row.get(1)?,
                wit_version: row.get(2)?,
                config: row.get(3)?,
                config_schema: row.get(4)?,
                imports: row.get(5)?,
                exports: row.get(6)?,
                previous: row.get(7)?,
                note: row.get(8)?,
                created_at: row.get(9)?,
            })
        })?;
        rows.map(|row| row?.decode()).collect()
    }

    /// Every binding, in order: global ones first, then by position.
    pub fn plugin_bindings(&self) -> Result<Vec<Binding>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT b.plugin_id, pr.slug, b.position FROM plugin_bindings b
             LEFT JOIN profiles pr ON pr.id = b.profile_id
             ORDER BY b.profile_id IS NOT NULL, pr.slug, b.position, b.plugin_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
        })?;
        rows.map(|row| {
            let (plugin, slug, position) = row?;
            Ok(Binding {
                plugin: PluginId(plugin),
                profile: slug.map(|s| ProfileSlug::parse(&s).map_err(corrupt)).transpose()?,
                position,
            })
        })
        .collect()
    }

    /// A stored component's bytes.
    pub fn plugin_blob(&self, sha256: &ComponentHash) -> Result<Vec<u8>> {
        self.lock()
            .query_row(
                "SELECT bytes FROM plugin_blobs WHERE sha256 = ?1",
                [&sha256.0[..]],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(PluginStoreError::MissingBlob(*sha256))
    }

    pub fn write_plugin_stats(&self, stats: &[(PluginId, PluginStats)]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for (plugin, s) in stats {
            tx.execute(
                "INSERT INTO plugin_stats
                   (plugin_id, revision_id, calls, failures, p50_us, p99_us, quarantined, last_error, lost_events,
                    updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE EXISTS (SELECT 1 FROM plugins WHERE id = ?1)
                 ON CONFLICT (plugin_id) DO UPDATE SET revision_id = ?2, calls = ?3, failures = ?4, p50_us = ?5,
                   p99_us = ?6, quarantined = ?7, last_error = ?8, lost_events = ?9, updated_at = ?10",
                params![
                    plugin.0,
                    s.revision,
                    s.calls as i64,
                    s.failures as i64,
                    s.p50_us as i64,
                    s.p99_us as i64,
                    s.quarantined,
                    s.last_error,
                    s.lost_events as i64,
                    now()
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn plugin_stats(&self, plugin: PluginId) -> Result<Option<PluginStats>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT revision_id, calls, failures, p50_us, p99_us, quarantined, last_error, lost_events, updated_at
                 FROM plugin_stats WHERE plugin_id = ?1",
                [plugin.0],
                |r| {
                    Ok(PluginStats {
                        revision: r.get(0)?,
                        calls: r.get::<_, i64>(1)? as u64,
                        failures: r.get::<_, i64>(2)? as u64,
                        p50_us: r.get::<_, i64>(3)? as u64,
                        p99_us: r.get::<_, i64>(4)? as u64,
                        quarantined: r.get(5)?,
                        last_error: r.get(6)?,
                        lost_events: r.get::<_, i64>(7)? as u64,
                        updated_at: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }

    /// The defaults installed so far (by name), so that one an operator removed is not installed again.
    pub fn plugin_defaults_installed(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT name FROM plugin_defaults ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_plugin_default_installed(&self, name: &PluginName, sha256: &ComponentHash) -> Result<()> {
        self.lock().execute(
            "INSERT INTO plugin_defaults (name, sha256, installed_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET sha256 = ?2",
            params![name.as_str(), &sha256.0[..], now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store as store;

    fn revision<'a>(bytes: &'a [u8], config: &'a str) -> NewRevision<'a> {
        NewRevision {
            sha256: ComponentHash::of(bytes),
            bytes,
            wit_version: "0.1.0",
            config,
            config_schema: "{}",
            imports: &[],
            exports: &[],
            note: "added",
        }
    }

    #[test]
    fn revisions_chain_and_rollback_walks_back() {
        let (_dir, store) = store();
        let name = PluginName::parse("allow").unwrap();
        let kind = PluginKind::EgressPolicy;
        assert!(matches!(
            store.plugin_add(&name, kind, false, &revision(b"v1", "{}")).unwrap(),
            Added::Created(_)
        ));
        store.plugin_set_config(&name, r#"{"a":1}"#, None).unwrap();
        assert!(matches!(
            store
                .plugin_add(&name, kind, false, &revision(b"v2", r#"{"a":1}"#))
                .unwrap(),
            Added::Updated(_)
        ));
        assert_eq!(store.plugin(&name).unwrap().revision.sha256, ComponentHash::of(b"v2"));
        let back = store.plugin_rollback(&name).unwrap();
        assert_eq!(
            (back.sha256, back.config.as_str()),
            (ComponentHash::of(b"v1"), r#"{"a":1}"#)
        );
        let back = store.plugin_rollback(&name).unwrap();
        assert_eq!((back.sha256, back.config.as_str()), (ComponentHash::of(b"v1"), "{}"));
        assert!(matches!(
            store.plugin_rollback(&name),
            Err(PluginStoreError::NoPreviousRevision(_))
        ));
        assert_eq!(store.plugin_revisions(&name).unwrap().len(), 3);
        let err = store
            .plugin_add(&name, PluginKind::McpFilter, false, &revision(b"v3", "{}"))
            .unwrap_err();
        assert!(matches!(err, PluginStoreError::KindChanged { .. }), "{err}");
    }

    #[test]
    fn bindings_are_global_or_per_profile_and_removal_cleans_up() {
        let (_dir, store) = store();
        let name = PluginName::parse("filter").unwrap();
        store
            .plugin_add(&name, PluginKind::McpFilter, false, &revision(b"f", "{}"))
            .unwrap();
        let slug = ProfileSlug::parse("team").unwrap();
        assert!(matches!(
            store.plugin_bind(&name, Some(&slug), 1),
            Err(PluginStoreError::NoProfile(_))
        ));
        store.create_profile(&slug, "").unwrap();
        store.plugin_bind(&name, None, 5).unwrap();
        store.plugin_bind(&name, None, 3).unwrap();
        store.plugin_bind(&name, Some(&slug), 1).unwrap();
        let bindings = store.plugin_bindings().unwrap();
        assert_eq!(bindings.len(), 2);
        assert_eq!((bindings[0].profile.as_ref(), bindings[0].position), (None, 3));
        assert_eq!(bindings[1].profile.as_ref(), Some(&slug));
        store.plugin_unbind(&name, Some(&slug)).unwrap();
        assert!(matches!(
            store.plugin_unbind(&name, Some(&slug)),
            Err(PluginStoreError::NotBound { .. })
        ));
        store.plugin_remove(&name).unwrap();
        assert!(store.plugins().unwrap().is_empty());
        assert!(store.plugin_bindings().unwrap().is_empty());
        assert!(matches!(
            store.plugin_blob(&ComponentHash::of(b"f")),
            Err(PluginStoreError::MissingBlob(_))
        ));
    }

    #[test]
    fn enabling_bumps_the_generation() {
        let (_dir, store) = store();
        let name = PluginName::parse("p").unwrap();
        store
            .plugin_add(&name, PluginKind::AuditSink, false, &revision(b"p", "{}"))
            .unwrap();
        let before = store.plugin(&name).unwrap().generation;
        store.plugin_set_enabled(&name, false).unwrap();
        assert!(!store.plugin(&name).unwrap().enabled);
        assert_eq!(store.plugin(&name).unwrap().generation, before);
        store.plugin_set_enabled(&name, true).unwrap();
        assert_eq!(store.plugin(&name).unwrap().generation, before + 1);
    }
}
