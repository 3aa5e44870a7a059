//! The signed catalog, compatible with the original's registry: manifests and toolspecs read strictly from
//! YAML, validated and linted as the registry's own tooling does, hashed byte for byte as Go's
//! `encoding/json` writes them (`Hash`, `RuntimeHash`), and gathered into an Ed25519-signed index.
//!
//! This crate knows formats only: no network, no database. The gateway fetches and stores indexes
//! (`gigmcp-ops`), installs entries, and runs toolpacks.

pub mod egress;
pub mod gojson;
pub mod index;
pub mod manifest;
pub mod registry;
pub mod signing;
pub mod toolspec;
pub mod yaml;

pub use index::{Index, IndexError, ResolveError};
pub use manifest::Manifest;
pub use signing::{PublicKey, SigningKey};
pub use toolspec::ToolSpec;

use serde::de::DeserializeOwned;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ParseError {
    #[error("{0}")]
    Yaml(#[from] yaml::YamlError),
    /// A field of the wrong type, an unknown field or a missing document, naming the field's path.
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

/// YAML → the schema type, strictly; the YAML-1.1 hazards come back for lint.
fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<(T, Vec<yaml::Hazard>), ParseError> {
    let document = yaml::read(text)?;
    let value = serde_path_to_error::deserialize(document.value).map_err(|e| ParseError::Field {
        path: match e.path().to_string() {
            path if path == "." => "(document)".to_owned(),
            path => path,
        },
        message: e.inner().to_string(),
    })?;
    Ok((value, document.hazards))
}
