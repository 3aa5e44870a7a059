//! `/api/catalog`: the signed catalog this gateway accepted last (`gigmcp_ops::catalog`), for any logged-in
//! user: what each entry runs, where it may connect, which credential it needs and which tools it offers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::Query;
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_catalog::manifest::version_key;
use gigmcp_catalog::{Index, Manifest};
use gigmcp_ops::catalog::CatalogError;

#[derive(Serialize, JsonSchema)]
pub struct CatalogView {
    /// Where the index comes from (`GIG_REGISTRY_INDEX_URL`).
    pub source: String,
    /// When the registry generated the index (RFC 3339).
    pub generated: String,
    /// Each entry's latest version, by name.
    pub entries: Vec<CatalogEntry>,
}

#[derive(Serialize, JsonSchema)]
pub struct CatalogEntry {
    pub name: String,
    /// The latest version.
    pub version: String,
    pub display_name: String,
    pub description: String,
    pub category: String,
    /// `toolpack` (run by the gateway's engine), `binary`, `node` or `python`.
    pub kind: String,
    /// `sealed` (the gateway injects the credential) or `entrusted`.
    pub tier: String,
    /// Why this entry cannot be installed, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_installable: Option<String>,
    /// The credential types it needs (`api_key`, `oauth2`, `basic`…); empty for none.
    pub credentials: Vec<String>,
    pub tool_count: usize,
    /// Tools exposed when installed (the others are enabled per profile).
    pub default_tool_count: usize,
}

#[derive(Serialize, JsonSchema)]
pub struct CatalogEntryDetail {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    /// Every version, oldest first.
    pub versions: Vec<String>,
    pub latest: String,
    /// The image this version pins (`ref` and `sha256:` digest).
    pub image: String,
    pub source_repo: String,
    pub source_tag: String,
    /// Hosts it may reach (`*.x` is any subdomain of x).
    pub egress: Vec<String>,
    pub credential_details: Vec<CatalogCredential>,
    pub tools: Vec<CatalogTool>,
    /// SHA-256 of the whole manifest.
    pub hash: String,
    /// The consent key: changes when anything about what runs or where it connects changes.
    pub runtime_hash: String,
}

#[derive(Serialize, JsonSchema)]
pub struct CatalogCredential {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// For oauth2: the account's vendor.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    pub scopes: Vec<String>,
    /// The header the gateway sets (sealed tier), or empty.
    pub header: String,
    /// The header's value with `{token}` where the secret goes.
    pub format: String,
}

#[derive(Serialize, JsonSchema)]
pub struct CatalogTool {
    pub name: String,
    /// Exposed when installed; otherwise enabled per profile.
    pub default: bool,
    /// From the toolspec, for toolpacks.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// A version (default: the latest).
    pub version: Option<String>,
}

pub async fn list(State(state): State<Arc<ControlState>>, _caller: Caller) -> Result<Json<CatalogView>, ApiError> {
    blocking(&state, |state| {
        let index = current(state)?;
        let source = state.catalog.source_url(&state.store);
        Ok(Json(CatalogView {
            source,
            generated: index.generated.clone(),
            entries: index.latest().map(entry).collect(),
        }))
    })
    .await
}

pub async fn get(
    State(state): State<Arc<ControlState>>,
    _caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<EntryQuery>,
) -> Result<Json<CatalogEntryDetail>, ApiError> {
    blocking(&state, move |state| {
        let index = current(state)?;
        let reference = match &query.version {
            Some(version) => format!("{name}@{version}"),
            None => name.clone(),
        };
        let manifest = index
            .resolve(&reference)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        Ok(Json(detail(&index, manifest)))
    })
    .await
}

pub fn current(state: &ControlState) -> Result<Arc<Index>, ApiError> {
    state.catalog.current(&state.store).map_err(|e| match e {
        CatalogError::NotConfigured | CatalogError::NoIndex(_) => {
            ApiError::new(http::StatusCode::NOT_FOUND, "no_catalog", e.to_string())
        }
        CatalogError::StoredUntrusted(_) => {
            ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, "untrusted", e.to_string())
        }
        other => ApiError::internal(other),
    })
}

fn entry(manifest: &Manifest) -> CatalogEntry {
    CatalogEntry {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        display_name: manifest.display_name.clone(),
        description: manifest.description.clone(),
        category: manifest.category.clone(),
        kind: manifest.kind().to_owned(),
        tier: manifest.tier.clone(),
        not_installable: manifest
            .has_placeholder_digest()
            .then(|| "its image digest is the all-zero placeholder".to_owned()),
        credentials: manifest.credentials.iter().map(|c| c.kind.clone()).collect(),
        tool_count: manifest.tools.len(),
        default_tool_count: manifest.tools.iter().filter(|t| t.default).count(),
    }
}

fn detail(index: &Index, manifest: &Manifest) -> CatalogEntryDetail {
    let server = &index.servers[&manifest.name];
    let mut versions: Vec<String> = server.versions.keys().cloned().collect();
    versions.sort_by_key(|v| version_key(v));
    let spec = index.toolspec(manifest);
    CatalogEntryDetail {
        entry: entry(manifest),
        versions,
        latest: server.latest.clone(),
        image: format!("{}@{}", manifest.image.reference, manifest.image.digest),
        source_repo: manifest.source.repo.clone(),
        source_tag: manifest.source.tag.clone(),
        egress: manifest.entitlements.egress.clone(),
        credential_details: manifest
            .credentials
            .iter()
            .map(|c| CatalogCredential {
                id: c.id.clone(),
                kind: c.kind.clone(),
                vendor: c.vendor.clone(),
                scopes: c.scopes.clone(),
                header: c.inject.header.clone(),
                format: c.inject.format.clone(),
            })
            .collect(),
        tools: manifest
            .tools
            .iter()
            .map(|tool| CatalogTool {
                name: tool.name.clone(),
                default: tool.default,
                description: spec
                    .and_then(|s| s.tools.iter().find(|t| t.name == tool.name))
                    .map(|t| t.description.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        hash: manifest.hash(),
        runtime_hash: manifest.runtime_hash(),
    }
}
