//! Forward-only migrations. A migration, once released, never changes: append a new one instead.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: profiles, servers and which servers each profile serves.
    "CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE servers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        per_session INTEGER NOT NULL DEFAULT 0,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE profile_servers (
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE RESTRICT,
        position INTEGER NOT NULL,
        PRIMARY KEY (profile_id, server_id)
    );",
    // 2: plugins. Components are stored content-addressed; a plugin's history is a chain of revisions
    // (component + configuration), so a rollback moves back along the chain; bindings attach a plugin
    // globally (profile_id NULL) or to one profile, in an explicit order. The audit log of record, and the
    // webhooks audit sinks may deliver to. Statistics are written by the running gateway for the CLI to show.
    "CREATE TABLE plugin_blobs (
        sha256 BLOB PRIMARY KEY,
        bytes BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE plugins (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        generation INTEGER NOT NULL DEFAULT 0,
        builtin INTEGER NOT NULL DEFAULT 0,
        revision_id INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE plugin_revisions (
        id INTEGER PRIMARY KEY,
        plugin_id INTEGER NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
        sha256 BLOB NOT NULL REFERENCES plugin_blobs(sha256),
        wit_version TEXT NOT NULL,
        config TEXT NOT NULL,
        config_schema TEXT NOT NULL,
        imports TEXT NOT NULL,
        exports TEXT NOT NULL,
        previous_id INTEGER REFERENCES plugin_revisions(id) ON DELETE SET NULL,
        note TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX plugin_revisions_plugin ON plugin_revisions(plugin_id);
    CREATE TABLE plugin_bindings (
        id INTEGER PRIMARY KEY,
        plugin_id INTEGER NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
        profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
        position INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX plugin_bindings_profile ON plugin_bindings(plugin_id, profile_id)
        WHERE profile_id IS NOT NULL;
    CREATE UNIQUE INDEX plugin_bindings_global ON plugin_bindings(plugin_id) WHERE profile_id IS NULL;
    CREATE TABLE plugin_stats (
        plugin_id INTEGER PRIMARY KEY REFERENCES plugins(id) ON DELETE CASCADE,
        revision_id INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        p50_us INTEGER NOT NULL,
        p99_us INTEGER NOT NULL,
        quarantined INTEGER NOT NULL,
        last_error TEXT,
        lost_events INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE plugin_defaults (
        name TEXT PRIMARY KEY,
        sha256 BLOB NOT NULL,
        installed_at INTEGER NOT NULL
    );
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        profile TEXT,
        server TEXT,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE audit_webhooks (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );",
    // 3: how far the gateway has forwarded the audit log to audit sinks, so that copies not yet delivered
    // when it stops are delivered after a restart.
    "CREATE TABLE audit_forwarding (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        delivered_through INTEGER NOT NULL
    );",
    // 4: the vault and credentials. `vault_check` proves which master key the vault is encrypted with;
    // `secrets` holds envelopes (a data key wrapped under the master key's key id, and the secret under the
    // data key), unique by (kind, owner, name); `credentials` holds what is not secret (hosts, header,
    // format, variable, placeholder) and points at its secret, which is deleted with it — also when its
    // server or profile goes.
    "CREATE TABLE vault_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_id BLOB NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        rotated_at INTEGER
    );
    CREATE TABLE secrets (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        key_id BLOB NOT NULL,
        wrap_nonce BLOB NOT NULL,
        wrapped_key BLOB NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (kind, owner, name)
    );
    CREATE TABLE credentials (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hosts TEXT NOT NULL,
        header TEXT NOT NULL,
        format TEXT NOT NULL,
        env_name TEXT NOT NULL,
        placeholder TEXT NOT NULL UNIQUE,
        secret_id INTEGER NOT NULL UNIQUE REFERENCES secrets(id),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX credentials_server_wide ON credentials(server_id, name) WHERE profile_id IS NULL;
    CREATE UNIQUE INDEX credentials_profile ON credentials(server_id, profile_id, name)
        WHERE profile_id IS NOT NULL;
    CREATE TRIGGER credentials_delete_secret AFTER DELETE ON credentials
    BEGIN
        DELETE FROM secrets WHERE id = OLD.secret_id;
    END;",
    // 5: the control plane. Users are keyed by (issuer, subject); `role` and `profiles` (the auth-mapper's
    // grant: "all" or a JSON list of slugs) are refreshed at every login. Web sessions and single-use login
    // links are stored as SHA-256 hashes of their tokens only. A login link says who it logs in (`subject`,
    // `role`): `gigmcp admin login-link` makes admin links by default. A profile made through the API is owned
    // by its creator; NULL (made with the CLI) is visible to admins only.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        name TEXT,
        email TEXT,
        role TEXT NOT NULL CHECK (role IN ('admin','user')),
        profiles TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        last_login_at INTEGER,
        UNIQUE (issuer, subject)
    );
    CREATE TABLE web_sessions (
        id INTEGER PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE login_links (
        id INTEGER PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        subject TEXT NOT NULL DEFAULT 'admin',
        role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin','user'))
    );
    ALTER TABLE profiles ADD COLUMN owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
    CREATE INDEX profiles_owner ON profiles(owner_id);
    CREATE INDEX audit_events_kind ON audit_events(kind, id);",
    // 6: one vocabulary of audit outcomes (`ok`, `deny`, `error`, `tool_error`). Before it, a denial was
    // written `denied` (egress, OpenID Connect logins) or `refused` (login links), a login link made was
    // `created`, and an egress request the upstream failed (decision `error`, a 502) was written `denied`.
    "UPDATE audit_events SET outcome = 'error'
        WHERE kind LIKE 'egress.%' AND json_extract(detail, '$.decision') = 'error';
    UPDATE audit_events SET outcome = 'deny' WHERE outcome IN ('denied', 'refused');
    UPDATE audit_events SET outcome = 'ok' WHERE outcome IN ('created', 'allow');
    UPDATE audit_events SET outcome = 'error' WHERE outcome NOT IN ('ok', 'deny', 'error', 'tool_error');
    CREATE INDEX audit_events_outcome ON audit_events(outcome, id);",
    // 7: the URL the last gateway started on this database serves at (its listener's real port, or
    // GIG_PUBLIC_URL), so the CLI prints login links that work without repeating the gateway's settings.
    "CREATE TABLE served_url (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        url TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 8: an admin's session may view the dashboard as another user, read-only, until `view_as_until` (an hour
    // at most, set by the API). The session keeps its own user: ending the view returns to it.
    "ALTER TABLE web_sessions ADD COLUMN view_as_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
    ALTER TABLE web_sessions ADD COLUMN view_as_until INTEGER;",
    // 9: per-minute counts of tool calls (metrics.rs), written with the audit events they count. Earlier
    // tool calls are counted from the log once, so the charts start with the history there is.
    "CREATE TABLE metrics_minute (
        minute INTEGER NOT NULL,
        profile TEXT NOT NULL,
        server TEXT NOT NULL,
        plugin TEXT NOT NULL,
        calls INTEGER NOT NULL,
        denials INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency_us_sum INTEGER NOT NULL,
        latency_us_max INTEGER NOT NULL,
        PRIMARY KEY (minute, profile, server, plugin)
    ) WITHOUT ROWID;
    INSERT INTO metrics_minute
        SELECT time_ms / 60000, COALESCE(profile, ''), COALESCE(server, ''),
            CASE WHEN outcome = 'deny' THEN COALESCE(json_extract(detail, '$.plugin'), '') ELSE '' END,
            COUNT(*), SUM(outcome = 'deny'), SUM(outcome IN ('error', 'tool_error')),
            SUM(CAST(COALESCE(json_extract(detail, '$.duration_ms'), 0) * 1000 AS INTEGER)),
            MAX(CAST(COALESCE(json_extract(detail, '$.duration_ms'), 0) * 1000 AS INTEGER))
        FROM audit_events WHERE kind = 'mcp.tool_call' AND time_ms >= (CAST(strftime('%s', 'now') AS INTEGER) - 8 * 86400) * 1000
        GROUP BY 1, 2, 3, 4;",
    // 10: the signed catalog index last accepted, with its signature and the key it was checked with (checked
    // again whenever it is read). Its `generated` time and digest are the rollback high-water mark: an older
    // index, or another one with the same time, is refused.
    "CREATE TABLE catalog_index (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        raw BLOB NOT NULL,
        signature TEXT NOT NULL,
        public_key TEXT NOT NULL,
        generated INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        source TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    );",
    // 11: per-profile tool switches: a tool a server hides by default (a catalog tool with `default: false`)
    // enabled for one profile, or a default tool disabled for it.
    "CREATE TABLE profile_tools (
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        tool TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        PRIMARY KEY (profile_id, server_id, tool)
    );",
    // 12: connected accounts. An OAuth app per vendor (its settings as JSON; its client secret in the vault),
    // and per (user, vendor) a connection whose tokens are in the vault (`user_id` NULL: the operator's).
    // A credential's secret is either in the vault (`secret_id`) or a connection's access token
    // (`oauth_vendor`), never both: the table is rebuilt for the check (no other table refers to it).
    "CREATE TABLE oauth_apps (
        vendor TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE oauth_connections (
        id INTEGER PRIMARY KEY,
        user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        vendor TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        refreshable INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('ok', 'needs-reconnect')),
        detail TEXT,
        connected_at INTEGER NOT NULL,
        refreshed_at INTEGER
    );
    CREATE UNIQUE INDEX oauth_connections_owner ON oauth_connections(COALESCE(user_id, 0), vendor);
    CREATE TRIGGER oauth_connections_tokens AFTER DELETE ON oauth_connections BEGIN
        DELETE FROM secrets WHERE owner = 'gateway'
          AND kind IN ('oauth-access-token', 'oauth-refresh-token')
          AND name = CASE WHEN old.user_id IS NULL THEN 'operator' ELSE 'user-' || old.user_id END
                     || '.' || old.vendor;
    END;
    CREATE TABLE credentials_v12 (
        id INTEGER PRIMARY KEY,
        server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
        profile_id INTEGER REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hosts TEXT NOT NULL,
        header TEXT NOT NULL,
        format TEXT NOT NULL,
        env_name TEXT NOT NULL,
        placeholder TEXT NOT NULL UNIQUE,
        secret_id INTEGER UNIQUE REFERENCES secrets(id),
        oauth_vendor TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK ((secret_id IS NULL) <> (oauth_vendor IS NULL))
    );
    INSERT INTO credentials_v12 (id, server_id, profile_id, name, hosts, header, format, env_name, placeholder,
        secret_id, created_at, updated_at)
      SELECT id, server_id, profile_id, name, hosts, header, format, env_name, placeholder, secret_id,
        created_at, updated_at FROM credentials;
    DROP TABLE credentials;
    ALTER TABLE credentials_v12 RENAME TO credentials;
    CREATE UNIQUE INDEX credentials_server_wide ON credentials(server_id, name) WHERE profile_id IS NULL;
    CREATE UNIQUE INDEX credentials_profile ON credentials(server_id, profile_id, name)
        WHERE profile_id IS NOT NULL;
    CREATE TRIGGER credentials_delete_secret AFTER DELETE ON credentials
    BEGIN
        DELETE FROM secrets WHERE id = OLD.secret_id;
    END;",
];

pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
        r.get(0)
    })?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {current}, newer than this gigmcp ({}); upgrade gigmcp",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [index as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        conn.execute("INSERT INTO schema_migrations (version) VALUES (999)", [])
            .unwrap();
        assert!(apply(&mut conn).is_err());
    }

    #[test]
    fn stored_audit_outcomes_are_rewritten_to_the_one_vocabulary() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
            .unwrap();
        // The schema as the previous release left it, with the words it wrote.
        let tx = conn.transaction().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(5) {
            tx.execute_batch(sql).unwrap();
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [index as i64 + 1],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let rows = [
            ("egress.request", "denied", r#"{"decision":"deny"}"#, "deny"),
            (
                "egress.request",
                "denied",
                r#"{"decision":"error","status":502}"#,
                "error",
            ),
            ("egress.connect", "denied", r#"{"decision":"deny"}"#, "deny"),
            ("egress.request", "ok", r#"{"decision":"allow"}"#, "ok"),
            ("mcp.tool_call", "deny", "{}", "deny"),
            ("mcp.tool_call", "tool_error", "{}", "tool_error"),
            ("auth.login", "denied", "{}", "deny"),
            ("auth.login_link", "refused", "{}", "deny"),
            ("auth.login_link", "created", "{}", "ok"),
        ];
        for (kind, outcome, detail, _) in rows {
            conn.execute(
                "INSERT INTO audit_events (time_ms, kind, actor, outcome, detail) VALUES (1, ?1, 'x', ?2, ?3)",
                [kind, outcome, detail],
            )
            .unwrap();
        }
        apply(&mut conn).unwrap();
        let stored: Vec<String> = conn
            .prepare("SELECT outcome FROM audit_events ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<&str> = rows.iter().map(|r| r.3).collect();
        assert_eq!(stored, expected);
    }
}
