//! Per-profile tool switches: a tool its server hides by default (a catalog tool with `default: false`)
//! enabled for one profile, or a default tool disabled for it. The gateway reads them when it starts the
//! server's process for the profile.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::{Store, StoreError};
use gigmcp_types::names::{ProfileSlug, ServerName};

impl Store {
    /// The switches of one profile and server: tool → enabled.
    pub fn tool_switches(&self, slug: &ProfileSlug, server: &ServerName) -> Result<BTreeMap<String, bool>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT t.tool, t.enabled FROM profile_tools t
             JOIN profiles p ON p.id = t.profile_id JOIN servers s ON s.id = t.server_id
             WHERE p.slug = ?1 AND s.name = ?2",
        )?;
        let rows = stmt.query_map(params![slug.as_str(), server.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets a tool's switch for a profile (`None` removes it: the server's default applies again).
    pub fn set_tool_switch(
        &self,
        slug: &ProfileSlug,
        server: &ServerName,
        tool: &str,
        enabled: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let (profile_id, server_id) = crate::profile_and_server_ids(&tx, slug, server)?;
        match enabled {
            Some(enabled) => tx.execute(
                "INSERT INTO profile_tools (profile_id, server_id, tool, enabled) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (profile_id, server_id, tool) DO UPDATE SET enabled = ?4",
                params![profile_id, server_id, tool, enabled],
            )?,
            None => tx.execute(
                "DELETE FROM profile_tools WHERE profile_id = ?1 AND server_id = ?2 AND tool = ?3",
                params![profile_id, server_id, tool],
            )?,
        };
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigmcp_types::server::{Builtin, ServerDef, ServerSpec};

    #[test]
    fn switches_are_per_profile_and_server_and_can_be_cleared() {
        let (_dir, store) = crate::test_store();
        let slug = ProfileSlug::parse("team").unwrap();
        let server = ServerName::parse("pubsub").unwrap();
        store.create_profile(&slug, "").unwrap();
        store
            .add_server(&ServerDef {
                name: server.clone(),
                prefix: gigmcp_types::names::Prefix::parse("pubsub").unwrap(),
                per_session: false,
                spec: ServerSpec::Builtin {
                    builtin: Builtin::Echo,
                    limits: None,
                    egress: Vec::new(),
                },
            })
            .unwrap();
        store.set_tool_switch(&slug, &server, "publish", Some(true)).unwrap();
        store.set_tool_switch(&slug, &server, "list", Some(false)).unwrap();
        store.set_tool_switch(&slug, &server, "list", Some(true)).unwrap();
        let switches = store.tool_switches(&slug, &server).unwrap();
        assert_eq!(
            switches,
            BTreeMap::from([("list".into(), true), ("publish".into(), true)])
        );
        store.set_tool_switch(&slug, &server, "list", None).unwrap();
        assert_eq!(store.tool_switches(&slug, &server).unwrap().len(), 1);
        let other = ProfileSlug::parse("other").unwrap();
        assert!(matches!(
            store.set_tool_switch(&other, &server, "x", Some(true)),
            Err(StoreError::NoProfile(_))
        ));
    }
}
