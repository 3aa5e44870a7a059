//! Pulling a static-binary catalog entry (`go-static`) by digest from an OCI registry, with nothing else
//! trusted: the manifest (or image index) must hash to the digest the signed index pins, every blob to the
//! digest its manifest names; the platform must be this host's (`linux` and its architecture), and so must the
//! entrypoint's ELF header. Only the entrypoint is extracted, from the topmost layer that has it, as a regular
//! file within the size limits below.
//!
//! Registry settings: `GIG_OCI_CA_FILE` (a private CA), `GIG_OCI_USERNAME` / `GIG_OCI_PASSWORD` (basic
//! credentials, also exchanged for a bearer token when the registry asks for one).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::OpsError;

/// The most a manifest or image index may weigh.
const MAX_MANIFEST: usize = 4 << 20;
/// The most an image configuration may weigh.
const MAX_CONFIG: usize = 1 << 20;
/// At most this many layers, each at most this large (compressed), and an entrypoint at most this large.
const MAX_LAYERS: usize = 32;
const MAX_LAYER: usize = 512 << 20;
const MAX_ENTRYPOINT: u64 = 256 << 20;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Default)]
pub struct OciSettings {
    /// PEM certificates trusted besides the public roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// `host[:port]/repository` of an image reference (a tag or digest after it is ignored: the digest pinned
/// by the signed index is what is pulled).
fn split_reference(reference: &str) -> Result<(String, String), OpsError> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let (host, path) = without_digest
        .split_once('/')
        .ok_or_else(|| OpsError::Invalid(format!("image {reference:?} names no registry host")))?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(OpsError::Invalid(format!(
            "image {reference:?} names no registry host (Docker Hub short names are not pulled)"
        )));
    }
    // A tag after the last path component.
    let repository = match path.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{}", last.split(':').next().unwrap_or(last)),
        None => path.split(':').next().unwrap_or(path).to_owned(),
    };
    Ok((host.to_owned(), repository))
}

/// This host's architecture in OCI's words, and in ELF's `e_machine`.
fn host_platform() -> (&'static str, u16) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", 183),
        _ => ("amd64", 62),
    }
}

fn elf_machine_name(machine: u16) -> String {
    match machine {
        62 => "x86-64".into(),
        183 => "aarch64".into(),
        3 => "x86 (32-bit)".into(),
        40 => "arm (32-bit)".into(),
        243 => "riscv".into(),
        other => format!("machine {other}"),
    }
}

/// Checks that `head` (the file's first bytes) is a 64-bit little-endian ELF for this host.
fn check_elf(head: &[u8]) -> Result<(), String> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err("the entrypoint is not an ELF executable".into());
    }
    if head[4] != 2 || head[5] != 1 {
        return Err("the entrypoint is not a 64-bit little-endian ELF executable".into());
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    let (_, wanted) = host_platform();
    if machine != wanted {
        return Err(format!(
            "the entrypoint is an ELF executable for {}; this host is {}",
            elf_machine_name(machine),
            elf_machine_name(wanted)
        ));
    }
    Ok(())
}

struct Registry {
    http: reqwest::Client,
    base: String,
    repository: String,
    settings: OciSettings,
    token: Option<String>,
}

impl Registry {
    async fn get(&mut self, path: &str, accept: &str, limit: usize) -> Result<(Vec<u8>, Option<String>), OpsError> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        for attempt in 0..2 {
            let mut request = self.http.get(&url).header(reqwest::header::ACCEPT, accept);
            request = match (&self.token, &self.settings.username) {
                (Some(token), _) => request.bearer_auth(token),
                (None, Some(user)) => request.basic_auth(user, self.settings.password.as_deref()),
                (None, None) => request,
            };
            let response = request.send().await.map_err(|e| {
                OpsError::Invalid(format!("cannot reach {url}: {}", gigmcp_types::report::error_chain(&e)))
            })?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 && self.token.is_none() {
                let challenge = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                self.token = Some(self.bearer_token(&challenge).await?);
                continue;
            }
            if !response.status().is_success() {
                return Err(OpsError::Invalid(format!(
                    "{url}: the registry answered {}",
                    response.status()
                )));
            }
            let media_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| OpsError::Invalid(format!("{url}: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(OpsError::Invalid(format!("{url}: larger than {} MiB", limit >> 20)));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok((body, media_type));
        }
        Err(OpsError::Invalid(format!(
            "{url}: the registry refused the credentials (GIG_OCI_USERNAME)"
        )))
    }

    /// The token a `Bearer realm=…,service=…,scope=…` challenge asks for.
    async fn bearer_token(&self, challenge: &str) -> Result<String, OpsError> {
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(OpsError::Invalid(format!(
                "{}: the registry wants credentials; set GIG_OCI_USERNAME and GIG_OCI_PASSWORD",
                self.base
            )));
        };
        let field = |name: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = field("realm")
            .ok_or_else(|| OpsError::Invalid(format!("{}: a bearer challenge without realm", self.base)))?;
        let mut request = self.http.get(&realm).query(&[
            ("service", field("service").unwrap_or_default()),
            ("scope", field("scope").unwrap_or_default()),
        ]);
        if let Some(user) = &self.settings.username {
            request = request.basic_auth(user, self.settings.password.as_deref());
        }
        let answer: Value = request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OpsError::Invalid(format!("{realm}: cannot get a registry token: {e}")))?
            .json()
            .await
            .map_err(|e| OpsError::Invalid(format!("{realm}: {e}")))?;
        answer
            .get("token")
            .or_else(|| answer.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| OpsError::Invalid(format!("{realm}: no token in the answer")))
    }

    /// A manifest or blob that must hash to `digest`.
    async fn verified(
        &mut self,
        path: &str,
        digest: &str,
        accept: &str,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<String>), OpsError> {
        let (body, media_type) = self.get(path, accept, limit).await?;
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if got != digest {
            return Err(OpsError::Invalid(format!(
                "{path}: the registry's content hashes to {got}, not the pinned {digest}; refusing it"
            )));
        }
        Ok((body, media_type))
    }
}

/// Pulls `reference` at `digest` and writes its `entrypoint` to `dest`, under `servers_dir` (mode 0755, its
/// directories readable by sandbox uids); returns `dest`.
pub fn pull_entrypoint(
    settings: &OciSettings,
    reference: &str,
    digest: &str,
    entrypoint: &str,
    (servers_dir, dest): (&Path, &Path),
) -> Result<PathBuf, OpsError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| OpsError::Internal(e.to_string()))?
        .block_on(pull(settings, reference, digest, entrypoint, (servers_dir, dest)))
}

async fn pull(
    settings: &OciSettings,
    reference: &str,
    digest: &str,
    entrypoint: &str,
    dest: (&Path, &Path),
) -> Result<PathBuf, OpsError> {
    let (host, repository) = split_reference(reference)?;
    let mut http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(pem) = &settings.extra_roots_pem {
        for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| OpsError::Invalid(e.to_string()))? {
            http = http.add_root_certificate(certificate);
        }
    }
    let mut registry = Registry {
        http: http.build().map_err(|e| OpsError::Internal(e.to_string()))?,
        base: format!("https://{host}"),
        repository,
        settings: settings.clone(),
        token: None,
    };
    let os_wanted = "linux";
    let (arch_wanted, _) = host_platform();
    let (mut body, mut media_type) = registry
        .verified(&format!("manifests/{digest}"), digest, ACCEPT, MAX_MANIFEST)
        .await?;
    let mut manifest = json(&body, "the manifest")?;
    let declared = manifest.get("mediaType").and_then(Value::as_str).map(str::to_owned);
    let kind = declared.or(media_type.take()).unwrap_or_default();
    if kind.contains("index") || kind.contains("manifest.list") {
        let entries = manifest
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let platforms: Vec<String> = entries
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m.pointer("/platform/os").and_then(Value::as_str).unwrap_or("?"),
                    m.pointer("/platform/architecture")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                )
            })
            .collect();
        let chosen = entries
            .iter()
            .find(|m| {
                m.pointer("/platform/os").and_then(Value::as_str) == Some(os_wanted)
                    && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch_wanted)
            })
            .and_then(|m| m.get("digest").and_then(Value::as_str))
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "the image has no {os_wanted}/{arch_wanted} variant (it has: {})",
                    platforms.join(", ")
                ))
            })?
            .to_owned();
        (body, _) = registry
            .verified(&format!("manifests/{chosen}"), &chosen, ACCEPT, MAX_MANIFEST)
            .await?;
        manifest = json(&body, "the manifest")?;
    }
    let config_digest = digest_at(&manifest, "/config/digest", "the manifest names no configuration")?;
    let (config, _) = registry
        .verified(&format!("blobs/{config_digest}"), &config_digest, "*/*", MAX_CONFIG)
        .await?;
    let config = json(&config, "the image configuration")?;
    let platform = (
        config.get("os").and_then(Value::as_str).unwrap_or(""),
        config.get("architecture").and_then(Value::as_str).unwrap_or(""),
    );
    if platform != (os_wanted, arch_wanted) {
        return Err(OpsError::Invalid(format!(
            "the image is for {}/{}; this host is {os_wanted}/{arch_wanted}",
            platform.0, platform.1
        )));
    }
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if layers.len() > MAX_LAYERS {
        return Err(OpsError::Invalid(format!(
            "the image has {} layers, more than {MAX_LAYERS}",
            layers.len()
        )));
    }
    let wanted = entrypoint.trim_start_matches('/');
    for layer in layers.iter().rev() {
        let layer_digest = digest_at(layer, "/digest", "a layer without a digest")?;
        let (blob, _) = registry
            .verified(&format!("blobs/{layer_digest}"), &layer_digest, "*/*", MAX_LAYER)
            .await?;
        let gzipped = blob.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read> = if gzipped {
            Box::new(flate2::read::GzDecoder::new(&blob[..]))
        } else {
            Box::new(&blob[..])
        };
        if let Some(path) = extract(reader, wanted, dest)? {
            return Ok(path);
        }
    }
    Err(OpsError::Invalid(format!("the image has no {entrypoint}")))
}

/// The digest a JSON pointer names in a manifest, or `missing` as the error.
fn digest_at(value: &Value, pointer: &str, missing: &str) -> Result<String, OpsError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| OpsError::Invalid(missing.to_owned()))
}

fn json(body: &[u8], what: &str) -> Result<Value, OpsError> {
    serde_json::from_slice(body).map_err(|e| OpsError::Invalid(format!("{what} is not JSON: {e}")))
}

/// Extracts `wanted` from a tar stream to `dest` if the stream has it as a regular file.
fn extract(reader: impl Read, wanted: &str, (servers_dir, dest): (&Path, &Path)) -> Result<Option<PathBuf>, OpsError> {
    let bad = |e: std::io::Error| OpsError::Invalid(format!("a layer is not a valid tar archive: {e}"));
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if path != wanted {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(OpsError::Invalid(format!(
                "/{wanted} in the image is not a regular file"
            )));
        }
        if entry.size() > MAX_ENTRYPOINT {
            return Err(OpsError::Invalid(format!(
                "/{wanted} is larger than {} MiB",
                MAX_ENTRYPOINT >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(bad)?;
        check_elf(&bytes).map_err(OpsError::Invalid)?;
        crate::registry::write_public(servers_dir, dest, &bytes, 0o755)
            .map_err(|e| OpsError::Internal(format!("cannot write {}: {e}", dest.display())))?;
        return Ok(Some(dest.to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_a_registry_and_a_repository() {
        assert_eq!(
            split_reference("registry.example.test/fixtures/chatbin-mcp").unwrap(),
            ("registry.example.test".into(), "fixtures/chatbin-mcp".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:v1@sha256:00").unwrap(),
            ("127.0.0.1:5000".into(), "a/b".into())
        );
        assert!(split_reference("library/ubuntu").is_err());
        assert!(split_reference("ubuntu").is_err());
    }

    #[test]
    fn only_this_hosts_64_bit_elf_passes() {
        let (_, machine) = host_platform();
        let mut head = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        head.resize(18, 0);
        head.extend_from_slice(&machine.to_le_bytes());
        assert_eq!(check_elf(&head), Ok(()));
        let other = if machine == 62 { 183u16 } else { 62 };
        let mut foreign = head.clone();
        foreign[18..20].copy_from_slice(&other.to_le_bytes());
        assert!(check_elf(&foreign).unwrap_err().contains("this host is"));
        assert!(check_elf(b"#!/bin/sh\nexit 0\n").unwrap_err().contains("not an ELF"));
        let mut thirty_two = head.clone();
        thirty_two[4] = 1;
        assert!(check_elf(&thirty_two).unwrap_err().contains("64-bit"));
    }
}
