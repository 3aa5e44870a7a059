//! The format's rules, one synthetic case each: the encoder, strict parsing, `Validate`, toolspecs and refs.

use gigmcp_catalog::manifest::{Credential, Inject, Manifest, Tool};
use gigmcp_catalog::toolspec::ToolSpec;
use gigmcp_catalog::{Index, ResolveError};

type ManifestChange = fn(&mut Manifest);
type SpecChange = fn(&mut ToolSpec);
type PairChange = fn(&mut ToolSpec, &mut Manifest);

const MANIFEST: &str = "\
schemaVersion: 1
name: demo
version: 1.2.3
source: {repo: example.test/demo, tag: v1.2.3}
image:
  ref: registry.example.test/demo
  digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
  entrypoint: /app/server
  builder: toolpack
tier: sealed
entitlements: {egress: [api.demo.test]}
credentials:
  - id: demo_key
    type: oauth2
    provider: demo
    vendor: demoidp
    scopes: [read]
    inject: {header: Authorization, format: 'Bearer {token}'}
tools:
  - {name: list, default: true}
  - {name: write, default: false}
displayName: Demo
description: A demo.
category: data
icon: icons/demo.svg
";

fn manifest() -> Manifest {
    let (manifest, hazards) = Manifest::parse(MANIFEST).unwrap();
    assert!(hazards.is_empty());
    assert_eq!(manifest.validate(), Vec::<String>::new());
    manifest
}

fn parse_error(text: &str) -> String {
    Manifest::parse(text).unwrap_err().to_string()
}

#[test]
fn runtime_hash_input_keeps_false_defaults_and_an_empty_digest() {
    let json = String::from_utf8(manifest().runtime_json()).unwrap();
    assert!(json.contains(r#"{"name":"write","default":false}"#), "{json}");
    assert!(json.contains(r#""digest":"","#), "{json}");
    assert!(
        !json.contains("vendor") && !json.contains("displayName") && !json.contains("icon"),
        "{json}"
    );
}

#[test]
fn empty_egress_is_an_empty_object() {
    let mut m = manifest();
    m.entitlements.egress.clear();
    assert!(
        String::from_utf8(m.runtime_json())
            .unwrap()
            .contains(r#""entitlements":{},"#)
    );
}

#[test]
fn html_characters_are_escaped_and_other_unicode_is_raw_in_the_hash_input() {
    let mut m = manifest();
    m.tools[0].name = "a<b>&c\u{2028}\u{2029}é".into();
    let json = String::from_utf8(m.runtime_json()).unwrap();
    assert!(
        json.contains(r#""name":"a\u003cb\u003e\u0026c\u2028\u2029é""#),
        "{json}"
    );
}

#[test]
fn presentation_fields_vendor_and_digest_do_not_change_the_runtime_hash() {
    let base = manifest();
    let changes: [(&str, ManifestChange); 6] = [
        ("vendor", |m| m.credentials[0].vendor = "other".into()),
        ("displayName", |m| m.display_name = "Other".into()),
        ("description", |m| m.description = "Other".into()),
        ("category", |m| m.category = "ai".into()),
        ("icon", |m| m.icon = "icons/x.svg".into()),
        ("image.digest", |m| {
            m.image.digest = format!("sha256:{}", "b".repeat(64))
        }),
    ];
    for (field, change) in changes {
        let mut m = base.clone();
        change(&mut m);
        assert_eq!(m.runtime_hash(), base.runtime_hash(), "{field}");
        assert_ne!(m.hash(), base.hash(), "{field} changes the full hash");
    }
}

#[test]
fn every_runtime_field_changes_the_runtime_hash() {
    let base = manifest();
    let changes: [(&str, ManifestChange); 17] = [
        ("schemaVersion", |m| m.schema_version = 2),
        ("name", |m| m.name = "demo2".into()),
        ("version", |m| m.version = "1.2.4".into()),
        ("source.repo", |m| m.source.repo = "example.test/other".into()),
        ("source.tag", |m| m.source.tag = "v9".into()),
        ("source.package", |m| m.source.package = "cmd/x".into()),
        ("image.ref", |m| {
            m.image.reference = "registry.example.test/other".into()
        }),
        ("image.entrypoint", |m| m.image.entrypoint = "/bin/x".into()),
        ("image.builder", |m| m.image.builder = "node".into()),
        ("tier", |m| m.tier = "entrusted".into()),
        ("egress", |m| m.entitlements.egress.push("b.demo.test".into())),
        ("credential id", |m| m.credentials[0].id = "other".into()),
        ("credential type", |m| m.credentials[0].kind = "api_key".into()),
        ("credential provider", |m| m.credentials[0].provider = "x".into()),
        ("credential scopes", |m| m.credentials[0].scopes.push("write".into())),
        ("credential inject", |m| m.credentials[0].inject.header = "X-Key".into()),
        ("tool default", |m| m.tools[1].default = true),
    ];
    for (field, change) in changes {
        let mut m = base.clone();
        change(&mut m);
        assert_ne!(m.runtime_hash(), base.runtime_hash(), "{field}");
    }
}

#[test]
fn the_runtime_hash_does_not_change_its_input() {
    let m = manifest();
    let copy = m.clone();
    let _ = m.runtime_hash();
    assert_eq!(m, copy);
}

#[test]
fn strict_parsing_refuses_unknown_duplicate_mistyped_and_case_different_keys() {
    let cases = [
        (
            MANIFEST.replace("entitlements: {egress:", "entitlements: {egres:"),
            "unknown field `egres`",
        ),
        (format!("{MANIFEST}name: again\n"), "duplicate key name"),
        (
            MANIFEST.replace("schemaVersion: 1", "schemaVersion: \"1\""),
            "schemaVersion: invalid type: string",
        ),
        (MANIFEST.replace("name: demo\n", "Name: demo\n"), "unknown field `Name`"),
        (
            MANIFEST.replace("{name: list, default: true}", "{name: list, default: yes}"),
            "tools[0].default",
        ),
        (
            MANIFEST.replace("tier: sealed", "tier: 1"),
            "tier: invalid type: integer",
        ),
        (MANIFEST.replace("tier: sealed", "tier: ~"), "tier: invalid type: null"),
    ];
    for (text, needle) in cases {
        let error = parse_error(&text);
        assert!(error.contains(needle), "{needle}: {error}");
    }
}

#[test]
fn a_yaml_1_1_boolean_word_is_reported_as_a_hazard() {
    let (_, hazards) = Manifest::parse(&MANIFEST.replace("name: demo\n", "name: on\n")).unwrap();
    assert_eq!(hazards.len(), 1);
    assert!(hazards[0].to_string().contains("quote it: \"on\""), "{}", hazards[0]);
}

#[test]
fn validate_refuses_each_rule() {
    let cases: [(ManifestChange, &str); 22] = [
        (|m| m.schema_version = 2, "schemaVersion must be 1, got 2"),
        (|m| m.name = "demo_x".into(), "name \"demo_x\" invalid"),
        (|m| m.version = "01.4.2".into(), "must be MAJOR.MINOR.PATCH"),
        (|m| m.source.tag.clear(), "source.repo and source.tag are required"),
        (|m| m.source.package = "../evil".into(), "must not contain .."),
        (|m| m.source.package = "/etc".into(), "relative"),
        (|m| m.source.package = "a b".into(), "only [a-zA-Z0-9._/-]"),
        (|m| m.image.reference.clear(), "image.ref is required"),
        (
            |m| m.image.digest = "sha256:short".into(),
            "image.digest \"sha256:short\" invalid",
        ),
        (|m| m.image.entrypoint = "app/server".into(), "absolute path"),
        (|m| m.image.builder = "ruby".into(), "image.builder \"ruby\" invalid"),
        (|m| m.tier = "yolo".into(), "tier \"yolo\" invalid"),
        (|m| m.entitlements.egress.push("*.com".into()), "two labels"),
        (
            |m| {
                let copy = m.credentials[0].clone();
                m.credentials.push(copy)
            },
            "credential id \"demo_key\" empty or duplicate",
        ),
        (|m| m.credentials[0].inject.env = "KEY".into(), "sealed tier requires"),
        (
            |m| m.credentials[0].inject.format = "Bearer x".into(),
            "sealed tier requires",
        ),
        (
            |m| {
                m.tier = "entrusted".into();
                m.credentials[0].inject = Inject {
                    header: "X".into(),
                    format: String::new(),
                    env: "KEY".into(),
                }
            },
            "entrusted tier requires inject.env only",
        ),
        (|m| m.credentials[0].vendor.clear(), "vendor is required for oauth2"),
        (
            |m| m.credentials[0].vendor = "Google_Inc".into(),
            "vendor \"Google_Inc\" invalid",
        ),
        (|m| m.category = "news".into(), "category \"news\" invalid"),
        (
            |m| {
                m.tools.push(Tool {
                    name: "list".into(),
                    default: false,
                })
            },
            "tool name \"list\" empty or duplicate",
        ),
        (
            |m| {
                let copy = Credential {
                    id: String::new(),
                    ..m.credentials[0].clone()
                };
                m.credentials.push(copy)
            },
            "credential id \"\" empty or duplicate",
        ),
    ];
    for (change, needle) in cases {
        let mut m = manifest();
        change(&mut m);
        let errors = m.validate();
        assert!(errors.iter().any(|e| e.contains(needle)), "{needle}: {errors:?}");
    }
}

#[test]
fn validate_collects_every_error() {
    let mut m = manifest();
    m.name = "Bad".into();
    m.tier = "yolo".into();
    m.category = "news".into();
    assert_eq!(m.validate().len(), 3);
}

const SPEC: &str = "\
schemaVersion: 1
name: demo
version: 1.2.3
baseUrl: https://api.demo.test
tools:
  - name: list
    description: List things.
    method: GET
    path: /things/{kind}
    params:
      - {name: kind, in: path, type: string, required: true, description: The kind.}
      - {name: X-Tenant, in: header, type: string, description: The tenant.}
  - name: write
    description: Write a thing.
    method: POST
    path: /things
    params:
      - {name: body, in: body, type: object}
";

fn spec() -> ToolSpec {
    let (spec, _) = ToolSpec::parse(SPEC).unwrap();
    assert_eq!(spec.validate(), Vec::<String>::new());
    assert_eq!(spec.check_against_manifest(&manifest()), Vec::<String>::new());
    spec
}

#[test]
fn toolspec_rules_refuse_each_case() {
    let cases: [(SpecChange, &str); 17] = [
        (|s| s.base_url = "http://api.demo.test".into(), "must be https://<host>"),
        (|s| s.base_url = "https://api.demo.test:8443".into(), "no port"),
        (|s| s.base_url = "https://api.demo.test/".into(), "no port, path"),
        (|s| s.base_url = "https://u@api.demo.test".into(), "no port, path"),
        (|s| s.base_url = "https://[::1]".into(), "no port, path"),
        (
            |s| s.tools[1].method = "GET".into(),
            "a body param needs POST, PUT or PATCH, not GET",
        ),
        (|s| s.tools[1].method = "DELETE".into(), "not DELETE"),
        (|s| s.tools[0].params[0].required = false, "must be required: true"),
        (
            |s| s.tools[0].path = "/things".into(),
            "is in: path but not in the path",
        ),
        (
            |s| s.tools[0].path = "/things/{kind}/{id}".into(),
            "{id} has no in: path param",
        ),
        (
            |s| {
                let copy = s.tools[0].params[1].clone();
                s.tools[0].params.push(copy)
            },
            "empty or duplicate",
        ),
        (
            |s| s.tools[0].params[1].location = "cookie".into(),
            "in \"cookie\" invalid",
        ),
        (|s| s.tools[0].params[1].kind = "date".into(), "type \"date\" invalid"),
        (|s| s.tools[1].encoding = "xml".into(), "encoding \"xml\" invalid"),
        (|s| s.tools[1].description.clear(), "description is required"),
        (|s| s.tools[0].params[1].name = "Host".into(), "may not set Host"),
        (|s| s.tools.clear(), "tools must not be empty"),
    ];
    for (change, needle) in cases {
        let mut s = spec();
        change(&mut s);
        let errors = s.validate();
        assert!(errors.iter().any(|e| e.contains(needle)), "{needle}: {errors:?}");
    }
}

#[test]
fn toolspecs_must_pair_with_their_manifest() {
    let cases: [(PairChange, &str); 7] = [
        (
            |s, _| s.tools.pop().map(drop).unwrap_or(()),
            "in the manifest but not in the toolspec",
        ),
        (
            |_, m| m.tools.pop().map(drop).unwrap_or(()),
            "in the toolspec but not in the manifest",
        ),
        (
            |s, _| s.base_url = "https://other.test".into(),
            "not in the manifest's egress",
        ),
        (
            |s, _| s.tools[0].base_url = "https://x.other.test".into(),
            "not in the manifest's egress",
        ),
        (
            |s, _| {
                s.auth = Some(gigmcp_catalog::toolspec::SpecAuth {
                    header: "X-Key".into(),
                    format: "{token}".into(),
                })
            },
            "sealed tier: the toolspec must not have an auth block",
        ),
        (
            |_, m| {
                m.tier = "entrusted".into();
                m.credentials[0].inject = Inject {
                    env: "KEY".into(),
                    ..Inject::default()
                }
            },
            "entrusted tier: the toolspec needs an auth block",
        ),
        (
            |s, _| s.tools[0].params[1].name = "authorization".into(),
            "would set the credential's header",
        ),
    ];
    for (change, needle) in cases {
        let (mut s, mut m) = (spec(), manifest());
        change(&mut s, &mut m);
        let errors = s.check_against_manifest(&m);
        assert!(errors.iter().any(|e| e.contains(needle)), "{needle}: {errors:?}");
    }
}

#[test]
fn a_header_param_equal_to_the_auth_header_is_refused() {
    let mut s = spec();
    s.auth = Some(gigmcp_catalog::toolspec::SpecAuth {
        header: "x-tenant".into(),
        format: "{token}".into(),
    });
    assert!(s.validate().iter().any(|e| e.contains("must not be the auth header")));
}

fn index_of(manifests: Vec<Manifest>) -> Index {
    Index::build(manifests, Vec::new(), "2026-06-11T00:00:00Z").unwrap()
}

#[test]
fn refs_resolve_by_name_version_and_unique_digest() {
    let mut newer = manifest();
    newer.version = "1.10.0".into();
    newer.image.digest = format!("sha256:{}", "c".repeat(64));
    let mut twin = manifest();
    twin.name = "twin".into();
    let index = index_of(vec![manifest(), newer, twin]);
    assert_eq!(index.resolve("demo").unwrap().version, "1.10.0");
    assert_eq!(index.resolve("demo@1.2.3").unwrap().version, "1.2.3");
    assert_eq!(
        index
            .resolve(&format!("sha256:{}", "c".repeat(64)))
            .unwrap()
            .reference(),
        "demo@1.10.0"
    );
    assert_eq!(index.resolve("demo@"), Err(ResolveError::TrailingAt("demo@".into())));
    assert_eq!(index.resolve("nope"), Err(ResolveError::UnknownServer("nope".into())));
    assert_eq!(
        index.resolve("demo@9.9.9"),
        Err(ResolveError::UnknownVersion("demo".into(), "9.9.9".into()))
    );
    assert!(matches!(
        index.resolve(&format!("sha256:{}", "d".repeat(64))),
        Err(ResolveError::UnknownDigest(_))
    ));
    let ambiguous = index.resolve(&format!("sha256:{}", "a".repeat(64))).unwrap_err();
    assert!(ambiguous.to_string().contains("demo@1.2.3, twin@1.2.3"), "{ambiguous}");
}

#[test]
fn the_index_refuses_duplicates_invalid_manifests_and_strays() {
    let errors = Index::build(vec![manifest(), manifest()], Vec::new(), "2026-06-11T00:00:00Z").unwrap_err();
    assert_eq!(errors, ["duplicate manifest demo@1.2.3"]);
    let mut bad = manifest();
    bad.tier = "yolo".into();
    let errors = Index::build(vec![bad], Vec::new(), "2026-06-11T00:00:00Z").unwrap_err();
    assert!(errors[0].starts_with("manifest demo@1.2.3: tier"), "{errors:?}");
    let errors = Index::build(vec![manifest()], Vec::new(), "yesterday").unwrap_err();
    assert!(errors[0].contains("RFC 3339"), "{errors:?}");

    let bytes = String::from_utf8(index_of(vec![manifest()]).to_bytes()).unwrap();
    for (text, needle) in [
        (
            bytes.replacen("\"latest\"", "\"extra\":1,\"latest\"", 1),
            "unknown field `extra`",
        ),
        (
            bytes.replacen(
                "\"servers\":{",
                "\"servers\":{\"demo\":{\"latest\":\"1.2.3\",\"versions\":{}},",
                1,
            ),
            "duplicate key \"demo\"",
        ),
        (
            bytes.replacen("\"schemaVersion\":1", "\"schemaVersion\":2", 1),
            "unsupported index schemaVersion 2",
        ),
        (
            bytes.replacen("\"tier\":\"sealed\"", "\"tier\":\"yolo\"", 1),
            "manifest demo@1.2.3: tier",
        ),
        (
            bytes.replacen("\"latest\":\"1.2.3\"", "\"latest\":\"1.2.4\"", 1),
            "latest 1.2.4 is not one of",
        ),
        (format!("{bytes} x"), "trailing characters"),
    ] {
        let error = Index::parse_trusted(text.as_bytes()).unwrap_err().to_string();
        assert!(error.contains(needle), "{needle}: {error}");
    }
}
