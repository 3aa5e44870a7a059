//! A toolpack's toolspec: each tool a templated HTTPS request to the vendor's REST API. Parsed as strictly
//! as manifests, validated as the registry does, and paired with its manifest.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::egress::{self, is_slug};
use crate::manifest::{Manifest, is_version};
use crate::{ParseError, parse_yaml};

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ToolSpec {
    pub schema_version: i64,
    pub name: String,
    pub version: String,
    pub base_url: String,
    /// Where an entrusted entry's secret goes (a sealed entry's manifest says it instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<SpecAuth>,
    pub tools: Vec<SpecTool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAuth {
    pub header: String,
    pub format: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SpecTool {
    pub name: String,
    pub description: String,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub encoding: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<SpecParam>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecParam {
    pub name: String,
    #[serde(rename = "in")]
    pub location: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const LOCATIONS: [&str; 4] = ["path", "query", "body", "header"];
pub const TYPES: [&str; 6] = ["string", "integer", "number", "boolean", "object", "array"];

/// Headers a tool's `in: header` parameter may never set: the request's framing, hop-by-hop headers and
/// the proxy's own. (The credential's header is refused by [`ToolSpec::check_against_manifest`].)
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "host"
            | "content-length"
            | "content-type"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
    ) || lower.starts_with("proxy-")
}

impl ToolSpec {
    pub fn parse(text: &str) -> Result<(Self, Vec<crate::yaml::Hazard>), ParseError> {
        parse_yaml(text)
    }

    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The schema's `Validate`, plus the reserved headers: every error, not just the first.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.schema_version != 1 {
            errors.push(format!("schemaVersion must be 1, got {}", self.schema_version));
        }
        if !is_slug(&self.name) {
            errors.push(format!("name {:?} invalid: lowercase [a-z0-9-]", self.name));
        }
        if !is_version(&self.version) {
            errors.push(format!("version {:?} invalid: must be MAJOR.MINOR.PATCH", self.version));
        }
        if let Err(why) = check_base_url(&self.base_url) {
            errors.push(format!("baseUrl {:?} invalid: {why}", self.base_url));
        }
        if let Some(auth) = &self.auth
            && (auth.header.is_empty() || !auth.format.contains("{token}"))
        {
            errors.push("auth needs a header and a format containing {token}".into());
        }
        if self.tools.is_empty() {
            errors.push("tools must not be empty".into());
        }
        let mut names = HashSet::new();
        for tool in &self.tools {
            if tool.name.is_empty() || !names.insert(tool.name.as_str()) {
                errors.push(format!("tool name {:?} empty or duplicate", tool.name));
            }
            for error in tool.validate(self.auth.as_ref()) {
                errors.push(format!("tool {:?}: {error}", tool.name));
            }
        }
        errors
    }

    /// The schema's `CheckAgainstManifest`: same name and version, the same tools, every base URL inside the
    /// manifest's egress, and an `auth` block exactly when the tier needs one.
    pub fn check_against_manifest(&self, manifest: &Manifest) -> Vec<String> {
        let mut errors = Vec::new();
        if self.name != manifest.name || self.version != manifest.version {
            errors.push(format!(
                "toolspec {} does not match manifest {}",
                self.reference(),
                manifest.reference()
            ));
        }
        let spec_tools: HashSet<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
        let manifest_tools: HashSet<&str> = manifest.tools.iter().map(|t| t.name.as_str()).collect();
        let mut missing: Vec<_> = manifest_tools.difference(&spec_tools).collect();
        let mut extra: Vec<_> = spec_tools.difference(&manifest_tools).collect();
        missing.sort();
        extra.sort();
        for name in missing {
            errors.push(format!("tool {name:?} is in the manifest but not in the toolspec"));
        }
        for name in extra {
            errors.push(format!("tool {name:?} is in the toolspec but not in the manifest"));
        }
        let bases = std::iter::once(self.base_url.as_str()).chain(self.tools.iter().map(|t| t.base_url.as_str()));
        for base in bases.filter(|b| !b.is_empty()) {
            if let Some(host) = base.strip_prefix("https://")
                && !egress::allows(&manifest.entitlements.egress, host)
            {
                errors.push(format!(
                    "base URL {base:?}: host {host:?} is not in the manifest's egress"
                ));
            }
        }
        match manifest.tier.as_str() {
            "entrusted" if !manifest.credentials.is_empty() && self.auth.is_none() => errors.push(
                "entrusted tier: the toolspec needs an auth block (the manifest's inject is env-only, so the spec \
                 says where the secret goes)"
                    .into(),
            ),
            "sealed" if self.auth.is_some() => errors.push(
                "sealed tier: the toolspec must not have an auth block (the manifest's inject is authoritative)".into(),
            ),
            _ => {}
        }
        for credential in &manifest.credentials {
            for tool in &self.tools {
                for param in tool.params.iter().filter(|p| p.location == "header") {
                    if param.name.eq_ignore_ascii_case(&credential.inject.header) {
                        errors.push(format!(
                            "tool {:?}: header parameter {:?} would set the credential's header",
                            tool.name, param.name
                        ));
                    }
                }
            }
        }
        errors
    }
}

impl SpecTool {
    fn validate(&self, auth: Option<&SpecAuth>) -> Vec<String> {
        let mut errors = Vec::new();
        if !METHODS.contains(&self.method.as_str()) {
            errors.push(format!(
                "method {:?} invalid: one of {}",
                self.method,
                METHODS.join(" ")
            ));
        }
        if !self.path.starts_with('/') {
            errors.push(format!("path {:?} must start with /", self.path));
        }
        if !self.base_url.is_empty()
            && let Err(why) = check_base_url(&self.base_url)
        {
            errors.push(format!("baseUrl {:?} invalid: {why}", self.base_url));
        }
        if !matches!(self.encoding.as_str(), "" | "json" | "form") {
            errors.push(format!("encoding {:?} invalid: json or form", self.encoding));
        }
        if self.description.is_empty() {
            errors.push("description is required (it becomes the MCP tool's description)".into());
        }
        let has_body = matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        let mut names = HashSet::new();
        for param in &self.params {
            let name = &param.name;
            if name.is_empty() || !names.insert(name.as_str()) {
                errors.push(format!("param name {name:?} empty or duplicate"));
            }
            if !LOCATIONS.contains(&param.location.as_str()) {
                errors.push(format!(
                    "param {name:?}: in {:?} invalid: path, query, body or header",
                    param.location
                ));
            }
            if param.location == "path" && !param.required {
                errors.push(format!("param {name:?}: a path param must be required: true"));
            }
            if param.location == "body" && !has_body {
                errors.push(format!(
                    "param {name:?}: a body param needs POST, PUT or PATCH, not {}",
                    self.method
                ));
            }
            if !TYPES.contains(&param.kind.as_str()) {
                errors.push(format!(
                    "param {name:?}: type {:?} invalid: one of {}",
                    param.kind,
                    TYPES.join(" ")
                ));
            }
            if param.location == "header" {
                if auth.is_some_and(|auth| auth.header.eq_ignore_ascii_case(name)) {
                    errors.push(format!("param {name:?}: a header param must not be the auth header"));
                }
                if is_reserved_header(name) {
                    errors.push(format!("param {name:?}: a header param may not set {name}"));
                }
            }
        }
        let placeholders = placeholders(&self.path);
        for placeholder in &placeholders {
            if !self
                .params
                .iter()
                .any(|p| p.location == "path" && p.name == *placeholder)
            {
                errors.push(format!("path placeholder {{{placeholder}}} has no in: path param"));
            }
        }
        for param in self.params.iter().filter(|p| p.location == "path") {
            if !placeholders.contains(&param.name.as_str()) {
                errors.push(format!("param {:?} is in: path but not in the path", param.name));
            }
        }
        errors
    }
}

/// The placeholders of a path template: `{name}` with no `{`, `}` or `/` inside.
pub fn placeholders(path: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find(['{', '}', '/']) {
            Some(end) if after.as_bytes()[end] == b'}' && end > 0 => {
                found.push(&after[..end]);
                rest = &after[end + 1..];
            }
            Some(end) => rest = &after[end..],
            None => break,
        }
    }
    found
}

/// `https://<host>` and nothing else: no port, path (not even `/`), query, fragment or user; the host a
/// concrete egress entry.
pub fn check_base_url(raw: &str) -> Result<(), String> {
    let Some(host) = raw.strip_prefix("https://") else {
        return Err("must be https://<host>".into());
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if host.contains(['/', '?', '#', '@', ':', '[']) {
        return Err("must be just https://<host>: no port, path, query, fragment or user".into());
    }
    if host.starts_with("*.") {
        return Err("must name one host, not a wildcard".into());
    }
    egress::check_entry(host)
}
