//! A catalog entry's manifest: the registry's schema (`schemaVersion` 1), field for field in the Go
//! schema's declaration order, which is also the order of its canonical JSON.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::egress::{self, Denylist, is_slug};
use crate::{ParseError, gojson, parse_yaml};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: i64,
    pub name: String,
    pub version: String,
    pub source: Source,
    pub image: Image,
    pub tier: String,
    pub entitlements: Entitlements,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub category: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Source {
    pub repo: String,
    pub tag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub package: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Image {
    #[serde(rename = "ref")]
    pub reference: String,
    /// Never omitted: `"digest":""` is part of the runtime hash's input.
    pub digest: String,
    pub entrypoint: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub builder: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Entitlements {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credential {
    pub id: String,
    /// `api_key`, `basic`, `oauth2` or `custom_env` by convention; the schema does not check it.
    #[serde(rename = "type")]
    pub kind: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Never omitted, so `"inject":{}` is possible.
    pub inject: Inject,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inject {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub header: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub env: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tool {
    pub name: String,
    /// Never omitted: `"default":false` is hashed.
    pub default: bool,
}

/// The closed set of categories (case-sensitive).
pub const CATEGORIES: [&str; 17] = [
    "ai",
    "analytics",
    "comms",
    "CRM",
    "data",
    "design",
    "dev-tools",
    "documents",
    "e-commerce",
    "finance",
    "HR/ATS",
    "marketing",
    "productivity",
    "search",
    "social",
    "storage",
    "support",
];

/// The builders the schema knows; empty means `go-static`.
pub const BUILDERS: [&str; 5] = ["", "go-static", "node", "python", "toolpack"];

/// The placeholder digest some entries carry: such an entry is listed but never installable.
pub const PLACEHOLDER_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

impl Manifest {
    /// Strict parse of a manifest's YAML: exact-case keys, unknown fields, duplicate keys and wrong scalar
    /// types refused, each error naming the field. YAML-1.1 hazards are returned for lint to refuse.
    pub fn parse(text: &str) -> Result<(Self, Vec<crate::yaml::Hazard>), ParseError> {
        parse_yaml(text)
    }

    /// `Hash`: SHA-256 (lowercase hex) of the canonical JSON of the whole manifest.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(gojson::to_vec(self)))
    }

    /// `RuntimeHash`, the consent key: the hash with the image digest, the presentation fields and the
    /// credentials' vendors cleared. Everything that changes what runs, or where it may connect, changes it.
    pub fn runtime_hash(&self) -> String {
        hex::encode(Sha256::digest(self.runtime_json()))
    }

    /// The input of [`Manifest::runtime_hash`].
    pub fn runtime_json(&self) -> Vec<u8> {
        let mut runtime = self.clone();
        runtime.image.digest.clear();
        runtime.display_name.clear();
        runtime.description.clear();
        runtime.category.clear();
        runtime.icon.clear();
        for credential in &mut runtime.credentials {
            credential.vendor.clear();
        }
        gojson::to_vec(&runtime)
    }

    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    pub fn is_toolpack(&self) -> bool {
        self.image.builder == "toolpack"
    }

    /// What runs: `toolpack` (the gateway's own engine), `binary` (a static binary, builder `go-static` or
    /// omitted), `node` or `python`.
    pub fn kind(&self) -> &'static str {
        match self.image.builder.as_str() {
            "toolpack" => "toolpack",
            "node" => "node",
            "python" => "python",
            _ => "binary",
        }
    }

    /// Whether the entry pins the all-zero placeholder digest: listed, never installable.
    pub fn has_placeholder_digest(&self) -> bool {
        self.image.digest == PLACEHOLDER_DIGEST
    }

    /// The schema's `Validate`: every error, not just the first.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.schema_version != 1 {
            errors.push(format!("schemaVersion must be 1, got {}", self.schema_version));
        }
        if !is_slug(&self.name) {
            errors.push(format!(
                "name {:?} invalid: lowercase [a-z0-9-], no underscores, not starting or ending with -",
                self.name
            ));
        }
        if !is_version(&self.version) {
            errors.push(format!("version {:?} invalid: must be MAJOR.MINOR.PATCH", self.version));
        }
        if self.source.repo.is_empty() || self.source.tag.is_empty() {
            errors.push("source.repo and source.tag are required".into());
        }
        if !self.source.package.is_empty()
            && let Err(why) = check_package(&self.source.package)
        {
            errors.push(format!("source.package {:?} invalid: {why}", self.source.package));
        }
        if self.image.reference.is_empty() {
            errors.push("image.ref is required".into());
        }
        if !is_digest(&self.image.digest) {
            errors.push(format!(
                "image.digest {:?} invalid: must be sha256: and 64 lowercase hex characters",
                self.image.digest
            ));
        }
        if !self.image.entrypoint.starts_with('/') {
            errors.push(format!(
                "image.entrypoint {:?} invalid: must be an absolute path inside the image",
                self.image.entrypoint
            ));
        }
        if !BUILDERS.contains(&self.image.builder.as_str()) {
            errors.push(format!(
                "image.builder {:?} invalid: must be go-static, node, python or toolpack (empty means go-static)",
                self.image.builder
            ));
        }
        if self.tier != "sealed" && self.tier != "entrusted" {
            errors.push(format!("tier {:?} invalid: must be sealed or entrusted", self.tier));
        }
        errors.extend(
            self.entitlements
                .egress
                .iter()
                .filter_map(|e| egress::check_entry(e).err()),
        );
        let mut ids = std::collections::HashSet::new();
        for credential in &self.credentials {
            if credential.id.is_empty() || !ids.insert(credential.id.as_str()) {
                errors.push(format!("credential id {:?} empty or duplicate", credential.id));
            }
            let inject = &credential.inject;
            match self.tier.as_str() {
                "sealed"
                    if inject.header.is_empty() || !inject.format.contains("{token}") || !inject.env.is_empty() =>
                {
                    errors.push(format!(
                        "credential {:?}: sealed tier requires inject.header + inject.format containing {{token}}, \
                         and no inject.env",
                        credential.id
                    ))
                }
                "entrusted" if inject.env.is_empty() || !inject.header.is_empty() || !inject.format.is_empty() => {
                    errors.push(format!(
                        "credential {:?}: entrusted tier requires inject.env only",
                        credential.id
                    ))
                }
                _ => {}
            }
            if credential.kind == "oauth2" && credential.vendor.is_empty() {
                errors.push(format!(
                    "credential {:?}: vendor is required for oauth2 (the account it connects to)",
                    credential.id
                ));
            }
            if !credential.vendor.is_empty() && !is_slug(&credential.vendor) {
                errors.push(format!(
                    "credential {:?}: vendor {:?} invalid: lowercase slug [a-z0-9-]",
                    credential.id, credential.vendor
                ));
            }
        }
        if !self.category.is_empty() && !CATEGORIES.contains(&self.category.as_str()) {
            errors.push(format!(
                "category {:?} invalid: must be one of {}",
                self.category,
                CATEGORIES.join(", ")
            ));
        }
        let mut names = std::collections::HashSet::new();
        for tool in &self.tools {
            if tool.name.is_empty() || !names.insert(tool.name.as_str()) {
                errors.push(format!("tool name {:?} empty or duplicate", tool.name));
            }
        }
        errors
    }

    /// The schema's `Lint`: [`Manifest::validate`], then the denylist over the egress entries.
    pub fn lint(&self, denylist: &Denylist) -> Vec<String> {
        let errors = self.validate();
        if !errors.is_empty() {
            return errors;
        }
        self.entitlements
            .egress
            .iter()
            .filter_map(|entry| {
                denylist
                    .hit(entry)
                    .map(|bad| format!("egress {entry:?} matches denylist entry {bad:?}"))
            })
            .collect()
    }
}

/// `MAJOR.MINOR.PATCH`, each `0` or without a leading zero.
pub fn is_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (*p == "0" || !p.starts_with('0')))
}

/// The numeric fields of a valid version, for ordering.
pub fn version_key(text: &str) -> [u64; 3] {
    let mut key = [0; 3];
    for (slot, part) in key.iter_mut().zip(text.split('.')) {
        *slot = part.parse().unwrap_or(u64::MAX);
    }
    key
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn check_package(package: &str) -> Result<(), &'static str> {
    if !package
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
    {
        Err("only [a-zA-Z0-9._/-]")
    } else if package.contains("..") {
        Err("must not contain ..")
    } else if package.starts_with('/') {
        Err("must be relative to the repository")
    } else {
        Ok(())
    }
}
