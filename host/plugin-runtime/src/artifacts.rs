//! Compiled components, cached by the sha256 of the component's bytes: in memory, and on disk only with an
//! authentication tag keyed from the master key.
//!
//! Deserializing a compiled artifact is trusting it as machine code, so the disk cache is a place an
//! attacker who can write the data directory would aim at. Every file carries an HMAC-SHA256 over the
//! component's hash, the engine's compatibility hash and the artifact, under a key derived from the master
//! key; a file whose tag does not verify is never deserialized: the component is compiled again and the
//! file replaced. Without a key (the CLI, which has no master key) there is no disk cache at all.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::limits::LoadError;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::secret::MasterKey;

type HmacSha256 = Hmac<sha2::Sha256>;

/// The key that authenticates cached artifacts, derived from the master key so it never equals a key used
/// for anything else.
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn derive(master: &MasterKey) -> Self {
        let mut mac = HmacSha256::new_from_slice(&master.0).expect("HMAC takes keys of any length");
        mac.update(b"gigmcp plugin artifact cache v1");
        Self(mac.finalize().into_bytes().into())
    }
}

struct DiskCache {
    dir: PathBuf,
    key: CacheKey,
}

#[derive(Default)]
pub struct ArtifactCache {
    memory: Mutex<HashMap<ComponentHash, Component>>,
    disk: Option<DiskCache>,
}

impl ArtifactCache {
    /// A cache in memory only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// A cache in memory and in `dir`, authenticated with `key`.
    pub fn on_disk(dir: PathBuf, key: CacheKey) -> Self {
        Self {
            memory: Mutex::default(),
            disk: Some(DiskCache { dir, key }),
        }
    }

    pub fn get_or_compile(
        &self,
        engine: &Engine,
        sha256: &ComponentHash,
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        if let Some(component) = self.lock().get(sha256) {
            return Ok(component.clone());
        }
        let component = match self.disk.as_ref().and_then(|disk| disk.load(engine, sha256)) {
            Some(component) => component,
            None => {
                let component =
                    Component::new(engine, bytes).map_err(|e| LoadError::NotAComponent(format!("{e:#}")))?;
                if let Some(disk) = &self.disk {
                    disk.store(engine, sha256, &component);
                }
                component
            }
        };
        self.lock().insert(*sha256, component.clone());
        Ok(component)
    }

    /// Forgets compiled components that are no longer used.
    pub fn retain(&self, keep: &[ComponentHash]) {
        self.lock().retain(|sha, _| keep.contains(sha));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ComponentHash, Component>> {
        gigmcp_types::sync::lock(&self.memory)
    }
}

impl DiskCache {
    fn path(&self, engine: &Engine, sha256: &ComponentHash) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish()))
    }

    fn tag(&self, sha256: &ComponentHash, file_name: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key.0).expect("HMAC takes keys of any length");
        mac.update(&sha256.0);
        mac.update(file_name.as_bytes());
        mac.update(artifact);
        mac
    }

    fn load(&self, engine: &Engine, sha256: &ComponentHash) -> Option<Component> {
        let path = self.path(engine, sha256);
        let file = std::fs::read(&path).ok()?;
        let name = path.file_name()?.to_string_lossy().into_owned();
        let (tag, artifact) = file.split_at_checked(32)?;
        if self.tag(sha256, &name, artifact).verify_slice(tag).is_err() {
            tracing::warn!(
                path = %path.display(),
                "a cached plugin artifact failed authentication; recompiling it instead of loading it"
            );
            return None;
        }
        match deserialize_authenticated::component(engine, artifact) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "a cached plugin artifact could not be loaded: {e:#}");
                None
            }
        }
    }

    fn store(&self, engine: &Engine, sha256: &ComponentHash, component: &Component) {
        let result = (|| -> std::io::Result<()> {
            let artifact = component.serialize().map_err(std::io::Error::other)?;
            let path = self.path(engine, sha256);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tag = self.tag(sha256, &name, &artifact).finalize().into_bytes();
            std::fs::create_dir_all(&self.dir)?;
            let mut temp = tempfile_in(&self.dir)?;
            temp.1.write_all(&tag)?;
            temp.1.write_all(&artifact)?;
            temp.1.sync_all()?;
            std::fs::rename(&temp.0, &path)
        })();
        if let Err(e) = result {
            tracing::warn!(dir = %self.dir.display(), "cannot cache a compiled plugin: {e}");
        }
    }
}

/// A new private file in `dir` (0600), for writing then renaming into place.
fn tempfile_in(dir: &std::path::Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut suffix = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut suffix);
    let path = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}

/// The one place a compiled artifact is turned back into machine code.
mod deserialize_authenticated {
    use wasmtime::Engine;
    use wasmtime::component::Component;

    pub(super) fn component(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: `Component::deserialize` requires bytes produced by `Component::serialize` of a compatible
        // engine and not modified since. The only caller passes bytes whose HMAC, under a key derived from the
        // master key that only this gateway holds, verified: they are bytes this gateway serialized. wasmtime
        // itself checks engine compatibility (version and settings) and refuses an incompatible artifact.
        unsafe { Component::deserialize(engine, artifact) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_round_trips_as_hex() {
        let sha = ComponentHash::of(b"plugin");
        assert_eq!(ComponentHash::parse_hex(&sha.to_hex()), Some(sha));
        assert_eq!(ComponentHash::parse_hex("abc"), None);
    }

    #[test]
    fn the_cache_key_depends_on_the_master_key() {
        let a = CacheKey::derive(&MasterKey([1; 32]));
        let b = CacheKey::derive(&MasterKey([2; 32]));
        assert_ne!(a.0, b.0);
        assert_ne!(a.0, [1; 32]);
    }
}
