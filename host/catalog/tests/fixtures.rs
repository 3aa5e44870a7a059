//! The catalog format against the project's own fixture registry (`tests/catalog/registry`), written from
//! the format's documentation, and against an outside reference: the expected hashes below were computed
//! by Go's `encoding/json` (`tests/support/catalog-go`), which `hashes_match_go_encoding_json` runs again
//! when Go is installed (always under `make test`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use gigmcp_catalog::registry;
use gigmcp_catalog::{Index, SigningKey};
use sha2::{Digest, Sha256};

const GENERATED: &str = "2026-06-11T00:00:00Z";

/// name@version, Hash, RuntimeHash (Go 1.19 `encoding/json`, PyYAML reading the YAML).
const EXPECTED: [(&str, &str, &str); 10] = [
    (
        "chatbin@1.3.0",
        "325e3004a24b7a7aadbc76318d89b49d1cbbac2aa37db3838e215ae57a04e92a",
        "b2ed0de2f0de10941f8368c84fdfb955045e470bc6697150ae23bd8f13d32a65",
    ),
    (
        "helpdesk@0.1.0",
        "bf283fe830636e1daa334444a0ac44bd55d0ec1203301d77e05d5c42d3e10aaa",
        "8802cda3260b4a7a3a9822436fe6ae7375d56fbab21e2bfd0fe6cc21591d102b",
    ),
    (
        "legacybot@0.1.0",
        "69cb81b4d086a1ffd22f5bf5e309d15830eddcaf570b7109ac0a130348d1d04c",
        "5ce37daab77ed63cd074cb9c5988e26ed9c017d49e01d68d1b6657e62b643cfb",
    ),
    (
        "newsfeed@0.1.0",
        "12c635edb899ff409a1e5d5bea9f86b9fcff282d705461b66bf6f754396c0647",
        "cc08bc522a2439e527d4754b6d492e65ecbeea0dc290acf373d95ae19eb358d9",
    ),
    (
        "oldpager@0.1.0",
        "ad40f3f5e2b048c57da2e5b5ad4bd4976a428f8a3b1b5ec50f17c908cef815d7",
        "f7c680cd502a5e24b38b6b8cae333c4a4bdbbcda2c176082e063b5cbc2addf1b",
    ),
    (
        "pubsub@1.4.2",
        "c2b8053a1c05e279b7c562903444ad47084a1da13fd64bd4e1a25992a90881b3",
        "bea04e9c41c85cde93ca7b2c0510e11fcaa52824dc382ad33fd00f2aa7bcd394",
    ),
    (
        "pubsub@1.5.0",
        "f69fae79199dfb2dff6adb5b9368e6e19d1ab1d1137b0b27608da76a2631739b",
        "efbd9e923203a86700f0219462341c719c3bfe6915df65de24aa50919bc73276",
    ),
    (
        "taskboard@0.10.0",
        "d01b88b79f01a7244225c723e354e7e6ec8fa96fa93c8fd28d64aedb44b86246",
        "43a40a39f9731eebc9af5e9d9a691d5617271489e509459120c237199a959c3c",
    ),
    (
        "taskboard@0.9.0",
        "3881dea6d01630cf3453cee88bb2c73102ab55534940ca4616ea4e69688fc08b",
        "bf420ed15ab0b12f88063e6309d99ac59c18771a8f6d4a7be5b74e6f35fc92ff",
    ),
    (
        "weatherly@0.1.0",
        "ac12ea482784ca07dd8a2f4006432ee4ff300db5432ab2e9018cc93bc3ea0122",
        "df146f1801c02331121261dd5ac4b08755961f46527766b62d841b5fb3594c0f",
    ),
];

/// SHA-256 of the index built from the fixtures with `generated` = GENERATED (toolspecs included).
const EXPECTED_INDEX: &str = "c68a8d6aabb89b0e55f02de8781781496b5f6802f723113fbf7316d86005afe9";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/catalog/registry")
}

fn fixture_index() -> Index {
    let (registry, _) = registry::load(&fixtures()).expect("the fixtures lint clean");
    Index::build(registry.manifests, registry.toolspecs, GENERATED).expect("the fixtures build")
}

#[test]
fn fixtures_parse_validate_lint_and_pair_without_errors() {
    let (registry, report) = registry::lint(&fixtures());
    assert_eq!(report.errors, Vec::<String>::new());
    // The one soft finding the fixtures were written to have: taskboard's identity host, which no base URL uses.
    assert_eq!(
        report.warnings,
        [
            "manifests/taskboard/0.10.0.toolspec.yaml: egress \"auth.toolpack.test\" is used by no base URL: the engine \
             never calls it, and it widens the sandbox's reach",
            "manifests/taskboard/0.9.0.toolspec.yaml: egress \"auth.toolpack.test\" is used by no base URL: the engine \
             never calls it, and it widens the sandbox's reach",
        ]
    );
    assert_eq!((registry.manifests.len(), registry.toolspecs.len()), (10, 7));
}

#[test]
fn fixture_counts_are_those_they_were_written_to_have() {
    let (registry, _) = registry::load(&fixtures()).unwrap();
    let count = |f: &dyn Fn(&gigmcp_catalog::Manifest) -> bool| registry.manifests.iter().filter(|m| f(m)).count();
    let servers: std::collections::BTreeSet<_> = registry.manifests.iter().map(|m| &m.name).collect();
    assert_eq!(servers.len(), 8);
    assert_eq!(count(&|m| m.image.builder == "toolpack"), 7);
    assert_eq!(count(&|m| m.image.builder.is_empty()), 3, "go-static, builder omitted");
    assert_eq!(count(&|m| m.tier == "sealed"), 8);
    assert_eq!(count(&|m| m.tier == "entrusted"), 2);
    let kinds = |kind: &str| {
        registry
            .manifests
            .iter()
            .flat_map(|m| &m.credentials)
            .filter(|c| c.kind == kind)
            .count()
    };
    assert_eq!((kinds("api_key"), kinds("oauth2"), kinds("basic")), (6, 2, 1));
    assert_eq!(count(&|m| m.credentials.is_empty()), 1);
    assert_eq!(count(&|m| m.has_placeholder_digest()), 2);
    let vendors: std::collections::BTreeSet<_> = registry
        .manifests
        .iter()
        .flat_map(|m| &m.credentials)
        .filter(|c| c.kind == "oauth2")
        .map(|c| c.vendor.as_str())
        .collect();
    assert_eq!(vendors.into_iter().collect::<Vec<_>>(), ["testidp"]);
}

#[test]
fn hashes_equal_the_go_reference_literals() {
    let (registry, _) = registry::load(&fixtures()).unwrap();
    let mut got: Vec<(String, String, String)> = registry
        .manifests
        .iter()
        .map(|m| (m.reference(), m.hash(), m.runtime_hash()))
        .collect();
    got.sort();
    let expected: Vec<_> = EXPECTED
        .iter()
        .map(|(r, h, rh)| (r.to_string(), h.to_string(), rh.to_string()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn index_bytes_equal_the_go_reference() {
    let index = fixture_index();
    let bytes = index.to_bytes();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), EXPECTED_INDEX);
    assert!(
        bytes.starts_with(b"{\"schemaVersion\":1,\"generated\":\"2026-06-11T00:00:00Z\",\"servers\":{\"chatbin\":")
    );
    assert_ne!(bytes.last(), Some(&b'\n'));
    assert_eq!(index.servers["pubsub"].latest, "1.5.0", "1.5.0 over 1.4.2");
    assert_eq!(
        index.servers["taskboard"].latest, "0.10.0",
        "0.10.0 over 0.9.0, numerically"
    );
    // The bytes read back to the same index, and write again to the same bytes.
    assert_eq!(Index::parse_trusted(&bytes).unwrap(), index);
}

#[test]
fn hashes_match_go_encoding_json() {
    let go = std::process::Command::new("go").arg("version").output();
    if go.is_err() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: Go is not installed (make test installs it; CI requires it)");
        return;
    }
    let support = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/catalog-go");
    let json = std::process::Command::new("/usr/bin/python3")
        .arg(support.join("to-json.py"))
        .arg(fixtures())
        .arg(GENERATED)
        .output()
        .expect("python3 runs");
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let cache = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("go")
        .args(["run", "main.go"])
        .current_dir(&support)
        .env("GO111MODULE", "off")
        .env("GOCACHE", cache.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("go runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &json.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let (key, rest) = line.split_once(' ').unwrap();
        lines.insert(key.to_owned(), rest.to_owned());
    }
    for (reference, hash, runtime) in EXPECTED {
        assert_eq!(lines[reference], format!("{hash} {runtime}"), "{reference}");
    }
    assert_eq!(lines["index"], EXPECTED_INDEX);
}

#[test]
fn a_signed_fixture_index_opens_and_a_tampered_one_does_not() {
    let bytes = fixture_index().to_bytes();
    let key = SigningKey::generate().unwrap();
    let signature = key.sign(&bytes);
    let index = Index::open(&bytes, &signature, &key.public_key()).unwrap();
    assert_eq!(index.latest().count(), 8);
    let mut tampered = bytes.clone();
    tampered[20] ^= 1;
    let error = Index::open(&tampered, &signature, &key.public_key()).unwrap_err();
    assert!(error.to_string().starts_with("UNTRUSTED index"), "{error}");
}
