//! The vault at rest (invariant 5): real SQLite files, altered behind the vault's back the way an attacker
//! with the database would, and the real `gigmcp` binary for start-up checks and master-key rotation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use gigmcp_store::Store;
use gigmcp_types::credential::{CredentialName, CredentialSpec, Format, HeaderName, HostList};
use gigmcp_types::names::{Prefix, ServerName};
use gigmcp_types::secret::MasterKey;
use gigmcp_types::secret::{Secret, SecretKind, SecretName, SecretOwner, SecretSlot};
use gigmcp_types::server::{Builtin, ServerDef, ServerSpec};
use gigmcp_vault::{Vault, VaultError};
use rusqlite::Connection;

const KEY_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY_B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn key(hex: &str) -> MasterKey {
    MasterKey::parse(hex).unwrap()
}

struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("gigmcp.db")
    }

    fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.path()).unwrap())
    }

    /// A second, raw connection: what someone holding the database file can do.
    fn raw(&self) -> Connection {
        Connection::open(self.path()).unwrap()
    }

    fn cli(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
        let mut child = Command::new(gigmcp_testkit::gigmcp_bin())
            .args(args)
            .env_clear()
            .env("GIG_DATA_DIR", self.dir.path())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn ca_slot(name: &str) -> SecretSlot {
    SecretSlot {
        kind: SecretKind::EgressCaKey,
        owner: SecretOwner::Gateway,
        name: SecretName::parse(name).unwrap(),
    }
}

fn add_server(store: &Store, name: &str) {
    store
        .add_server(&ServerDef {
            name: ServerName::parse(name).unwrap(),
            prefix: Prefix::parse(name).unwrap(),
            per_session: false,
            spec: ServerSpec::Builtin {
                builtin: Builtin::Echo,
                limits: None,
                egress: Vec::new(),
            },
        })
        .unwrap();
}

fn credential(server: &str, name: &str, hosts: &str) -> CredentialSpec {
    let name = CredentialName::parse(name).unwrap();
    CredentialSpec {
        server: ServerName::parse(server).unwrap(),
        profile: None,
        env_name: name.default_env_name(),
        name,
        hosts: HostList::parse(hosts).unwrap(),
        header: HeaderName::parse("Authorization").unwrap(),
        format: Format::parse("Bearer {secret}").unwrap(),
    }
}

/// A secret's (id, key id, wrapped key, ciphertext), as stored.
type Envelope = (i64, Vec<u8>, Vec<u8>, Vec<u8>);

fn envelopes(raw: &Connection) -> Vec<Envelope> {
    let mut stmt = raw
        .prepare("SELECT id, key_id, wrapped_key, ciphertext FROM secrets ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn file_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn vault_round_trip_survives_a_restart_and_stores_no_plaintext() {
    let db = Db::new();
    {
        let store = db.store();
        add_server(&store, "github");
        let vault = Vault::open(store, &key(KEY_A)).unwrap();
        vault
            .put(&ca_slot("ca"), &Secret::new(b"-----CA KEY MATERIAL-----".to_vec()))
            .unwrap();
        vault
            .set_credential(
                &credential("github", "github", "api.github.com"),
                &Secret::new(b"ghp_roundtrip_0123456789".to_vec()),
            )
            .unwrap();
    }
    // A new process: a new store and vault over the same file.
    let store = db.store();
    let vault = Vault::open(store.clone(), &key(KEY_A)).unwrap();
    assert_eq!(
        vault.get(&ca_slot("ca")).unwrap().unwrap().expose(),
        b"-----CA KEY MATERIAL-----"
    );
    let cred = &store
        .effective_credentials(&ServerName::parse("github").unwrap(), None)
        .unwrap()[0];
    assert_eq!(
        vault.credential_secret(cred).unwrap().expose(),
        b"ghp_roundtrip_0123456789"
    );
    drop((vault, store));
    let raw = file_bytes(db.dir.path());
    assert!(!contains(&raw, b"ghp_roundtrip_0123456789"));
    assert!(!contains(&raw, b"CA KEY MATERIAL"));
}

#[test]
fn a_flipped_ciphertext_byte_is_an_error_not_garbage() {
    let db = Db::new();
    let vault = Vault::open(db.store(), &key(KEY_A)).unwrap();
    vault.put(&ca_slot("ca"), &Secret::new(b"value".to_vec())).unwrap();
    for column in ["ciphertext", "wrapped_key", "nonce", "wrap_nonce"] {
        let raw = db.raw();
        let original: Vec<u8> = raw
            .query_row(&format!("SELECT {column} FROM secrets"), [], |r| r.get(0))
            .unwrap();
        let mut flipped = original.clone();
        flipped[3] ^= 0x01;
        raw.execute(&format!("UPDATE secrets SET {column} = ?1"), [&flipped])
            .unwrap();
        let err = vault.get(&ca_slot("ca")).unwrap_err();
        assert!(matches!(err, VaultError::Tampered(_)), "{column}: {err}");
        assert!(err.to_string().contains("does not authenticate"), "{err}");
        raw.execute(&format!("UPDATE secrets SET {column} = ?1"), [&original])
            .unwrap();
        assert_eq!(vault.get(&ca_slot("ca")).unwrap().unwrap().expose(), b"value");
    }
}

#[test]
fn swapped_rows_are_detected_by_associated_data() {
    let db = Db::new();
    let store = db.store();
    add_server(&store, "srv");
    let vault = Vault::open(store.clone(), &key(KEY_A)).unwrap();
    vault.put(&ca_slot("one"), &Secret::new(b"first".to_vec())).unwrap();
    vault.put(&ca_slot("two"), &Secret::new(b"second".to_vec())).unwrap();
    let a = vault
        .set_credential(
            &credential("srv", "alpha", "alpha.example.com"),
            &Secret::new(b"alpha-secret".to_vec()),
        )
        .unwrap();
    let b = vault
        .set_credential(
            &credential("srv", "beta", "beta.example.com"),
            &Secret::new(b"beta-secret".to_vec()),
        )
        .unwrap();

    // Swap whole envelopes (wrapped key, nonces, ciphertext, key id): each one is intact, only in the wrong
    // row, so only the associated data can tell.
    let swap = |x: &str, y: &str| {
        let raw = db.raw();
        raw.execute_batch(&format!(
            "CREATE TEMP TABLE t AS SELECT * FROM secrets WHERE {x};
             UPDATE secrets SET (key_id, wrap_nonce, wrapped_key, nonce, ciphertext) =
               (SELECT key_id, wrap_nonce, wrapped_key, nonce, ciphertext FROM secrets WHERE {y}) WHERE {x};
             UPDATE secrets SET (key_id, wrap_nonce, wrapped_key, nonce, ciphertext) =
               (SELECT key_id, wrap_nonce, wrapped_key, nonce, ciphertext FROM t) WHERE {y};
             DROP TABLE t;"
        ))
        .unwrap();
    };
    swap("name = 'one'", "name = 'two'");
    assert!(matches!(vault.get(&ca_slot("one")), Err(VaultError::Tampered(_))));
    assert!(matches!(vault.get(&ca_slot("two")), Err(VaultError::Tampered(_))));
    let secret_id = |c: &gigmcp_types::credential::Credential| match &c.source {
        gigmcp_types::credential::CredentialSource::Vault(id) => id.0,
        other => panic!("a vault credential: {other:?}"),
    };
    swap(&format!("id = {}", secret_id(&a)), &format!("id = {}", secret_id(&b)));
    assert!(matches!(vault.credential_secret(&a), Err(VaultError::Tampered(_))));
    assert!(matches!(vault.credential_secret(&b), Err(VaultError::Tampered(_))));

    // Swapping back restores both: the envelopes themselves were never damaged.
    swap("name = 'one'", "name = 'two'");
    swap(&format!("id = {}", secret_id(&a)), &format!("id = {}", secret_id(&b)));
    assert_eq!(vault.get(&ca_slot("one")).unwrap().unwrap().expose(), b"first");
    assert_eq!(vault.credential_secret(&b).unwrap().expose(), b"beta-secret");

    // Pointing a credential at another credential's secret fails too.
    let raw = db.raw();
    raw.execute(
        "UPDATE credentials SET secret_id = (SELECT id FROM secrets WHERE name = 'two') WHERE id = ?1",
        [a.id.0],
    )
    .unwrap();
    let moved = store
        .effective_credentials(&ServerName::parse("srv").unwrap(), None)
        .unwrap()
        .into_iter()
        .find(|c| c.id == a.id)
        .unwrap();
    assert!(matches!(vault.credential_secret(&moved), Err(VaultError::Tampered(_))));
}

#[test]
fn hosts_edited_in_the_database_make_the_secret_unreadable() {
    let db = Db::new();
    let store = db.store();
    add_server(&store, "srv");
    let vault = Vault::open(store.clone(), &key(KEY_A)).unwrap();
    vault
        .set_credential(
            &credential("srv", "api", "api.example.com"),
            &Secret::new(b"s3cret".to_vec()),
        )
        .unwrap();
    db.raw()
        .execute(
            "UPDATE credentials SET hosts = 'api.example.com,attacker.example.net'",
            [],
        )
        .unwrap();
    let edited = &store
        .effective_credentials(&ServerName::parse("srv").unwrap(), None)
        .unwrap()[0];
    assert!(edited.spec.hosts.allows("attacker.example.net", 443));
    assert!(matches!(vault.credential_secret(edited), Err(VaultError::Tampered(_))));
}

#[test]
fn wrong_master_key_is_refused_at_start_up_with_a_clear_message() {
    let db = Db::new();
    Vault::open(db.store(), &key(KEY_A))
        .unwrap()
        .put(&ca_slot("ca"), &Secret::new(b"v".to_vec()))
        .unwrap();
    let err = Vault::open(db.store(), &key(KEY_B)).err().unwrap();
    assert!(matches!(err, VaultError::WrongMasterKey { .. }));

    let out = db.cli(&["vault", "status"], &[("GIG_MASTER_KEY", KEY_B)], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GIG_MASTER_KEY does not match the key this database was created with"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY_B) && !stderr.contains(KEY_A), "{stderr}");

    let out = db.cli(&["vault", "status"], &[("GIG_MASTER_KEY", KEY_A)], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("secrets:      1"), "{stdout}");

    // A key that is not a key at all says how to make one.
    let out = db.cli(&["vault", "status"], &[("GIG_MASTER_KEY", "nope")], b"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("openssl rand -hex 32"));
}

#[test]
fn a_forged_check_record_does_not_pass_for_the_right_key() {
    let db = Db::new();
    Vault::open(db.store(), &key(KEY_A)).unwrap();
    let raw = db.raw();
    let mut ciphertext: Vec<u8> = raw
        .query_row("SELECT ciphertext FROM vault_check", [], |r| r.get(0))
        .unwrap();
    ciphertext[0] ^= 1;
    raw.execute("UPDATE vault_check SET ciphertext = ?1", [&ciphertext])
        .unwrap();
    let err = Vault::open(db.store(), &key(KEY_A)).err().unwrap();
    assert!(matches!(err, VaultError::CheckRecordTampered(_)), "{err}");
}

#[test]
fn rotation_keeps_every_secret_readable_and_changes_every_wrapped_key() {
    let db = Db::new();
    let store = db.store();
    add_server(&store, "srv");
    let vault = Vault::open(store.clone(), &key(KEY_A)).unwrap();
    vault.put(&ca_slot("ca"), &Secret::new(b"ca-key".to_vec())).unwrap();
    for (i, name) in ["one", "two", "three"].iter().enumerate() {
        vault
            .set_credential(
                &credential("srv", name, &format!("{name}.example.com")),
                &Secret::new(format!("secret-{i}").into_bytes()),
            )
            .unwrap();
    }
    drop(vault);
    let before = envelopes(&db.raw());
    assert_eq!(before.len(), 4);

    // The new key on standard input, through the real CLI.
    let out = db.cli(
        &["vault", "rotate-master-key"],
        &[("GIG_MASTER_KEY", KEY_A)],
        format!("{KEY_B}\n").as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-wrapped 4 secret(s)"), "{stdout}");
    assert!(!stdout.contains(KEY_B));

    let after = envelopes(&db.raw());
    for ((id, old_kid, old_wrapped, old_ct), (_, new_kid, new_wrapped, new_ct)) in before.iter().zip(&after) {
        assert_ne!(old_wrapped, new_wrapped, "secret {id}: wrapped key unchanged");
        assert_ne!(old_kid, new_kid, "secret {id}: key id unchanged");
        assert_eq!(old_ct, new_ct, "secret {id}: the data key and its ciphertext stay");
    }

    let err = Vault::open(db.store(), &key(KEY_A)).err().unwrap();
    assert!(matches!(err, VaultError::WrongMasterKey { .. }));
    let store = db.store();
    let vault = Vault::open(store.clone(), &key(KEY_B)).unwrap();
    assert_eq!(vault.get(&ca_slot("ca")).unwrap().unwrap().expose(), b"ca-key");
    let creds = store
        .effective_credentials(&ServerName::parse("srv").unwrap(), None)
        .unwrap();
    assert_eq!(creds.len(), 3);
    for c in &creds {
        let expected = match c.spec.name.as_str() {
            "one" => "secret-0",
            "two" => "secret-1",
            _ => "secret-2",
        };
        assert_eq!(vault.credential_secret(c).unwrap().expose(), expected.as_bytes());
    }
    assert!(vault.status().unwrap().rotated_at.is_some());
}

#[test]
fn rotation_takes_the_new_key_from_a_file_and_never_from_argv() {
    let db = Db::new();
    Vault::open(db.store(), &key(KEY_A))
        .unwrap()
        .put(&ca_slot("ca"), &Secret::new(b"v".to_vec()))
        .unwrap();
    let file = db.dir.path().join("new-key");
    std::fs::write(&file, format!("{KEY_B}\n")).unwrap();
    // No argument takes a key: an extra argument is refused by the parser.
    let out = db.cli(
        &["vault", "rotate-master-key", KEY_B],
        &[("GIG_MASTER_KEY", KEY_A)],
        b"",
    );
    assert!(!out.status.success());
    let out = db.cli(
        &["vault", "rotate-master-key"],
        &[
            ("GIG_MASTER_KEY", KEY_A),
            ("GIG_NEW_MASTER_KEY_FILE", file.to_str().unwrap()),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(Vault::open(db.store(), &key(KEY_B)).is_ok());
}

#[test]
fn a_rotation_that_meets_a_damaged_row_changes_nothing() {
    let db = Db::new();
    let vault = Vault::open(db.store(), &key(KEY_A)).unwrap();
    vault.put(&ca_slot("a"), &Secret::new(b"a".to_vec())).unwrap();
    vault.put(&ca_slot("b"), &Secret::new(b"b".to_vec())).unwrap();
    // Damage the second row's wrapped key, so the first row is re-wrapped before the failure.
    let raw = db.raw();
    let mut wrapped: Vec<u8> = raw
        .query_row("SELECT wrapped_key FROM secrets WHERE name = 'b'", [], |r| r.get(0))
        .unwrap();
    wrapped[0] ^= 1;
    raw.execute("UPDATE secrets SET wrapped_key = ?1 WHERE name = 'b'", [&wrapped])
        .unwrap();
    let before = envelopes(&raw);
    let check_before: Vec<u8> = raw
        .query_row("SELECT ciphertext FROM vault_check", [], |r| r.get(0))
        .unwrap();

    let err = vault.rotate(&key(KEY_B)).err().unwrap();
    assert!(matches!(err, VaultError::Tampered(ref s) if s.contains("/b")), "{err}");
    assert_eq!(envelopes(&raw), before);
    let check_after: Vec<u8> = raw
        .query_row("SELECT ciphertext FROM vault_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check_before, check_after);
    let vault = Vault::open(db.store(), &key(KEY_A)).unwrap();
    assert_eq!(vault.get(&ca_slot("a")).unwrap().unwrap().expose(), b"a");
}

#[test]
fn rotation_needs_the_current_key_and_a_different_new_one() {
    let db = Db::new();
    Vault::open(db.store(), &key(KEY_A)).unwrap();
    let out = db.cli(
        &["vault", "rotate-master-key"],
        &[("GIG_MASTER_KEY", KEY_B), ("GIG_NEW_MASTER_KEY", KEY_B)],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
    let out = db.cli(
        &["vault", "rotate-master-key"],
        &[("GIG_MASTER_KEY", KEY_A), ("GIG_NEW_MASTER_KEY", KEY_A)],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the current one"));
    let out = db.cli(
        &["vault", "rotate-master-key"],
        &[("GIG_MASTER_KEY", KEY_A), ("GIG_NEW_MASTER_KEY", "short")],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GIG_NEW_MASTER_KEY is invalid") && !stderr.contains("short"),
        "{stderr}"
    );
    assert!(Vault::open(db.store(), &key(KEY_A)).is_ok());
}
