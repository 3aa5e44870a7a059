//! The signed index: every manifest of the registry (and, as an extension the Go gateway ignores, every
//! toolpack's toolspec, so that toolspecs are signed too), in the bytes Go's `json.Marshal` writes.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::gojson;
use crate::manifest::{Manifest, version_key};
use crate::signing::{PublicKey, SignatureError};
use crate::toolspec::ToolSpec;
use gigmcp_types::time::Civil;

/// The most a fetched index or signature may weigh.
pub const MAX_INDEX_BYTES: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Index {
    pub schema_version: i64,
    /// RFC 3339, UTC, seconds: `2026-06-10T23:20:45Z`.
    pub generated: String,
    #[serde(deserialize_with = "unique_map")]
    pub servers: BTreeMap<String, IndexServer>,
    /// `name@version` → toolspec; absent from indexes the original's tooling builds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "unique_map")]
    pub toolspecs: BTreeMap<String, ToolSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexServer {
    pub latest: String,
    #[serde(deserialize_with = "unique_map")]
    pub versions: BTreeMap<String, Manifest>,
}

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("UNTRUSTED index: {0}")]
    Untrusted(#[from] SignatureError),
    #[error("the index is larger than {} MiB", MAX_INDEX_BYTES >> 20)]
    TooLarge,
    #[error("the index is not valid JSON for schemaVersion 1: {0}")]
    Json(String),
    #[error("unsupported index schemaVersion {0}")]
    SchemaVersion(i64),
    #[error("the index's generated time {0:?} is not RFC 3339 UTC to the second, like 2026-06-10T23:20:45Z")]
    Generated(String),
    #[error("the index is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("malformed ref {0:?} (trailing @)")]
    TrailingAt(String),
    #[error("unknown server {0:?} in the catalog")]
    UnknownServer(String),
    #[error("unknown version {0}@{1} in the catalog")]
    UnknownVersion(String, String),
    #[error("no manifest pins image digest {0}")]
    UnknownDigest(String),
    #[error("the digest {digest} is pinned by more than one manifest ({}); name the entry instead", .matches.join(", "))]
    Ambiguous { digest: String, matches: Vec<String> },
}

impl Index {
    /// `BuildIndex`: every manifest valid, no `name@version` twice, `latest` the highest version, and each
    /// toolspec paired with its manifest.
    pub fn build(manifests: Vec<Manifest>, toolspecs: Vec<ToolSpec>, generated: &str) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if parse_generated(generated).is_none() {
            errors.push(IndexError::Generated(generated.to_owned()).to_string());
        }
        let mut servers: BTreeMap<String, IndexServer> = BTreeMap::new();
        for manifest in manifests {
            let problems = manifest.validate();
            if !problems.is_empty() {
                errors.push(format!("manifest {}: {}", manifest.reference(), problems.join("; ")));
                continue;
            }
            let server = servers.entry(manifest.name.clone()).or_insert_with(|| IndexServer {
                latest: manifest.version.clone(),
                versions: BTreeMap::new(),
            });
            if version_key(&server.latest) < version_key(&manifest.version) {
                server.latest = manifest.version.clone();
            }
            if server.versions.contains_key(&manifest.version) {
                errors.push(format!("duplicate manifest {}", manifest.reference()));
            }
            server.versions.insert(manifest.version.clone(), manifest);
        }
        let mut specs = BTreeMap::new();
        for spec in toolspecs {
            specs.insert(spec.reference(), spec);
        }
        let index = Self {
            schema_version: 1,
            generated: generated.to_owned(),
            servers,
            toolspecs: specs,
        };
        errors.extend(index.toolspec_errors());
        if errors.is_empty() { Ok(index) } else { Err(errors) }
    }

    /// Checks the signature over the raw bytes, then parses them strictly (unknown fields and duplicate keys
    /// refused at every level) and checks every entry. Nothing is parsed before the signature holds.
    pub fn open(raw: &[u8], signature: &str, key: &PublicKey) -> Result<Self, IndexError> {
        if raw.len() > MAX_INDEX_BYTES {
            return Err(IndexError::TooLarge);
        }
        key.verify(raw, signature)?;
        Self::parse_trusted(raw)
    }

    /// Parses and checks bytes whose signature was already checked (an index this gateway accepted and
    /// stored).
    pub fn parse_trusted(raw: &[u8]) -> Result<Self, IndexError> {
        let mut deserializer = serde_json::Deserializer::from_slice(raw);
        let index: Self = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| IndexError::Json(format!("{}: {}", e.path(), e.inner())))?;
        deserializer.end().map_err(|e| IndexError::Json(e.to_string()))?;
        if index.schema_version != 1 {
            return Err(IndexError::SchemaVersion(index.schema_version));
        }
        if parse_generated(&index.generated).is_none() {
            return Err(IndexError::Generated(index.generated));
        }
        let mut errors = Vec::new();
        for (name, server) in &index.servers {
            if !server.versions.contains_key(&server.latest) {
                errors.push(format!("{name}: latest {} is not one of its versions", server.latest));
            }
            for (version, manifest) in &server.versions {
                if manifest.name != *name || manifest.version != *version {
                    errors.push(format!(
                        "{name}@{version} holds the manifest of {}",
                        manifest.reference()
                    ));
                }
                let problems = manifest.validate();
                if !problems.is_empty() {
                    errors.push(format!("manifest {name}@{version}: {}", problems.join("; ")));
                }
            }
        }
        errors.extend(index.toolspec_errors());
        if errors.is_empty() {
            Ok(index)
        } else {
            Err(IndexError::Invalid(errors.join("; ")))
        }
    }

    fn toolspec_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (reference, spec) in &self.toolspecs {
            if *reference != spec.reference() {
                errors.push(format!(
                    "toolspec {reference} holds the toolspec of {}",
                    spec.reference()
                ));
            }
            let problems = spec.validate();
            if !problems.is_empty() {
                errors.push(format!("toolspec {reference}: {}", problems.join("; ")));
            }
            match self.manifest(&spec.name, &spec.version) {
                Some(manifest) => {
                    let problems = spec.check_against_manifest(manifest);
                    if !problems.is_empty() {
                        errors.push(format!("toolspec {reference}: {}", problems.join("; ")));
                    }
                }
                None => errors.push(format!("toolspec {reference} has no manifest")),
            }
        }
        errors
    }

    /// The index's bytes, as Go's `json.Marshal` writes them: no whitespace, no trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        gojson::to_vec(self)
    }

    /// `generated` as Unix seconds.
    pub fn generated_unix(&self) -> i64 {
        parse_generated(&self.generated).unwrap_or(i64::MIN)
    }

    pub fn manifest(&self, name: &str, version: &str) -> Option<&Manifest> {
        self.servers.get(name)?.versions.get(version)
    }

    pub fn toolspec(&self, manifest: &Manifest) -> Option<&ToolSpec> {
        self.toolspecs.get(&manifest.reference())
    }

    /// The latest version of every entry, in name order.
    pub fn latest(&self) -> impl Iterator<Item = &Manifest> {
        self.servers.values().filter_map(|s| s.versions.get(&s.latest))
    }

    /// `name` (its latest version), `name@version`, or `sha256:<digest>` (exactly one entry pinning it).
    pub fn resolve(&self, reference: &str) -> Result<&Manifest, ResolveError> {
        if reference.starts_with("sha256:") {
            let matches: Vec<&Manifest> = self
                .servers
                .values()
                .flat_map(|s| s.versions.values())
                .filter(|m| m.image.digest == reference)
                .collect();
            return match matches.as_slice() {
                [] => Err(ResolveError::UnknownDigest(reference.to_owned())),
                [one] => Ok(one),
                many => Err(ResolveError::Ambiguous {
                    digest: reference.to_owned(),
                    matches: many.iter().map(|m| m.reference()).collect(),
                }),
            };
        }
        let (name, version) = match reference.split_once('@') {
            Some((name, "")) => return Err(ResolveError::TrailingAt(format!("{name}@"))),
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        let server = self
            .servers
            .get(name)
            .ok_or_else(|| ResolveError::UnknownServer(name.to_owned()))?;
        let version = version.unwrap_or(&server.latest);
        server
            .versions
            .get(version)
            .ok_or_else(|| ResolveError::UnknownVersion(name.to_owned(), version.to_owned()))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` → Unix seconds.
pub fn parse_generated(text: &str) -> Option<i64> {
    Civil::parse_rfc3339(text)?.to_unix()
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_generated(unix: i64) -> String {
    Civil::from_unix(unix).rfc3339()
}

/// A JSON object read into a map, refusing a key that appears twice (serde_json keeps the last).
fn unique_map<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some(key) = access.next_key::<String>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                let value = access.next_value()?;
                map.insert(key, value);
            }
            Ok(map)
        }
    }
    deserializer.deserialize_map(Unique(PhantomData))
}
