//! Credentials through the real `gigmcp` CLI: the secret travels only on standard input, is stored only
//! encrypted, is never shown, and a server is given only its placeholder (invariant 1); bad input gets a
//! clear error and writes nothing (invariant 8).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use gigmcp_store::Store;
use gigmcp_types::credential::Placeholder;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::secret::MasterKey;
use gigmcp_vault::{Vault, placeholder_env};

const KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const OTHER_KEY: &str = "4444444444444444444444444444444444444444444444444444444444444444";
const SECRET: &str = "ghp_REAL_SECRET_f00dfeedcafe0123456789";

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        let cli = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        cli.ok(&["server", "add", "gh", "--builtin", "echo"]);
        cli.ok(&["profile", "create", "team"]);
        cli
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("gigmcp.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(gigmcp_testkit::gigmcp_bin());
        cmd.args(args)
            .env_clear()
            .env("GIG_DATA_DIR", self.dir.path())
            .env("GIG_MASTER_KEY", KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        // A command refused before it reads its input closes the pipe early: that is not the test's failure.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, b"")
    }

    fn ok_with(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gigmcp {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str], stdin: &[u8], needle: &str) {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "gigmcp {args:?} should fail");
        assert!(
            stderr.contains(needle),
            "gigmcp {args:?}: expected {needle:?} in:\n{stderr}"
        );
    }

    fn set(&self, extra: &[&str], secret: &str) -> String {
        let mut args = vec!["credential", "set"];
        args.extend(extra);
        self.ok_with(&args, format!("{secret}\n").as_bytes())
    }

    fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.db()).unwrap())
    }

    /// Everything the vault and credentials tables hold, to prove a refused command wrote nothing.
    fn vault_rows(&self) -> String {
        let raw = rusqlite::Connection::open(self.db()).unwrap();
        let mut dump = String::new();
        for table in ["vault_check", "secrets", "credentials"] {
            let mut stmt = raw.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut row = Vec::new();
                    for i in 0..columns {
                        row.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(row.join("|"))
                })
                .unwrap();
            for row in rows {
                dump.push_str(&format!("{table}: {}\n", row.unwrap()));
            }
        }
        dump
    }
}

fn server(name: &str) -> ServerName {
    ServerName::parse(name).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn credential_set_takes_the_secret_on_stdin_and_never_shows_or_stores_it_in_plaintext() {
    let cli = Cli::new();
    // Start the command and look at its argv and environment while it waits for the secret.
    let mut child = cli
        .command(&["credential", "set", "gh", "github", "--hosts", "api.github.com"])
        .spawn()
        .unwrap();
    // Until it has executed gigmcp, the child still shows the test's own command line.
    let started = std::time::Instant::now();
    let cmdline = loop {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        if contains(&cmdline, b"api.github.com") || started.elapsed().as_secs() > 10 {
            break cmdline;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{SECRET}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(contains(&cmdline, b"api.github.com"), "read the wrong process");
    assert!(!contains(&cmdline, SECRET.as_bytes()));
    assert!(!contains(&environ, SECRET.as_bytes()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("GITHUB_TOKEN=gigph_"), "{stdout}");
    assert!(!contains(&out.stdout, SECRET.as_bytes()) && !contains(&out.stderr, SECRET.as_bytes()));

    let list = cli.ok(&["credential", "list"]);
    assert!(list.contains("github") && list.contains("GITHUB_TOKEN") && list.contains("api.github.com"));
    assert!(
        list.contains("Authorization") && list.contains("Bearer {secret}"),
        "{list}"
    );
    assert!(!list.contains(SECRET) && !list.contains("ghp_"), "{list}");

    // Stored: encrypted, and exactly the secret (one trailing newline removed).
    let store = cli.store();
    let creds = store.effective_credentials(&server("gh"), None).unwrap();
    let placeholder = creds[0].placeholder.as_str().to_owned();
    assert!(
        !list.contains(&placeholder),
        "list shows only the placeholder's first characters"
    );
    let vault = Vault::open(store.clone(), &MasterKey::parse(KEY).unwrap()).unwrap();
    assert_eq!(vault.credential_secret(&creds[0]).unwrap().expose(), SECRET.as_bytes());
    drop((vault, store));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(cli.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(
        !contains(&files, SECRET.as_bytes()),
        "the secret is in the database in plaintext"
    );
    assert!(!contains(&files, &SECRET.as_bytes()[4..20]));
}

#[test]
fn placeholder_env_gives_the_profile_credential_over_the_server_wide_one() {
    let cli = Cli::new();
    cli.ok(&["profile", "create", "other"]);
    cli.set(&["gh", "github", "--hosts", "api.github.com"], "wide-secret");
    cli.set(
        &[
            "gh",
            "search",
            "--hosts",
            "search.example.com",
            "--env-name",
            "SEARCH_KEY",
        ],
        "s",
    );
    let scoped_out = cli.set(
        &["gh", "github", "--profile", "team", "--hosts", "api.github.com"],
        "team-secret",
    );
    assert!(scoped_out.contains("not in profile team yet"), "{scoped_out}");

    let store = cli.store();
    let all = store.credentials(Some(&server("gh")), None).unwrap();
    let placeholder_of = |profile: Option<&str>, name: &str| {
        all.iter()
            .find(|c| c.spec.name.as_str() == name && c.spec.profile.as_ref().map(|p| p.as_str()) == profile)
            .unwrap()
            .placeholder
            .as_str()
            .to_owned()
    };
    let wide = placeholder_of(None, "github");
    let scoped = placeholder_of(Some("team"), "github");
    let search = placeholder_of(None, "search");
    assert_ne!(wide, scoped);

    let team = ProfileSlug::parse("team").unwrap();
    let other = ProfileSlug::parse("other").unwrap();
    assert_eq!(
        placeholder_env(&store, &server("gh"), Some(&team)).unwrap(),
        vec![
            ("GITHUB_TOKEN".into(), scoped.clone()),
            ("SEARCH_KEY".into(), search.clone())
        ]
    );
    let expected_wide = vec![
        ("GITHUB_TOKEN".into(), wide.clone()),
        ("SEARCH_KEY".into(), search.clone()),
    ];
    assert_eq!(
        placeholder_env(&store, &server("gh"), Some(&other)).unwrap(),
        expected_wide
    );
    assert_eq!(placeholder_env(&store, &server("gh"), None).unwrap(), expected_wide);
    assert!(placeholder_env(&store, &server("nope"), None).unwrap().is_empty());
    for (_, value) in placeholder_env(&store, &server("gh"), Some(&team)).unwrap() {
        assert!(Placeholder::parse(&value).is_some());
        assert!(!value.contains("secret"));
    }

    // The profile's own credential is what the proxy would inject for that profile.
    let vault = Vault::open(store.clone(), &MasterKey::parse(KEY).unwrap()).unwrap();
    let effective = store.effective_credentials(&server("gh"), Some(&team)).unwrap();
    let github = effective.iter().find(|c| c.spec.name.as_str() == "github").unwrap();
    assert_eq!(vault.credential_secret(github).unwrap().expose(), b"team-secret");

    let scoped_list = cli.ok(&["credential", "list", "--profile", "team"]);
    assert!(
        scoped_list.contains("team") && !scoped_list.contains("search"),
        "{scoped_list}"
    );
}

#[test]
fn replacing_a_credential_keeps_its_placeholder_and_changes_its_secret() {
    let cli = Cli::new();
    cli.set(&["gh", "github", "--hosts", "api.github.com"], "first");
    let store = cli.store();
    let before = store.effective_credentials(&server("gh"), None).unwrap().remove(0);
    let out = cli.set(
        &[
            "gh",
            "github",
            "--hosts",
            "api.github.com,uploads.github.com",
            "--header",
            "X-Api-Key",
            "--format",
            "{secret}",
        ],
        "second",
    );
    assert!(out.contains("replaced credential github"), "{out}");
    let after = store.effective_credentials(&server("gh"), None).unwrap().remove(0);
    assert_eq!(before.placeholder, after.placeholder);
    assert_eq!(after.spec.header.as_str(), "X-Api-Key");
    assert!(after.spec.hosts.allows("uploads.github.com", 443));
    let vault = Vault::open(store.clone(), &MasterKey::parse(KEY).unwrap()).unwrap();
    assert_eq!(vault.credential_secret(&after).unwrap().expose(), b"second");
}

#[test]
fn deleting_a_credential_its_profile_or_its_server_deletes_its_secret() {
    let cli = Cli::new();
    cli.set(&["gh", "a", "--hosts", "a.example.com"], "sa");
    cli.set(&["gh", "b", "--profile", "team", "--hosts", "b.example.com"], "sb");
    cli.set(&["gh", "c", "--hosts", "c.example.com"], "sc");
    let secrets = || -> i64 {
        rusqlite::Connection::open(cli.db())
            .unwrap()
            .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(secrets(), 3);
    cli.fails(
        &["credential", "delete", "gh", "b"],
        b"",
        "no credential b for server gh (server-wide)",
    );
    let out = cli.ok(&["credential", "delete", "gh", "a"]);
    assert!(out.contains("deleted credential a"), "{out}");
    assert_eq!(secrets(), 2);
    cli.ok(&["profile", "delete", "team"]);
    assert_eq!(secrets(), 1);
    cli.ok(&["server", "remove", "gh"]);
    assert_eq!(secrets(), 0);
    assert!(cli.ok(&["credential", "list"]).contains("(no credentials)"));
}

#[test]
fn bad_credential_input_is_refused_with_a_clear_error_and_nothing_is_written() {
    let cli = Cli::new();
    cli.ok(&["server", "add", "remote", "--url", "http://127.0.0.1:9/mcp"]);
    cli.ok(&[
        "server",
        "add",
        "envd",
        "--command",
        "/bin/true",
        "--env",
        "API_TOKEN=x",
    ]);
    // One good credential, so that conflicts can be tried and "nothing written" is checked against rows.
    cli.set(
        &["gh", "taken", "--hosts", "t.example.com", "--env-name", "TAKEN_VAR"],
        "t",
    );
    let before = cli.vault_rows();
    let good = b"a-secret\n";
    let cases: &[(&[&str], &[u8], &str)] = &[
        (&["nope", "x", "--hosts", "a.com"], good, "no server named nope"),
        (
            &["gh", "x", "--profile", "nope", "--hosts", "a.com"],
            good,
            "no profile named nope",
        ),
        (
            &["remote", "x", "--hosts", "a.com"],
            good,
            "remote streamable-HTTP server",
        ),
        (&["Bad Server", "x", "--hosts", "a.com"], good, "invalid server name"),
        (&["gh", "Bad", "--hosts", "a.com"], good, "invalid credential name"),
        (&["gh", "x", "--hosts", "a.com/path"], good, "invalid host"),
        (&["gh", "x", "--hosts", "*.com"], good, "invalid host"),
        (&["gh", "x", "--hosts", "a.com:99999"], good, "invalid host"),
        (&["gh", "x", "--hosts", ","], good, "--hosts is empty"),
        (
            &["gh", "x", "--hosts", "a.com", "--header", "Bad Header"],
            good,
            "invalid --header",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--header", "Host"],
            good,
            "cannot carry a credential",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--format", "Bearer"],
            good,
            "{secret} exactly once",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--format", "{secret}{secret}"],
            good,
            "{secret} exactly once",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--env-name", "1BAD"],
            good,
            "invalid --env-name",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--env-name", "PATH"],
            good,
            "is reserved",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--env-name", "https_proxy"],
            good,
            "is reserved",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--env-name", "GIG_MASTER_KEY"],
            good,
            "is reserved",
        ),
        (
            &["gh", "x", "--hosts", "a.com", "--env-name", "TAKEN_VAR"],
            good,
            "already carries credential taken",
        ),
        (&["envd", "api", "--hosts", "a.com"], good, "already sets API_TOKEN"),
        (&["gh", "x", "--hosts", "a.com"], b"", "the secret is empty"),
        (&["gh", "x", "--hosts", "a.com"], b"\n", "the secret is empty"),
        (
            &["gh", "x", "--hosts", "a.com"],
            b"line one\nline two\n",
            "control character",
        ),
        (&["gh", "x"], good, "--hosts"),
    ];
    for (extra, stdin, needle) in cases {
        let mut args = vec!["credential", "set"];
        args.extend_from_slice(extra);
        cli.fails(&args, stdin, needle);
    }
    // The master key: missing, malformed, or not this database's.
    let run_with_key = |key: Option<&str>| {
        let mut cmd = cli.command(&["credential", "set", "gh", "x", "--hosts", "a.com"]);
        cmd.env_remove("GIG_MASTER_KEY");
        if let Some(key) = key {
            cmd.env("GIG_MASTER_KEY", key);
        }
        let mut child = cmd.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(good);
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run_with_key(None).contains("GIG_MASTER_KEY is not set"));
    assert!(run_with_key(Some("xyz")).contains("64 hex characters"));
    assert!(run_with_key(Some(OTHER_KEY)).contains("GIG_MASTER_KEY does not match"));

    assert_eq!(cli.vault_rows(), before, "a refused command changed the vault");
    cli.fails(&["credential", "list", "--server", "nope"], b"", "no server named nope");
    cli.fails(&["credential", "delete", "gh", "missing"], b"", "no credential missing");
}

#[test]
fn a_refused_secret_on_a_new_database_writes_not_even_the_check_record() {
    let cli = Cli::new();
    cli.fails(
        &["credential", "set", "gh", "x", "--hosts", "a.com"],
        b"",
        "the secret is empty",
    );
    assert_eq!(cli.vault_rows(), "");
}
