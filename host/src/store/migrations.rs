//! Forward-only migrations. A migration, once released, never changes: append a new one instead.

use rusqlite::Connection;

use super::StoreError;

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
}
